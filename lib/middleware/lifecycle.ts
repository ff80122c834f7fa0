import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import net from 'node:net';

/** A request inside the pipeline, as shutdown sees it. */
export interface InflightRequest {
  /** The servers stopped accepting: the response, unless already started, closes its connection. */
  closeConnection(): void;
  /** The grace period is over: answer now (unless already answering) rather than be reset. */
  abandon(): void;
}

/** One server handed to `attach()`. */
interface Attached {
  /** True once the server emitted 'close': not listening, and every connection gone. */
  closed: boolean;
  detach(): void;
}

/**
 * The shutdown sequence (README, "Health, readiness and shutdown"): readiness fails at once
 * (`shuttingDown`); after the delay the attached servers stop accepting and every request is
 * answered with `Connection: close` (`refusing`); then in-flight requests and open connections
 * get up to the grace period to end; what still runs is answered rather than reset.
 */
export class Lifecycle {
  /** Readiness answers 503: set the moment `close()` is called. */
  shuttingDown = false;
  /** Past the delay: the servers take no new connections and requests get 503 + close. */
  refusing = false;
  private readonly requests = new Set<InflightRequest>();
  private readonly servers = new Map<Server, Attached>();
  /** Re-checks whether draining is done; set while {@link Lifecycle.drain} waits. */
  private wake: (() => void) | undefined;

  get inflight(): number {
    return this.requests.size;
  }

  requestStarted(request: InflightRequest): void {
    this.requests.add(request);
    if (this.refusing) request.closeConnection();
  }

  requestEnded(request: InflightRequest): void {
    this.requests.delete(request);
    if (this.requests.size === 0) this.wake?.();
  }

  /**
   * Lets the shutdown stop `server` from accepting and wait for its connections. Returns the
   * function that detaches it.
   */
  attach(server: Server): () => void {
    const existing = this.servers.get(server);
    if (existing !== undefined) return existing.detach;
    // Whatever the app answers once the server has stopped accepting (this middleware's 503s,
    // but also excluded paths and routes mounted before it) tells the client to go elsewhere.
    // Prepended, so it runs before the app can send anything.
    const onRequest = (_req: IncomingMessage, res: ServerResponse): void => {
      if (this.refusing) res.shouldKeepAlive = false;
    };
    const onClose = (): void => {
      attached.closed = true;
      this.wake?.();
    };
    const attached: Attached = {
      closed: false,
      detach: () => {
        server.off('request', onRequest);
        server.off('close', onClose);
        if (this.servers.get(server) === attached) this.servers.delete(server);
        this.wake?.();
      },
    };
    server.prependListener('request', onRequest);
    server.once('close', onClose);
    this.servers.set(server, attached);
    if (this.refusing) this.stopAccepting(server, attached);
    return attached.detach;
  }

  /**
   * Runs the sequence up to the end of the grace period. Resolves true when every request and
   * connection ended in time, false when leftovers had to be answered.
   */
  async shutdown(delayMs: number, graceMs: number): Promise<boolean> {
    this.shuttingDown = true;
    if (delayMs > 0) await sleep(delayMs);
    this.refusing = true;
    for (const request of this.requests) request.closeConnection();
    for (const [server, attached] of this.servers) this.stopAccepting(server, attached);
    const drained = await this.drain(graceMs);
    if (!drained) for (const request of [...this.requests]) request.abandon();
    return drained;
  }

  /** Destroys every connection still open on the attached servers: the very last step. */
  closeConnections(): void {
    for (const server of this.servers.keys()) server.closeAllConnections();
  }

  private stopAccepting(server: Server, attached: Attached): void {
    if (attached.closed) return;
    if (server.listening) {
      // net.Server's close, not http.Server's: since Node 19 the latter also closes the idle
      // keep-alive connections, racing requests the clients are sending on them right now.
      // They stay open until they are used (and answered with Connection: close), the client
      // or the server's keepAliveTimeout closes them, or the grace runs out.
      net.Server.prototype.close.call(server);
      return;
    }
    // Never listened, or the app closed it itself: its 'close' may have been emitted already.
    server.getConnections((err, count) => {
      if (err !== null || count === 0) {
        attached.closed = true;
        this.wake?.();
      }
    });
  }

  private idle(): boolean {
    if (this.requests.size > 0) return false;
    for (const attached of this.servers.values()) if (!attached.closed) return false;
    return true;
  }

  /** Resolves true once no request is in flight and no connection open, false after `graceMs`. */
  private drain(graceMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const finish = (drained: boolean): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve(drained);
      };
      const timer = setTimeout(() => finish(false), graceMs);
      timer.unref();
      this.wake = () => {
        if (this.idle()) finish(true);
      };
      this.wake();
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
