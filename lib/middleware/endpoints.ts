import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ResilienceConfig } from '../config/types.js';
import { isAuthorised, livenessResponse, readinessResponse } from '../health/endpoints.js';
import type { ResilienceMetrics } from '../metrics/metrics.js';
import type { ResourceManager } from '../resources/manager.js';
import { clientIp, type TrustFunction } from './client-ip.js';
import type { Lifecycle } from './lifecycle.js';
import type { PolicyRuntime } from './policy-runtime.js';
import { comparable, type DispatchMode } from './route-table.js';

type Next = (err?: unknown) => void;

/**
 * `/metrics`, `/healthz` and `/readyz`, answered by the middleware itself (GET and HEAD;
 * Node leaves the body out of HEAD responses). Metrics and health details can be protected by
 * an address allowlist or a bearer token.
 */
export class Endpoints {
  private readonly metricsPath: string | null;
  private readonly livenessPath: string | null;
  private readonly readinessPath: string | null;
  /** The three paths as the last dispatch mode seen compares them. */
  private paths: (string | null)[] = [];
  private pathsMode: DispatchMode | undefined;

  constructor(
    private readonly config: ResilienceConfig,
    private readonly metrics: ResilienceMetrics,
    private readonly resources: ResourceManager,
    private readonly runtimes: readonly PolicyRuntime[],
    private readonly lifecycle: Lifecycle,
    private readonly trust: TrustFunction,
  ) {
    this.metricsPath = config.metrics.enabled ? config.metrics.path : null;
    this.livenessPath = config.health.enabled ? config.health.livenessPath : null;
    this.readinessPath = config.health.enabled ? config.health.readinessPath : null;
  }

  /**
   * Answers `req` when it is for one of the endpoints; returns false otherwise. `path` is the
   * path as the app routes it, already in the form `mode` compares (`comparable()`: so
   * `/Metrics` and `/metrics/` are `/metrics` where the app would route them there).
   */
  serve(
    p: string,
    mode: DispatchMode,
    req: IncomingMessage,
    res: ServerResponse,
    next: Next,
  ): boolean {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    if (this.pathsMode !== mode) {
      this.pathsMode = mode;
      this.paths = [this.metricsPath, this.livenessPath, this.readinessPath].map((e) =>
        e === null ? null : comparable(e, mode),
      );
    }
    const [metricsPath, livenessPath, readinessPath] = this.paths;
    if (p === metricsPath) {
      this.serveMetrics(req, res, next);
      return true;
    }
    if (p === livenessPath) {
      const { status, body } = livenessResponse();
      sendJson(res, status, body);
      return true;
    }
    if (p === readinessPath) {
      this.serveReadiness(req, res);
      return true;
    }
    return false;
  }

  private serveMetrics(req: IncomingMessage, res: ServerResponse, next: Next): void {
    const protect = this.config.metrics.protect;
    if (!isAuthorised(req, protect, clientIp(req, this.trust))) {
      const needsToken = protect.token !== undefined && protect.token !== '';
      if (needsToken) res.setHeader('WWW-Authenticate', 'Bearer');
      sendJson(res, needsToken ? 401 : 403, { status: needsToken ? 'unauthorized' : 'forbidden' });
      return;
    }
    const registry = this.metrics.registry;
    registry.metrics().then((text) => {
      res.statusCode = 200;
      res.setHeader('Content-Type', registry.contentType);
      res.setHeader('Cache-Control', 'no-store');
      res.end(text);
    }, next);
  }

  private serveReadiness(req: IncomingMessage, res: ServerResponse): void {
    const health = this.config.health;
    const details = health.details && isAuthorised(req, health.protect, clientIp(req, this.trust));
    const { status, body } = readinessResponse(this.resources.monitor, {
      shuttingDown: this.lifecycle.shuttingDown,
      details,
      breakers: this.breakers(),
      breakersAffectReadiness: health.breakersAffectReadiness,
    });
    if (this.lifecycle.shuttingDown) res.setHeader('Connection', 'close');
    sendJson(res, status, body);
  }

  private breakers(): { name: string; state: string }[] {
    const list: { name: string; state: string }[] = [];
    for (const r of this.runtimes) {
      if (r.breaker !== undefined) list.push({ name: r.name, state: r.breaker.state });
    }
    for (const name of this.resources.names()) {
      const breaker = (this.resources.get(name) as { breaker?: { state: string } } | undefined)
        ?.breaker;
      if (breaker !== undefined) list.push({ name, state: breaker.state });
    }
    return list;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(payload));
  res.setHeader('Cache-Control', 'no-store');
  res.end(payload);
}
