import { performance } from 'node:perf_hooks';
import type { NextFunction, Request, Response } from 'express';

/** One access-log line: a JSON object, as log shippers expect. */
export interface AccessLogEntry {
  /** When the response finished (or the connection closed), ISO 8601. */
  time: string;
  method: string;
  /** The path only: query strings often carry tokens, which do not belong in logs. */
  path: string;
  status: number;
  /** From the request's arrival at this middleware to the last byte handed to the socket. */
  durationMs: number;
  /** The resilience route label (the `route` of the metrics), when a policy applied. */
  route?: string;
  /** True when the client went away before the response was complete. */
  aborted?: true;
}

/**
 * A minimal structured access log: one JSON line per request, written once the response has
 * finished or its connection closed first. The repo has no logger dependency; in an app,
 * pino-http or morgan would take this place.
 */
export function accessLog(
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const start = performance.now();
    let logged = false;
    const done = (): void => {
      if (logged) return;
      logged = true;
      res.off('finish', done);
      res.off('close', done);
      const entry: AccessLogEntry = {
        time: new Date().toISOString(),
        method: req.method,
        path: req.originalUrl.split('?', 1)[0]!,
        status: res.statusCode,
        durationMs: Math.round((performance.now() - start) * 10) / 10,
      };
      if (req.resilience !== undefined) entry.route = req.resilience.route;
      if (!res.writableFinished) entry.aborted = true;
      write(JSON.stringify(entry));
    };
    res.once('finish', done);
    res.once('close', done);
    next();
  };
}
