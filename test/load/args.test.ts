import assert from 'node:assert/strict';
import { UsageError, parseRunArgs } from '../../load/args.js';

describe('load/args', () => {
  it('defaults: every scenario, the example service, Redis at the usual address', () => {
    const options = parseRunArgs([]);
    assert.deepEqual(options.scenarios, []);
    assert.equal(options.target, undefined);
    assert.equal(options.redis, 'redis://127.0.0.1:6379');
    assert.equal(options.outDir, 'load');
    assert.equal(options.verbose, false);
  });

  it('takes scenarios repeated, comma-separated or positional', () => {
    assert.deepEqual(
      parseRunArgs(['--scenario', 'smoke', '-s', 'breaker,chaos', 'spike']).scenarios,
      ['smoke', 'breaker', 'chaos', 'spike'],
    );
  });

  it('takes a target and the upstream with it, without a trailing slash', () => {
    const options = parseRunArgs([
      '--target',
      'http://127.0.0.1:3000/',
      '--upstream',
      'http://127.0.0.1:4000',
    ]);
    assert.equal(options.target, 'http://127.0.0.1:3000');
    assert.equal(options.upstream, 'http://127.0.0.1:4000');
  });

  it('collects --var NAME=VALUE', () => {
    assert.deepEqual(
      parseRunArgs(['--var', 'ENDURANCE_DURATION=600', '--var', 'X=a=b']).variables,
      {
        ENDURANCE_DURATION: '600',
        X: 'a=b',
      },
    );
  });

  it('reads REDIS_URL, and --no-redis turns Redis off', () => {
    assert.equal(
      parseRunArgs([], { REDIS_URL: 'redis://10.0.0.1:6380' }).redis,
      'redis://10.0.0.1:6380',
    );
    assert.equal(parseRunArgs(['--redis', 'redis://h:1']).redis, 'redis://h:1');
    assert.equal(parseRunArgs(['--no-redis']).redis, null);
  });

  it('refuses mistakes with a UsageError naming them', () => {
    const cases: [string[], RegExp][] = [
      [['--target', 'ftp://x'], /--target must be an http\(s\) URL/],
      [['--upstream', 'http://x'], /--upstream only makes sense with --target/],
      [['--var', 'lower=1'], /--var takes NAME=VALUE/],
      [['--redis', 'redis://x', '--no-redis'], /contradict/],
      [['--bogus'], /bogus/],
      [['--scenario', 'a b'], /bad scenario name/],
    ];
    for (const [argv, message] of cases) {
      assert.throws(
        () => parseRunArgs(argv),
        (err) => err instanceof UsageError && message.test(err.message),
        argv.join(' '),
      );
    }
  });
});
