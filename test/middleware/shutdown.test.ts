import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import FakeTimers from '@sinonjs/fake-timers';
import express from 'express';
import request from 'supertest';
import {
  closeOnSignals,
  InvalidArgumentError,
  resilience,
  type ResilienceMiddleware,
} from '../../lib/index.js';
import { APP_KINDS, json, listen, makeApp } from '../helpers/apps.js';
import { deferred, track, until } from '../helpers/deferred.js';

const APP = fileURLToPath(new URL('../fixtures/shutdown-app.ts', import.meta.url));

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The request went out on a keep-alive socket an earlier request had used. */
  reused: boolean;
}

/** GET through `agent` (`false`: a connection of its own, closed after the answer). */
function get(url: string, agent?: http.Agent | false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http
      .get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            body,
            reused: req.reusedSocket,
          }),
        );
        res.on('error', reject);
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
  let clock: ReturnType<typeof FakeTimers.install> | undefined;
  afterEach(async () => {
    clock?.uninstall();
    clock = undefined;
    await r?.close({ grace: 0 });
    r = undefined;
  });

  for (const kind of APP_KINDS) {
    describe(`on ${kind}`, () => {
      it('keeps serving through shutdown.delay with /readyz failing, then answers requests on open connections 503 with Connection: close and takes no new connections', async () => {
        clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
        r = resilience({ shutdown: { delay: '2s', grace: '10s' } });
        const entered = deferred();
        const gate = deferred();
        const app = makeApp(kind, r, {
          '/fast': (_req, res) => json(res, 200, { fast: true }),
          '/slow': async (_req, res) => {
            entered.resolve();
            await gate.promise;
            json(res, 200, { finished: true });
          },
        });
        const server = await listen(app);
        const attachment = r.attach(server.server);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const slowAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          assert.equal((await get(`${server.url}/fast`, agent)).status, 200);
          const closing = track(r.close());
          assert.equal((await get(`${server.url}/readyz`, false)).status, 503);

          // The delay: load balancers may still send traffic, and it is served as before.
          const during = await get(`${server.url}/fast`, agent);
          assert.equal(during.status, 200);
          assert.equal(during.reused, true);
          assert.notEqual(during.headers.connection, 'close');
          assert.equal((await get(`${server.url}/fast`, false)).status, 200);
          const slow = get(`${server.url}/slow`, slowAgent);
          await entered.promise;

          await clock.tickAsync(2000);
          // Stopped: a request on an open keep-alive connection is answered, and told to move on.
          const after = await get(`${server.url}/fast`, agent);
          assert.equal(after.status, 503);
          assert.equal(after.reused, true);
          assert.equal(after.headers.connection, 'close');
          assert.equal((JSON.parse(after.body) as { code: string }).code, 'ERR_SHUTTING_DOWN');
          await assert.rejects(get(`${server.url}/fast`, false), /ECONNREFUSED/);

          // In flight when the server stopped: it finishes, then its connection closes.
          assert.equal(closing.settled, false);
          gate.resolve();
          const finished = await slow;
          assert.equal(finished.status, 200);
          assert.equal(finished.headers.connection, 'close');
          await until(() => closing.settled, 'close()');
          assert.equal(closing.error, undefined);
        } finally {
          agent.destroy();
          slowAgent.destroy();
          attachment.dispose();
          await server.close();
        }
      });

      it('answers a request still running at the end of the grace 503 with Connection: close instead of resetting it, and aborts its signal', async () => {
        clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
        r = resilience({ shutdown: { grace: '2s' } });
        const entered = deferred<AbortSignal>();
        const gate = deferred();
        const app = makeApp(kind, r, {
          '/hang': async (req, res) => {
            entered.resolve(req.resilience!.signal);
            await gate.promise;
            json(res, 200, { late: true });
          },
        });
        const server = await listen(app);
        const attachment = r.attach(server.server);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          const pending = get(`${server.url}/hang`, agent);
          const signal = await entered.promise;
          const closing = track(r.close());
          await clock.tickAsync(2000);
          const answered = await pending;
          assert.equal(answered.status, 503);
          assert.equal(answered.headers.connection, 'close');
          assert.equal((JSON.parse(answered.body) as { code: string }).code, 'ERR_SHUTTING_DOWN');
          assert.equal(signal.aborted, true);
          await until(() => closing.settled, 'close()');
          assert.equal(closing.error, undefined);
          // The handler's own answer, too late, goes nowhere and breaks nothing.
          gate.resolve();
          await new Promise((resolve) => setImmediate(resolve));
        } finally {
          agent.destroy();
          attachment.dispose();
          await server.close();
        }
      });
    });
  }

  it('closeOnSignals() waits the delay it is given before the server stops accepting', async () => {
    clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    r = resilience({});
    const app = makeApp('express5', r, { '/fast': (_req, res) => json(res, 200, {}) });
    const server = await listen(app);
    const handle = closeOnSignals(server.server, r, { signals: ['SIGUSR2'], delay: 3000 });
    try {
      process.emit('SIGUSR2', 'SIGUSR2');
      assert.equal((await get(`${server.url}/readyz`, false)).status, 503);
      assert.equal((await get(`${server.url}/fast`, false)).status, 200);
      await clock.tickAsync(3000);
      await assert.rejects(get(`${server.url}/fast`, false), /ECONNREFUSED/);
    } finally {
      handle.dispose();
      await server.close();
    }
  });

  it('rejects close options that are not durations with InvalidArgumentError', () => {
    r = resilience({});
    const server = http.createServer();
    assert.throws(() => r!.close({ grace: -1 }), InvalidArgumentError);
    assert.throws(() => r!.close({ delay: Number.NaN }), InvalidArgumentError);
    assert.throws(
      () => closeOnSignals(server, r!, { delay: '5s' as unknown as number }),
      InvalidArgumentError,
    );
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

  it('answers every request of continuous keep-alive traffic through SIGTERM: 200 until it stops, then 503 with Connection: close, never a reset', async function () {
    this.timeout(60_000);
    // Real durations, short, and nothing asserted about time: the clients keep sending until
    // they are told to go away, whenever that is.
    const child = spawn(process.execPath, ['--import', 'tsx', APP], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, RESILIENCE_SHUTDOWN_DELAY: '300ms', RESILIENCE_SHUTDOWN_GRACE: '1s' },
    });
    // Nothing is released over stdin here; closing it leaves nothing else to keep the child up.
    child.stdin!.end();
    const agents: http.Agent[] = [];
    const keepAlive = (): http.Agent => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      return agent;
    };
    try {
      const [, port] = await waitForLine(child, /listening (\d+)\n/);
      const base = `http://127.0.0.1:${port}`;
      const hang = get(`${base}/hang`, keepAlive());
      await waitForLine(child, /hang-entered\n/);

      const clients = Array.from({ length: 4 }, () => {
        const agent = keepAlive();
        const warm = deferred();
        const client = { answers: [] as Answer[], errors: [] as unknown[], warm: warm.promise };
        const done = (async () => {
          for (;;) {
            let answer: Answer;
            try {
              answer = await get(`${base}/fast`, agent);
            } catch (err) {
              client.errors.push(err);
              warm.resolve();
              return;
            }
            client.answers.push(answer);
            if (client.answers.length === 3) warm.resolve();
            if (answer.status !== 200) return warm.resolve();
          }
        })();
        return { ...client, done };
      });
      await Promise.all(clients.map((c) => c.warm));

      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.all(clients.map((c) => c.done));
      for (const [i, c] of clients.entries()) {
        assert.deepEqual(c.errors, [], `client ${i}: no socket errors`);
        const statuses = c.answers.map((a) => a.status);
        assert.deepEqual(statuses, [...statuses.slice(0, -1).map(() => 200), 503], `client ${i}`);
        assert.equal(c.answers.at(-1)!.headers.connection, 'close', `client ${i}`);
        assert.ok(
          c.answers.slice(1).every((a) => a.reused),
          `client ${i} kept one connection throughout`,
        );
      }
      // Still running when the grace ran out: answered, not reset.
      const hung = await hang;
      assert.equal(hung.status, 503);
      assert.equal(hung.headers.connection, 'close');
      assert.equal((JSON.parse(hung.body) as { code: string }).code, 'ERR_SHUTTING_DOWN');
      assert.equal(await exited, 0);
    } finally {
      for (const agent of agents) agent.destroy();
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
