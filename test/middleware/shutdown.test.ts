import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import request from 'supertest';
import { resilience, type ResilienceMiddleware } from '../../lib/index.js';
import { listen } from '../helpers/apps.js';
import { deferred } from '../helpers/deferred.js';

const APP = fileURLToPath(new URL('../fixtures/shutdown-app.ts', import.meta.url));

function get(
  url: string,
  agent?: http.Agent,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

/** Resolves with the first stdout line matching `pattern`. */
function waitForLine(child: ChildProcess, pattern: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk: Buffer): void => {
      buffer += chunk.toString();
      const match = pattern.exec(buffer);
      if (match) {
        child.stdout!.off('data', onData);
        resolve(match);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before ${pattern}`)));
  });
}

describe('graceful shutdown', () => {
  let r: ResilienceMiddleware | undefined;
  afterEach(async () => {
    await r?.close({ grace: 0 });
    r = undefined;
  });

  it('lets in-flight requests finish, answers new ones 503 with Connection: close, and fails readiness', async () => {
    r = resilience({ shutdown: { grace: '10s' } });
    const entered = deferred();
    const gate = deferred();
    const app = express();
    app.use(r);
    app.get('/slow', async (_req, res) => {
      entered.resolve();
      await gate.promise;
      res.json({ finished: true });
    });
    app.get('/fast', (_req, res) => {
      res.json({ fast: true });
    });
    const server = await listen(app as unknown as http.RequestListener);
    try {
      await request(server.url).get('/readyz').expect(200);
      const inflight = get(`${server.url}/slow`);
      await entered.promise;

      const closing = r.close();
      const rejected = await request(server.url).get('/fast');
      assert.equal(rejected.status, 503);
      assert.equal(rejected.headers['connection'], 'close');
      assert.equal(rejected.body.code, 'ERR_SHUTTING_DOWN');
      const ready = await request(server.url).get('/readyz');
      assert.equal(ready.status, 503);
      assert.equal(ready.body.status, 'shutting-down');
      await request(server.url).get('/healthz').expect(200);

      let closed = false;
      void closing.then(() => (closed = true));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(closed, false, 'close() waits for the in-flight request');
      gate.resolve();
      const finished = await inflight;
      assert.equal(finished.status, 200);
      assert.deepEqual(JSON.parse(finished.body), { finished: true });
      await closing;
    } finally {
      await server.close();
    }
  });

  it('gives up waiting after the grace period', async () => {
    r = resilience({});
    const entered = deferred();
    const app = express();
    app.use(r);
    app.get('/hang', () => entered.resolve());
    const server = await listen(app as unknown as http.RequestListener);
    try {
      const pending = get(`${server.url}/hang`).catch(() => undefined);
      await entered.promise;
      await r.close({ grace: 20 });
      void pending;
    } finally {
      await server.close();
    }
  });

  it('exits the process on SIGTERM with no open handles once in-flight work is done', async function () {
    this.timeout(30_000);
    const child = spawn(process.execPath, ['--import', 'tsx', APP], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      const [, port] = await waitForLine(child, /listening (\d+)\n/);
      const base = `http://127.0.0.1:${port}`;
      assert.equal((await get(`${base}/readyz`)).status, 200);
      const inflight = get(`${base}/slow`);
      await waitForLine(child, /slow-entered\n/);
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await waitForLine(child, /sigterm\n/);
      await assert.rejects(get(`${base}/readyz`), /ECONNREFUSED|ECONNRESET/);
      child.stdin!.end('release\n');
      const finished = await inflight;
      assert.equal(finished.status, 200);
      assert.deepEqual(JSON.parse(finished.body), { finished: true });
      // Nothing is left to keep the child alive: it exits by itself, cleanly.
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
