/**
 * Counts the requests inside the pipeline so `close({ grace })` can wait for them, and says
 * whether the middleware is shutting down.
 */
export class Lifecycle {
  shuttingDown = false;
  private inflightCount = 0;
  private onIdle: (() => void) | undefined;

  get inflight(): number {
    return this.inflightCount;
  }

  requestStarted(): void {
    this.inflightCount++;
  }

  requestEnded(): void {
    this.inflightCount--;
    if (this.inflightCount === 0) this.onIdle?.();
  }

  /** Resolves true once no request is in flight, or false when `graceMs` passes first. */
  drain(graceMs: number): Promise<boolean> {
    if (this.inflightCount === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.onIdle = undefined;
        resolve(false);
      }, graceMs);
      timer.unref();
      this.onIdle = () => {
        clearTimeout(timer);
        this.onIdle = undefined;
        resolve(true);
      };
    });
  }
}
