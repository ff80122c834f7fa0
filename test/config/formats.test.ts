import assert from 'node:assert/strict';
import {
  addressList,
  bearerToken,
  boolean,
  buckets,
  bytes,
  duration,
  entryEnvVar,
  errorStatus,
  headerMap,
  headerName,
  hostPorts,
  httpOrigin,
  integer,
  maskUrl,
  metricPrefix,
  labelName,
  number,
  oneOf,
  pathList,
  rateLimitKey,
  rateLimitStore,
  redisUrl,
  statusCodes,
  statusPatterns,
  trustProxy,
  urlPath,
} from '../../lib/config/formats.js';
import { run } from './helpers.js';
import type { Format } from '../../lib/config/walk.js';

function accepts(format: Format, cases: [unknown, unknown][]): void {
  for (const [input, expected] of cases) {
    const result = run(format, input);
    assert.deepEqual(result.problems, [], `${JSON.stringify(input)} should be accepted`);
    assert.deepEqual(result.value, expected, `${JSON.stringify(input)} coerces`);
  }
}

function rejects(format: Format, inputs: unknown[], message?: RegExp): void {
  for (const input of inputs) {
    const result = run(format, input);
    assert.ok(result.problems.length > 0, `${JSON.stringify(input)} should be rejected`);
    if (message) assert.match(result.problems.join('\n'), message);
  }
}

