import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../lib/index.js';
import { CONFIG_DIR } from '../../examples/resilient-service/service.js';
import {
  ensureExpressions,
  listScenarios,
  loadScenario,
  phasePlan,
  phaseSeconds,
  renderEnv,
  resolveVariables,
  scenarioFile,
  timeline,
} from '../../load/scenario.js';

describe('load/scenario', () => {
  describe('the bundled scenarios', () => {
    const names = listScenarios();

    it('are all there, smoke first', () => {
      for (const name of [
        'smoke',
        'load',
        'spike',
        'stress',
        'endurance',
        'chaos',
        'breaker',
        'bulkhead',
        'rate-limit',
        'pool-exhaustion',
      ]) {
        assert.ok(names.includes(name), name);
      }
      assert.equal(names[0], 'smoke');
    });

    for (const name of listScenarios()) {
      it(`${name}: has a description, variables for its lengths, and every kind of threshold`, () => {
        const s = loadScenario(scenarioFile(name));
        assert.ok(s.description.length > 10);
        const values = resolveVariables(s, {});
        for (const phase of phasePlan(s, values)) {
          assert.ok(phase.seconds > 0, `${phase.name} has a length`);
          assert.match(phase.name, /^[\w-]+$/);
        }
        const expressions = [...ensureExpressions(s, values).keys()].join('\n');
        assert.match(
          expressions,
          /\(plugins\.expect\.failed \+ vusers\.failed\) \/ http\.requests \* 100 <= [\d.]+/,
          'a maximum unexpected-error rate',
        );
        assert.match(expressions, /http\.response_time(\.\dxx)?\.p95 </, 'a p95 bound');
        assert.match(expressions, /http\.response_time(\.\dxx)?\.p99 </, 'a p99 bound');
        assert.match(expressions, /http\.request_rate >= \d+/, 'a minimum throughput');
        assert.doesNotMatch(expressions, /\{\{/, 'every variable has a default');
      });
    }

    it('smoke stays within 20 s of load, the others within a couple of minutes by default', () => {
      for (const name of names) {
        const s = loadScenario(scenarioFile(name));
        const total = phasePlan(s, resolveVariables(s, {})).reduce((a, p) => a + p.seconds, 0);
        assert.ok(total <= (name === 'smoke' ? 20 : 150), `${name}: ${total} s`);
      }
    });

    it('rate-limit: its limit and burst are the ones the example service is configured with', () => {
      const s = loadScenario(scenarioFile('rate-limit'));
      const config = loadConfig({ dir: CONFIG_DIR, env: 'load', environment: {} });
      const route = config.middleware.routes.find((r) => r.name === 'create-order')!;
      assert.equal(route.rateLimit.enabled, true);
      assert.equal(route.rateLimit.key, 'header:x-client-id');
      assert.equal(
        Number(s.variables.RATE_LIMIT_LIMIT),
        (route.rateLimit.limit * 1000) / route.rateLimit.window,
      );
      assert.equal(Number(s.variables.RATE_LIMIT_BURST), route.rateLimit.burst);
    });
  });

  describe('variables and phases', () => {
    it('takes --var over the environment over the default', () => {
      const s = { variables: { A: '1', B: '2', C: '3' } };
      assert.deepEqual(resolveVariables(s, { B: 'env', C: 'env' }, { C: 'cli' }), {
        A: '1',
        B: 'env',
        C: 'cli',
      });
    });

    it('renders {{ $env.NAME }} and leaves unknown names', () => {
      assert.equal(
        renderEnv('a {{ $env.X }} b {{$env.Y}} {{ other }}', { X: '1' }),
        'a 1 b {{$env.Y}} {{ other }}',
      );
    });

    it('reads phase lengths in seconds, minutes and hours', () => {
      assert.equal(phaseSeconds(30), 30);
      assert.equal(phaseSeconds('2m'), 120);
      assert.equal(phaseSeconds('1h'), 3600);
      assert.equal(phaseSeconds('{{ $env.D }}', { D: '45' }), 45);
      assert.ok(Number.isNaN(phaseSeconds('soon')));
    });

    it('turns the phases into time windows, with quarters of one phase', () => {
      const plan = [
        { name: 'warm-up', seconds: 10 },
        { name: 'soak', seconds: 120 },
      ];
      assert.equal(timeline(plan), 'warm-up:0-10,soak:10-');
      assert.equal(
        timeline(plan, 'soak'),
        'warm-up:0-10,soak:10-,q1:10-40,q2:40-70,q3:70-100,q4:100-',
      );
      assert.equal(
        timeline(
          [
            { name: 'a', seconds: 8 },
            { name: 'b', seconds: 8 },
          ],
          'a',
        ),
        'a:0-8,q1:0-2,q2:2-4,q3:4-6,q4:6-8,b:8-',
      );
    });
  });

  describe('loadScenario', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'scenario-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const write = (text: string) => {
      const file = join(dir, 'custom.yml');
      writeFileSync(file, text);
      return file;
    };

    it('reads x-runner, the phases and the ensure checks with their descriptions', () => {
      const s = loadScenario(
        write(`config:
  phases: [{ name: 'p {{ $env.N }}', duration: '{{ $env.D }}', arrivalRate: 1 }]
  ensure:
    thresholds: [{ http.response_time.p95: 200 }, { rejection_ms.ERR_X.p99: 40 }, { custom.metric: 3 }]
    conditions:
      - { expression: 'a < {{ $env.N }}', description: 'a is under {{ $env.N }}' }
      - { expression: 'b > 0' }
x-runner:
  description: '  A custom one. '
  needsUpstreamAdmin: true
  variables: { D: 5, N: 'x' }
  scrapeInterval: 0.5
  quarters: p-x
  checks: [{ kind: after, metric: m, max: 0, description: d }]
scenarios: []
`),
      );
      assert.equal(s.name, 'custom');
      assert.equal(s.description, 'A custom one.');
      assert.equal(s.needsUpstreamAdmin, true);
      assert.deepEqual(s.variables, { D: '5', N: 'x' });
      assert.equal(s.scrapeInterval, 0.5);
      assert.equal(s.quarters, 'p-x');
      assert.deepEqual(phasePlan(s, s.variables), [{ name: 'p-x', seconds: 5 }]);
      assert.deepEqual(
        [...ensureExpressions(s, s.variables)],
        [
          ['http.response_time.p95 < 200', 'p95 latency under 200 ms'],
          ['rejection_ms.ERR_X.p99 < 40', 'p99 latency of ERR_X rejections under 40 ms'],
          ['custom.metric < 3', ''],
          ['a < x', 'a is under x'],
          ['b > 0', ''],
        ],
      );
    });

    it('names the file and the problem when the runner section is wrong', () => {
      const cases: [string, RegExp][] = [
        ['config: {}\n', /has no config.phases/],
        [
          'config: { phases: [] }\nx-runner: { variables: { lower: 1 } }\n',
          /variable lower must be UPPER_SNAKE_CASE/,
        ],
        [
          'config: { phases: [] }\nx-runner: { checks: [{ kind: magic, description: x }] }\n',
          /checks\[0\]\.kind must be one of/,
        ],
        [
          'config: { phases: [] }\nx-runner: { checks: [{ kind: after }] }\n',
          /needs a description/,
        ],
        ['config: { phases: [] }\nx-runner: { scrapeInterval: 0 }\n', /scrapeInterval/],
        ['config: [\n', /cannot be read as YAML/],
      ];
      for (const [text, message] of cases) {
        assert.throws(
          () => loadScenario(write(text)),
          (err: Error) => err.message.includes('custom.yml') && message.test(err.message),
          text,
        );
      }
    });

    it('says so when there is no such file', () => {
      assert.throws(() => loadScenario(join(dir, 'nope.yml')), /nope\.yml: no such scenario file/);
    });

    it('resolves names to bundled files, and keeps paths', () => {
      assert.match(scenarioFile('smoke'), /load\/scenarios\/smoke\.yml$/);
      assert.equal(scenarioFile('./x/y.yaml'), './x/y.yaml');
    });
  });
});
