import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { resolveConfig } from '../../lib/config/index.js';
import type { RedisResourceConfig, ResilienceConfigInput } from '../../lib/config/types.js';
import { RedisStore } from '../../lib/policies/rate-limit/redis-store.js';
import type { RateLimitRule } from '../../lib/policies/rate-limit/store.js';
import { RedisResource } from '../../lib/resources/redis-resource.js';
import { createRedisFactory, redisOptions } from '../../lib/resources/redis/connection-factory.js';
import { IOREDIS_MAJORS } from '../helpers/ioredis-majors.js';
import { startRedis } from '../helpers/redis-server.js';
import type { RedisServer } from '../helpers/redis-server.js';

type RedisInput = NonNullable<NonNullable<ResilienceConfigInput['resources']>['redis']>[string];

const PASSWORD = 'right-Pa55-7f3c9d';
const WRONG = 'wrong-Pa55-0b81e2';
const USER_PASSWORD = 'user-Pa55-c4d2a6';
const RULE: RateLimitRule = Object.freeze({
  algorithm: 'gcra',
  limit: 5,
  windowMs: 60_000,
  burst: 0,
});

function redisConfig(input: RedisInput): RedisResourceConfig {
  return resolveConfig(
    {
      resources: {
        redis: { secret: { retry: { attempts: 1 }, pool: { min: 0 }, ...input } },
      },
    },
    { environment: {} },
  ).resources.redis.secret!;
}

/** What a logger or an error tracker could print of `error`, causes and properties included. */
function assertNoSecret(error: unknown, ...secrets: string[]): void {
  assert.ok(error instanceof Error, `expected an error, got ${inspect(error)}`);
  const printed = inspect(error, { depth: 10, showHidden: true });
  for (const secret of secrets) {
    assert.ok(!printed.includes(secret), `secret in the error:\n${printed}`);
    assert.ok(!JSON.stringify(error).includes(secret), 'secret in the error as JSON');
  }
}

/** Every message along the `cause` chain. */
function messagesOf(error: unknown): string {
  const out: string[] = [];
  for (let e = error; e instanceof Error && out.length < 10; e = e.cause) out.push(e.message);
  return out.join(' <- ');
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected a rejection');
}

describe('Redis errors carry no password', function () {
  this.timeout(20_000);
  let server: RedisServer;
  const resources: RedisResource[] = [];

  function resource(input: RedisInput): RedisResource {
    const r = new RedisResource(redisConfig({ port: server.port, ...input }));
    resources.push(r);
    return r;
  }

  before(async () => {
    server = await startRedis({
      password: PASSWORD,
      config: [`user reader on >${USER_PASSWORD} ~* +@all`],
    });
  });
  afterEach(async () => {
    await Promise.all(resources.splice(0).map((r) => r.close()));
  });
  after(async () => {
    await server?.close();
  });

  it('a wrong password: command, health-check and connection errors', async () => {
    const r = resource({ password: WRONG });
    const commandError = await rejection(r.command('GET', 'k'));
    assertNoSecret(commandError, WRONG, PASSWORD);
    assertNoSecret(await rejection(r.probe(AbortSignal.timeout(5000))), WRONG, PASSWORD);
    const factory = createRedisFactory(redisConfig({ port: server.port, password: WRONG }));
    assertNoSecret(await rejection(factory.create()), WRONG, PASSWORD);
  });

  it('a wrong username and password given in the URL', async () => {
    const url = `redis://reader:${encodeURIComponent(WRONG)}@127.0.0.1:${server.port}/0`;
    const r = resource({ url });
    assertNoSecret(await rejection(r.command('GET', 'k')), WRONG, PASSWORD);
    assertNoSecret(await rejection(r.probe(AbortSignal.timeout(5000))), WRONG, PASSWORD);
  });

  it('the right password: AUTH and HELLO sent as commands fail without echoing theirs', async () => {
    const r = resource({ url: `redis://reader:${USER_PASSWORD}@127.0.0.1:${server.port}` });
    assert.equal(await r.command('SET', 'k', 'v'), 'OK');
    assert.equal(await r.command('GET', 'k'), 'v');
    const auth = await rejection(r.command('AUTH', 'reader', WRONG));
    assert.match((auth as Error).message, /WRONGPASS/);
    assertNoSecret(auth, WRONG, PASSWORD, USER_PASSWORD);
    const hello = await rejection(r.command('HELLO', '2', 'AUTH', 'reader', WRONG));
    assertNoSecret(hello, WRONG, PASSWORD, USER_PASSWORD);
    const leased = await rejection(
      r.withConnection((conn) => conn.call('AUTH', 'default', WRONG) as Promise<unknown>),
    );
    assertNoSecret(leased, WRONG, PASSWORD, USER_PASSWORD);
  });

  for (const io of IOREDIS_MAJORS) {
    it(`rate-limit store errors (${io.name} client)`, async () => {
      const base = redisOptions(redisConfig({ port: server.port, password: WRONG }));
      // With an offline queue, the decisions sent while it connects fail with AUTH's own error.
      const client = new io.Redis({
        ...base,
        enableOfflineQueue: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      const events: unknown[] = [];
      client.on('error', (error: unknown) => events.push(error));
      try {
        const connecting = client.connect().catch(() => undefined);
        const store = new RedisStore({ client });
        const error = await rejection(store.consume('k', RULE));
        assert.match(messagesOf(error), /WRONGPASS/);
        assertNoSecret(error, WRONG, PASSWORD);
        await connecting;
        assertNoSecret(await rejection(store.consume('k', RULE)), WRONG, PASSWORD);
        store.close();
        // The client's own error events are the application's, not the pack's: not checked.
        assert.ok(events.length > 0);
      } finally {
        client.disconnect();
      }
    });
  }
});
