import assert from 'node:assert/strict';
import { PoolClosedError, ResourceUnavailableError } from '../../lib/errors.js';
import type { PoolFactory } from '../../lib/resources/pool.js';
import { ProbeMember } from '../../lib/resources/probe-member.js';
import { deferred } from '../helpers/deferred.js';
import type { Deferred } from '../helpers/deferred.js';

interface Conn {
  id: number;
  open: boolean;
  valid: boolean;
}

class Factory implements PoolFactory<Conn> {
  created = 0;
  readonly live = new Set<Conn>();
  failWith: Error | undefined = undefined;
  gate: Deferred<void> | undefined = undefined;

  async create(): Promise<Conn> {
    if (this.gate !== undefined) await this.gate.promise;
    if (this.failWith !== undefined) throw this.failWith;
    const conn = { id: ++this.created, open: true, valid: true };
    this.live.add(conn);
    return conn;
  }

  async destroy(conn: Conn): Promise<void> {
    assert.ok(conn.open, `member ${conn.id} destroyed twice`);
    conn.open = false;
    this.live.delete(conn);
  }

  validate(conn: Conn): boolean {
    return conn.valid;
  }
}

const signal = (): AbortSignal => new AbortController().signal;

describe('ProbeMember', () => {
  let factory: Factory;
  let probe: ProbeMember<Conn>;

  beforeEach(() => {
    factory = new Factory();
    probe = new ProbeMember(factory, 'api');
  });

  afterEach(async () => {
    await probe.close();
    assert.equal(factory.live.size, 0, 'close() leaves no member behind');
  });

  it('creates its member lazily and keeps it between probes', async () => {
    assert.equal(factory.created, 0);
    const first = await probe.use(async (c) => c, { signal: signal() });
    const second = await probe.use(async (c) => c, { signal: signal() });
    assert.equal(first, second);
    assert.equal(factory.created, 1);
  });

  it('replaces a member that fails validation, and destroys a broken one', async () => {
    const first = await probe.use(async (c) => c, { signal: signal() });
    first.valid = false;
    const second = await probe.use(async (c) => c, { signal: signal() });
    assert.notEqual(second, first);
    assert.equal(first.open, false);
    await assert.rejects(
      probe.use(() => Promise.reject(new Error('reset')), {
        signal: signal(),
        isBroken: () => true,
      }),
      /reset/,
    );
    assert.equal(second.open, false);
    assert.equal(factory.live.size, 0);
  });

  it('gives an overlapping probe a member of its own, destroyed afterwards', async () => {
    const release = deferred();
    const seen: Conn[] = [];
    const slow = probe.use(async (c) => (seen.push(c), release.promise), { signal: signal() });
    await probe.use(async (c) => void seen.push(c), { signal: signal() });
    release.resolve();
    await slow;
    assert.equal(seen.length, 2);
    assert.notEqual(seen[0], seen[1]);
    assert.equal(factory.live.size, 1, 'one member is kept');
  });

  it('fails with ResourceUnavailableError carrying the cause when no member can be created', async () => {
    const cause = new Error('ECONNREFUSED');
    factory.failWith = cause;
    await assert.rejects(
      probe.use(async () => undefined, { signal: signal() }),
      (err) => {
        assert.ok(err instanceof ResourceUnavailableError);
        assert.equal(err.cause, cause);
        assert.equal(err.resource, 'api');
        return true;
      },
    );
  });

  it('rejects with the abort reason during a slow create, and keeps what the create made', async () => {
    factory.gate = deferred();
    const controller = new AbortController();
    const using = probe.use(async (c) => c, { signal: controller.signal });
    const reason = new Error('probe timed out');
    controller.abort(reason);
    await assert.rejects(using, (err) => err === reason);
    factory.gate.resolve();
    factory.gate = undefined;
    // The create settles within microtasks: one turn of the event loop lets it land.
    await new Promise((resolve) => setImmediate(resolve));
    const next = await probe.use(async (c) => c, { signal: signal() });
    assert.equal(next.id, 1, 'the late member serves the next probe');
    assert.equal(factory.created, 1);
  });

  it('after close, destroys late members and refuses probes with PoolClosedError', async () => {
    factory.gate = deferred();
    const using = probe.use(async (c) => c, { signal: signal() });
    const closing = probe.close();
    factory.gate.resolve();
    await assert.rejects(using, PoolClosedError);
    await closing;
    assert.equal(factory.live.size, 0);
    await assert.rejects(
      probe.use(async (c) => c, { signal: signal() }),
      PoolClosedError,
    );
  });
});
