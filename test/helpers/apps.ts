import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import connect from 'connect';
import express5 from 'express';
import express4 from 'express4';

export type AppKind = 'express5' | 'express4' | 'connect';
export const APP_KINDS: readonly AppKind[] = ['express5', 'express4', 'connect'];

type Next = (err?: unknown) => void;
export type Handler = (req: IncomingMessage, res: ServerResponse, next: Next) => unknown;
type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;

/** Sends JSON with raw Node APIs so one handler runs on every framework. */
export function json(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(payload);
}

/**
 * A real app of the given kind with `middleware` app-wide, then `routes` (path → handler,
 * any method), and an error handler that answers 500 with the error's message.
 */
export function makeApp(
  kind: AppKind,
  middleware: Middleware,
  routes: Record<string, Handler>,
  setup?: (app: { set?(key: string, value: unknown): unknown }) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  const onError = (err: unknown, _req: IncomingMessage, res: ServerResponse, _next: Next): void => {
    if (res.headersSent) return;
    json(res, 500, { error: (err as Error).message });
  };
  if (kind === 'connect') {
    const app = connect();
    app.use(middleware as connect.NextHandleFunction);
    for (const [path, handler] of Object.entries(routes)) {
      app.use((req: IncomingMessage, res: ServerResponse, next: Next) => {
        const url = req.url ?? '/';
        const p = url.split('?')[0];
        if (p !== path) return next();
        try {
          const result = handler(req, res, next);
          if (result instanceof Promise) result.catch(next);
        } catch (err) {
          next(err);
        }
      });
    }
    app.use(onError as connect.ErrorHandleFunction);
    return app as unknown as (req: IncomingMessage, res: ServerResponse) => void;
  }
  const express = (kind === 'express5' ? express5 : express4) as unknown as () => {
    use(...args: unknown[]): void;
    all(path: string, handler: Handler): void;
    set(key: string, value: unknown): void;
  };
  const app = express();
  setup?.(app);
  app.use(middleware);
  for (const [path, handler] of Object.entries(routes)) app.all(path, handler);
  app.use(onError);
  return app as unknown as (req: IncomingMessage, res: ServerResponse) => void;
}

/** Listens on 127.0.0.1:0; `close()` ends it, keep-alive sockets included. */
export async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  host = '127.0.0.1',
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  const url = host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
  return {
    server,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