describe('config formats', () => {
  describe('duration', () => {
    const format = duration();

    it('resolves units, numbers and digit strings to integer milliseconds', () => {
      accepts(format, [
        ['250ms', 250],
        ['5s', 5000],
        ['1m', 60_000],
        ['1h', 3_600_000],
        ['1.5s', 1500],
        ['0.0004s', 0],
        ['.5m', 30_000],
        [' 2s ', 2000],
        [1500, 1500],
        [12.6, 13],
        [0, 0],
        ['0', 0],
        ['750', 750],
      ]);
    });

    it('rejects negatives, garbage, unknown units and values past the timer limit', () => {
      rejects(format, [-1, '-5s'], /must not be negative/);
      rejects(
        format,
        ['5 sec', '', 'soon', '5d', '1e3', '5S', 'ms', NaN, Infinity, true, null, [], {}],
        /must be a duration like "250ms", "5s", "1m", "1h" or a number of milliseconds/,
      );
      rejects(format, ['600h', 2 ** 31], /at most 2147483647ms/);
    });

    it('with min 1 rejects zero', () => {
      rejects(duration({ min: 1 }), [0, '0ms', '0.1ms'], /at least 1ms/);
      accepts(duration({ min: 1 }), [['1ms', 1]]);
    });

    it('is idempotent (convict re-validates coerced values)', () => {
      assert.equal(run(format, run(format, '2.5s').value).value, 2500);
    });
  });

  describe('bytes', () => {
    it('accepts byte counts and unit strings', () => {
      accepts(bytes, [
        [0, 0],
        [1024, 1024],
        ['512kb', 512_000],
        ['10MiB', 10 * 1024 * 1024],
        ['1 GiB', 1024 ** 3],
        ['2mb', 2_000_000],
        ['100', 100],
      ]);
    });
    it('rejects negatives, fractions of a byte count and unknown units', () => {
      rejects(bytes, [-1, 1.5, '10 megabytes', '5xb', '', 'mb', true], /must be a size in bytes/);
    });
    it('reads digit strings from env vars', () => {
      assert.equal(bytes.fromEnv?.('2048'), 2048);
      assert.equal(bytes.fromEnv?.('2kb'), '2kb');
    });
  });

  describe('scalars', () => {
    it('boolean accepts only booleans; env text true/false/1/0', () => {
      accepts(boolean, [
        [true, true],
        [false, false],
      ]);
      rejects(boolean, ['true', 1, 0, null], /must be true or false/);
      assert.equal(boolean.fromEnv?.('TRUE'), true);
      assert.equal(boolean.fromEnv?.('0'), false);
      assert.equal(boolean.fromEnv?.('yes'), 'yes');
    });

    it('integer and number enforce bounds and say so', () => {
      accepts(integer({ min: 1, max: 128 }), [
        [1, 1],
        [128, 128],
      ]);
      rejects(
        integer({ min: 1, max: 128 }),
        [0, 129, 1.5, '5'],
        /must be an integer between 1 and 128/,
      );
      rejects(integer({ min: 0 }), [-1], /must be an integer >= 0/);
      accepts(number({ min: 0, max: 1 }), [[0.2, 0.2]]);
      rejects(
        number({ min: 1, max: 100 }),
        [0.5, 101, NaN, '50'],
        /must be a number between 1 and 100/,
      );
      assert.equal(integer().fromEnv?.('42'), 42);
      assert.equal(integer().fromEnv?.('4x'), '4x');
    });

    it('oneOf lists the allowed values', () => {
      const format = oneOf(['gcra', 'fixed-window'] as const);
      accepts(format, [['gcra', 'gcra']]);
      rejects(format, ['GCRA', 'sliding', 1], /must be one of gcra, fixed-window/);
    });

    it('names are label-safe', () => {
      accepts(labelName, [['create-order.v2:eu_1', 'create-order.v2:eu_1']]);
      rejects(labelName, ['create order', 'ünicode', 'a/b'], /letters, digits and _ . : -/);
      rejects(labelName, ['', 5], /must be a non-empty string/);
    });

    it('paths start with "/" and hold no query', () => {
      accepts(urlPath, [['/metrics', '/metrics']]);
      rejects(urlPath, ['metrics', '/a?b=1', '/a b', '', 1], /must be a path starting with "\/"/);
      assert.deepEqual(run(pathList, ['/a', 'b']).problems, [
        'x[1]: must be a path starting with "/" (no spaces, query or fragment), got "b"',
      ]);
    });

    it('header names are tokens, lower-cased', () => {
      accepts(headerName, [['X-Request-Timeout-Ms', 'x-request-timeout-ms']]);
      rejects(headerName, ['x header', '', 'x:y'], /must be an HTTP header name/);
    });

    it('metric prefixes follow Prometheus naming (empty allowed)', () => {
      accepts(metricPrefix, [
        ['resilience_', 'resilience_'],
        ['', ''],
        ['app:http_', 'app:http_'],
      ]);
      rejects(metricPrefix, ['1abc', 'my-app_', 'a b'], /Prometheus metric name prefix/);
    });
  });

  describe('status formats', () => {
    it('status patterns accept 1xx-5xx classes and exact codes, numbers included', () => {
      accepts(statusPatterns, [
        [
          ['5xx', '4xx', '429'],
          ['5xx', '4xx', '429'],
        ],
        [
          [503, '5xx'],
          ['503', '5xx'],
        ],
        [[], []],
      ]);
    });

    it('status patterns report each bad entry at its index', () => {
      assert.deepEqual(run(statusPatterns, ['5xx', '5XX', '6xx', 'xx', 1000]).problems, [
        'x[1]: must be a status pattern like "5xx", "4xx" or "503", got "5XX"',
        'x[2]: must be a status pattern like "5xx", "4xx" or "503", got "6xx"',
        'x[3]: must be a status pattern like "5xx", "4xx" or "503", got "xx"',
        'x[4]: must be a status pattern like "5xx", "4xx" or "503", got 1000',
      ]);
      rejects(statusPatterns, ['5xx'], /must be a list/);
    });

    it('status codes are 100-599 integers', () => {
      accepts(statusCodes, [
        [
          [502, '503'],
          [502, 503],
        ],
      ]);
      assert.equal(run(statusCodes, [99, 600, 'x']).problems.length, 3);
    });

    it('the timeout status is a 4xx or 5xx code', () => {
      accepts(errorStatus, [
        [504, 504],
        [408, 408],
      ]);
      rejects(errorStatus, [200, 302, 600, '504', 504.5], /must be a 4xx or 5xx status code/);
    });

    it('buckets are positive and ascending', () => {
      accepts(buckets, [
        [
          [0.1, 1, 10],
          [0.1, 1, 10],
        ],
      ]);
      assert.match(run(buckets, [1, 0.5]).problems.join(), /ascending order/);
      assert.match(run(buckets, [1, 1]).problems.join(), /ascending order/);
      assert.match(run(buckets, [0, 1]).problems.join(), /x\[0\]: must be a positive number/);
      rejects(buckets, [[]], /must not be empty/);
      assert.deepEqual(buckets.fromEnv?.('0.1, 1,5'), ['0.1', '1', '5']);
      assert.deepEqual(run(buckets, buckets.fromEnv?.('0.1, 1,5')).value, [0.1, 1, 5]);
    });
  });

  describe('trustProxy', () => {
    it('accepts what Express accepts', () => {
      accepts(trustProxy, [
        [false, false],
        [true, true],
        [0, 0],
        [2, 2],
        ['loopback', 'loopback'],
        ['loopback, 10.0.0.0/8', 'loopback, 10.0.0.0/8'],
        [
          ['uniquelocal', '192.168.0.1', 'fe80::/10', '10.0.0.0/255.0.0.0'],
          ['uniquelocal', '192.168.0.1', 'fe80::/10', '10.0.0.0/255.0.0.0'],
        ],
      ]);
    });

    it('rejects bad addresses, subnets, presets and negative hop counts', () => {
      rejects(trustProxy, ['lookback'], /invalid address "lookback"/);
      rejects(trustProxy, ['10.0.0.0/33', '10.0.0.0/0', '10.0.0.0/255.0.255.0'], /invalid subnet/);
      rejects(trustProxy, [-1, 1.5, '', 'a,,b', [1], {}, null], /must be true, false, a hop count/);
    });

    it('reads env text as boolean, hop count or list', () => {
      assert.equal(trustProxy.fromEnv?.('true'), true);
      assert.equal(trustProxy.fromEnv?.('false'), false);
      assert.equal(trustProxy.fromEnv?.('2'), 2);
      assert.equal(trustProxy.fromEnv?.('loopback,10.0.0.1'), 'loopback,10.0.0.1');
    });
  });

  describe('endpoint protection', () => {
    it('allowlists take IPv4 and IPv6 addresses and CIDR ranges', () => {
      const list = [
        '127.0.0.1',
        '10.0.0.0/8',
        '0.0.0.0/0',
        '::1',
        '2001:db8::/32',
        '::ffff:10.0.0.0/104',
      ];
      accepts(addressList, [
        [list, list],
        [[], []],
      ]);
    });

    it('allowlists refuse keys, typos, bad prefixes and zone ids, naming the entry', () => {
      for (const entry of ['localhost', '10.0.0/8', '10.0.0.1 ', 'office', '', 'fe80::1%eth0', 7]) {
        assert.match(
          run(addressList, ['127.0.0.1', entry]).problems.join('\n'),
          /^x\[1\]: must be an IP address or CIDR range like "10\.0\.0\.0\/8"/,
          JSON.stringify(entry),
        );
      }
      for (const [entry, max] of [
        ['10.0.0.0/33', 32],
        ['10.0.0.0/-1', 32],
        ['10.0.0.0/255.0.0.0', 32],
        ['2001:db8::/129', 128],
        ['::/', 128],
      ] as const) {
        assert.deepEqual(run(addressList, [entry]).problems, [
          `x[0]: must have a prefix length from 0 to ${max}, got ${JSON.stringify(entry)}`,
        ]);
      }
      rejects(addressList, ['10.0.0.1', null], /must be a list/);
    });

    it('allowlists read env text as a comma list or a JSON array', () => {
      assert.deepEqual(addressList.fromEnv?.('10.0.0.0/8, ::1'), ['10.0.0.0/8', '::1']);
      assert.deepEqual(addressList.fromEnv?.('["10.0.0.1"]'), ['10.0.0.1']);
      assert.deepEqual(addressList.fromEnv?.(''), []);
    });

    it('tokens are bearer tokens of at least 16 characters, never echoed', () => {
      accepts(bearerToken, [
        ['0123456789abcdef', '0123456789abcdef'],
        ['abc-DEF_ghi.jkl~mno+pq/rs==', 'abc-DEF_ghi.jkl~mno+pq/rs=='],
      ]);
      assert.deepEqual(run(bearerToken, 'short-secret').problems, [
        'must be at least 16 characters long (got 12)',
      ]);
      for (const bad of ['0123456789 abcdef', '0123456789abcdef\n', '=0123456789abcdef', '', 42]) {
        const { problems } = run(bearerToken, bad);
        assert.equal(problems.length, 1, JSON.stringify(bad));
        assert.match(problems[0]!, /^must be a bearer token: letters, digits/);
        if (typeof bad === 'string' && bad !== '') assert.ok(!problems[0]!.includes(bad.trim()));
      }
    });
  });

  describe('rate-limit key and store', () => {
    it('key is ip, header:<name> or fn:<name>', () => {
      accepts(rateLimitKey, [
        ['ip', 'ip'],
        ['header:X-Api-Key', 'header:x-api-key'],
        ['fn:tenant', 'fn:tenant'],
      ]);
      rejects(
        rateLimitKey,
        ['IP', 'header:', 'header:a b', 'fn:', 'fn:1x', 'user', 5],
        /must be "ip", "header:<header name>" or "fn:<name>"/,
      );
    });

    it('store is memory or redis:<name>', () => {
      accepts(rateLimitStore, [
        ['memory', 'memory'],
        ['redis:cache', 'redis:cache'],
      ]);
      rejects(
        rateLimitStore,
        ['redis', 'redis:', 'redis:a b', 'postgres:x', null],
        /must be "memory" or "redis:<name/,
      );
    });
  });

  describe('resources', () => {
    it('http origins resolve to URL.origin and refuse paths, queries and credentials', () => {
      accepts(httpOrigin, [
        ['http://127.0.0.1:4000', 'http://127.0.0.1:4000'],
        ['https://Payments.internal:443/', 'https://payments.internal'],
      ]);
      rejects(
        httpOrigin,
        ['ftp://x', 'http://x/api', 'http://x?a=1', 'http://x#f', 'payments', 4000],
        /must be an http:\/\/ or https:\/\/ origin without path, query or credentials/,
      );
      const withPassword = run(httpOrigin, 'http://u:secret@x');
      assert.ok(withPassword.problems.length === 1);
    });

    it('redis urls must be redis:// or rediss:// and never echo their value', () => {
      accepts(redisUrl, [
        ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
        ['rediss://user:pw@cache.internal:6380/2', 'rediss://user:pw@cache.internal:6380/2'],
      ]);
      const bad = run(redisUrl, 'http://user:secret@host');
      assert.deepEqual(bad.problems, ['must be a redis:// or rediss:// URL with a host']);
      rejects(redisUrl, ['redis://', 'not a url', 6379]);
    });

    it('masks URL passwords only', () => {
      assert.equal(
        maskUrl('redis://user:secret@host:6379/0'),
        'redis://user:[redacted]@host:6379/0',
      );
      assert.equal(maskUrl('redis://:secret@host'), 'redis://:[redacted]@host');
      assert.equal(maskUrl('redis://host:6379'), 'redis://host:6379');
      assert.equal(maskUrl('::::'), '[redacted]');
      assert.equal(redisUrl.redact?.('rediss://a:b@c'), 'rediss://a:[redacted]@c');
    });

    it('host:port lists accept objects and strings', () => {
      accepts(hostPorts, [
        [
          [{ host: 'a', port: 26379 }, 'b:26380', '[::1]:7000'],
          [
            { host: 'a', port: 26379 },
            { host: 'b', port: 26380 },
            { host: '::1', port: 7000 },
          ],
        ],
      ]);
      assert.deepEqual(
        run(hostPorts, ['a', { host: 'a', port: 0 }, { host: 'a', port: 1, x: 1 }]).problems,
        [
          'x[0]: must be { host, port } or "host:port", got "a"',
          'x[1]: must be { host, port } or "host:port", got an object',
          'x[2]: must be { host, port } or "host:port", got an object',
        ],
      );
    });

    it('header maps lower-case names, stringify numbers and redact credentials', () => {
      accepts(headerMap, [
        [
          { 'X-Version': 2, Accept: 'json' },
          { 'x-version': '2', accept: 'json' },
        ],
      ]);
      assert.deepEqual(run(headerMap, { 'bad header': 'x', ok: {} }).problems, [
        'x.bad header: is not a valid HTTP header name',
        'x.ok: must be a string',
      ]);
      assert.deepEqual(
        headerMap.redact?.({
          authorization: 'Bearer t',
          'x-api-key': 'k',
          cookie: 'c',
          accept: 'json',
        }),
        {
          authorization: '[redacted]',
          'x-api-key': '[redacted]',
          cookie: '[redacted]',
          accept: 'json',
        },
      );
    });

    it('derives per-entry env var names', () => {
      assert.equal(
        entryEnvVar('RESILIENCE_REDIS', 'rate-limits.eu', 'URL'),
        'RESILIENCE_REDIS_RATE_LIMITS_EU_URL',
      );
      assert.equal(
        entryEnvVar('RESILIENCE_HTTP', 'payments', 'ORIGIN'),
        'RESILIENCE_HTTP_PAYMENTS_ORIGIN',
      );
    });
  });
});
