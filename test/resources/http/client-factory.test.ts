import assert from 'node:assert/strict';
import type { Client } from 'undici';
import { errors } from 'undici';
import { resolveConfig } from '../../../lib/config/index.js';
import type { HttpResourceConfig, ResilienceConfigInput } from '../../../lib/config/types.js';
import { ConfigError, isConfigError } from '../../../lib/errors.js';
import {
  createClientFactory,
  preciseConnector,
} from '../../../lib/resources/http/client-factory.js';
import { loadTlsMaterial } from '../../../lib/resources/tls.js';
import { until } from '../../helpers/deferred.js';
import { generateTls, writeTempPem } from '../../helpers/tls.js';
import { closedPort, startBlackhole, startUpstream } from '../../helpers/upstream.js';
import type { Upstream } from '../../helpers/upstream.js';

type HttpInput = NonNullable<NonNullable<ResilienceConfigInput['resources']>['http']>[string];

function config(origin: string, input: Omit<HttpInput, 'origin'> = {}): HttpResourceConfig {
  return resolveConfig({ resources: { http: { up: { origin, ...input } } } }, { environment: {} })
    .resources.http.up!;
}

async function get(client: Client, path = '/'): Promise<{ statusCode: number; text: string }> {
  const res = await client.request({ method: 'GET', path });
  return { statusCode: res.statusCode, text: await res.body.text() };
}

describe('HTTP client factory', () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function upstream(options?: Parameters<typeof startUpstream>[0]): Promise<Upstream> {
    const u = await startUpstream(options);
    cleanup.push(() => u.close());
    return u;
  }

  describe('loadTlsMaterial', () => {
    it('takes PEM text as is and reads file paths', () => {
      const tls = generateTls();
      const file = writeTempPem('ca.pem', tls.ca);
      cleanup.push(file.remove);
      const material = loadTlsMaterial('resources.http.payments.tls', {
        ca: file.path,
        cert: tls.clientCert,
        rejectUnauthorized: true,
      });
      assert.deepEqual(material, { ca: tls.ca, cert: tls.clientCert, key: undefined });
    });

    it('fails with a ConfigError naming the resource and field when a file is missing', () => {
      assert.throws(
        () =>
          loadTlsMaterial('resources.http.payments.tls', {
            key: '/nonexistent/key.pem',
            rejectUnauthorized: true,
          }),
        (err: unknown) => {
          assert.ok(isConfigError(err));
          assert.match(err.message, /resources\.http\.payments\.tls\.key/);
          assert.match(err.message, /\/nonexistent\/key\.pem/);
          assert.match(err.message, /ENOENT/);
          return true;
        },
      );
    });

    it('fails when a file holds no PEM block, without echoing its content', () => {
      const file = writeTempPem('cert.pem', 'secret garbage');
      cleanup.push(file.remove);
      assert.throws(
        () =>
          loadTlsMaterial('resources.http.payments.tls', {
            cert: file.path,
            rejectUnauthorized: true,
          }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.match(err.message, /resources\.http\.payments\.tls\.cert: .* holds no PEM block/);
          assert.doesNotMatch(err.message, /secret garbage/);
          return true;
        },
      );
    });

    it('makes createClientFactory fail at construction', () => {
      assert.throws(
        () =>
          createClientFactory(
            config('https://127.0.0.1:1', { tls: { ca: '/nonexistent/ca.pem' } }),
          ),
        /resources\.http\.up\.tls\.ca/,
      );
    });
  });

  describe('create', () => {
    it('connects before resolving, and the client uses that connection', async () => {
      const u = await upstream();
      const factory = createClientFactory(config(u.origin));
      const client = await factory.create();
      cleanup.push(() => factory.destroy(client));
      assert.equal(u.connections, 1);
      assert.equal(u.requests.count, 0);
      assert.equal((await get(client, '/a')).statusCode, 200);
      assert.equal((await get(client, '/b')).statusCode, 200);
      assert.equal(u.connections, 1);
      assert.equal(await factory.validate!(client), true);
    });

    it('rejects with the connection error when nothing listens', async () => {
      const factory = createClientFactory(config(`http://127.0.0.1:${await closedPort()}`));
      await assert.rejects(factory.create(), { code: 'ECONNREFUSED' });
    });

    it('rejects with ConnectTimeoutError when the TLS handshake never completes', async () => {
      const hole = await startBlackhole();
      cleanup.push(() => hole.close());
      const factory = createClientFactory(
        config(`https://127.0.0.1:${hole.port}`, { timeouts: { connect: 50 } }),
      );
      await assert.rejects(factory.create(), (err: unknown) => {
        assert.ok(err instanceof errors.ConnectTimeoutError);
        assert.match(err.message, /Connect timeout of 50 ms exceeded/);
        return true;
      });
      // It did reach the server (accepting may lag behind the timer when the loop is busy).
      await until(() => hole.connections === 1, 'the connection to be accepted');
    });

    it('verifies the server against the configured CA, and fails without it', async () => {
      const tls = generateTls();
      const u = await upstream({ tls: { cert: tls.cert, key: tls.key } });
      const trusted = createClientFactory(config(u.origin, { tls: { ca: tls.ca } }));
      const client = await trusted.create();
      cleanup.push(() => trusted.destroy(client));
      assert.equal((await get(client)).statusCode, 200);

      const untrusted = createClientFactory(config(u.origin));
      await assert.rejects(untrusted.create(), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    });

    it('checks the servername, and presents a client certificate for mutual TLS', async () => {
      const tls = generateTls();
      const u = await upstream({
        tls: { cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: true },
      });
      const wrongName = createClientFactory(
        config(u.origin, { tls: { ca: tls.ca, servername: 'elsewhere.test' } }),
      );
      await assert.rejects(wrongName.create(), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });

      const key = writeTempPem('client.key', tls.clientKey);
      cleanup.push(key.remove);
      const mutual = createClientFactory(
        config(u.origin, { tls: { ca: tls.ca, cert: tls.clientCert, key: key.path } }),
      );
      const client = await mutual.create();
      cleanup.push(() => mutual.destroy(client));
      assert.equal((await get(client)).statusCode, 200);
    });
  });

  describe('validate and destroy', () => {
    it('refuses a destroyed client; destroy closes a connection never used', async () => {
      const u = await upstream();
      const factory = createClientFactory(config(u.origin));
      const client = await factory.create();
      assert.equal(u.connections, 1);
      await factory.destroy(client);
      assert.equal(await factory.validate!(client), false);
      assert.equal(client.destroyed, true);
    });

    it('refuses a closed client', async () => {
      const u = await upstream();
      const factory = createClientFactory(config(u.origin));
      const client = await factory.create();
      cleanup.push(() => factory.destroy(client));
      void client.close();
      assert.equal(await factory.validate!(client), false);
    });
  });

  describe('preciseConnector', () => {
    it('reports a connect timeout once, even if the socket connects later', async () => {
      const hole = await startBlackhole();
      cleanup.push(() => hole.close());
      const connect = preciseConnector(30, {});
      const calls: unknown[] = [];
      await new Promise<void>((resolve) => {
        connect(
          { protocol: 'https:', hostname: '127.0.0.1', port: String(hole.port) },
          (...args) => {
            calls.push(args[0]);
            resolve();
          },
        );
      });
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(calls.length, 1);
      assert.ok(calls[0] instanceof errors.ConnectTimeoutError);
    });
  });
});
