import type { ResourceManager } from '../resources/manager.js';

/** What the pack puts on `req.resilience` for the handlers behind it. */
export interface RequestResilience {
  /**
   * Aborts when the request's deadline passes (reason: a `TimeoutError`) or the client
   * disconnects. Created on first access only: handlers that never read it pay nothing.
   */
  readonly signal: AbortSignal;
  /** The absolute deadline (epoch milliseconds); `Infinity` when the route has no timeout. */
  readonly deadline: number;
  /** Milliseconds left before the deadline (never negative); `Infinity` without a timeout. */
  remaining(): number;
  /** The name of the route policy (or named policy) that applies: the metrics label. */
  readonly route: string;
  /**
   * The pooled resources. Calls made inside the request inherit its remaining deadline
   * (AsyncLocalStorage), so `req.resilience.resources.http('payments').get('/x')` never
   * outlives the request.
   */
  readonly resources: ResourceManager;
}

declare module 'node:http' {
  interface IncomingMessage {
    /** Set by express-resilience for every request its policies apply to. */
    resilience?: RequestResilience;
  }
}
