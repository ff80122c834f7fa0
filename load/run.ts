// `npm run load`: runs the Artillery scenarios of load/scenarios against the example service
// (or --target), checks them, and writes JSON results and a self-contained HTML report. See
// USAGE in args.ts, and "Load testing" in the README.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { ENTRIES, startProcess, waitUntilReady, type RunningProcess } from '../examples/launch.js';
import { redisAnswers } from '../examples/resilient-service/redis-probe.js';
import { USAGE, UsageError, parseRunArgs, type RunOptions } from './args.js';
import {
  parseEnsureOutput,
  parsePhaseLine,
  runArtillery,
  summarize,
  type ArtilleryReport,
  type CheckResult,
} from './artillery.js';
import { capacity, describeEnsure, runnerChecks } from './checks.js';
import { max, scrape, sum, sumBy, type Sample, type Scrape } from './prometheus.js';
import { failureLines, renderReport, summaryTable } from './report.js';
import { charts, summarizeResilience } from './resilience.js';
import type { RunResult, ScenarioResult } from './result.js';
import {
  ensureExpressions,
  listScenarios,
  loadScenario,
  phasePlan,
  resolveVariables,
  scenarioFile,
  timeline,
  type Scenario,
} from './scenario.js';

const PREFIX = 'resilience_';
const log = (line = '') => console.log(line);

/** The service (and fake upstream) one scenario runs against. */
interface Target {
  url: string;
  upstream?: string;
  stop(): Promise<void>;
}

/** Everything this process started, so an interrupt can stop it. */
const live = {
  processes: new Set<RunningProcess>(),
  artillery: undefined as AbortController | undefined,
};

async function startTarget(options: RunOptions, redis: boolean): Promise<Target> {
  if (options.target !== undefined) {
    return { url: options.target, upstream: options.upstream, stop: async () => {} };
  }
  const quiet = (name: string) => (line: string, stream: 'stdout' | 'stderr') => {
    if (stream === 'stderr' || options.verbose) log(`    [${name}] ${line}`);
  };
  const upstream = await startProcess('fake-upstream', ENTRIES.upstream, {
    onLine: quiet('upstream'),
  });
  live.processes.add(upstream);
  let service: RunningProcess | undefined;
  try {
    service = await startProcess('resilient-service', ENTRIES.service, {
      env: {
        NODE_ENV: 'load',
        PORT: '0',
        RESILIENCE_HTTP_UPSTREAM_ORIGIN: upstream.url,
        RESILIENCE_HTTP_INVENTORY_ORIGIN: upstream.url,
        // "" and not unset: unset, the service would look for Redis at its default address.
        RESILIENCE_REDIS_CACHE_URL: redis && options.redis !== null ? options.redis : '',
        // Its lines would only be dropped (stdout is shown with --verbose alone).
        ACCESS_LOG: options.verbose ? undefined : 'off',
      },
      onLine: quiet('service'),
    });
    live.processes.add(service);
    await waitUntilReady(`${service.url}/readyz`, 30_000);
  } catch (err) {
    await service?.stop();
    await upstream.stop();
    throw err;
  }
  const started = service;
  return {
    url: started.url,
    upstream: upstream.url,
    async stop() {
      // The service first: it drains its calls to the upstream on SIGTERM.
      await started.stop();
      await upstream.stop();
      live.processes.delete(started);
      live.processes.delete(upstream);
    },
  };
}

async function tryScrape(url: string): Promise<Scrape | undefined> {
  try {
    return await scrape(url);
  } catch {
    return undefined;
  }
}

function progressLine(
  elapsed: number,
  planned: number,
  before: readonly Sample[],
  now: Scrape,
  previous: Scrape | undefined,
): string {
  const count = `${PREFIX}http_request_duration_seconds_count`;
  const byClass = sumBy(now.samples, count, ['status_class']);
  const base = sumBy(before, count, ['status_class']);
  const classes = Object.keys(byClass)
    .sort()
    .map((k) => `${k} ${Math.round((byClass[k] ?? 0) - (base[k] ?? 0))}`)
    .join(' · ');
  const total = sum(now.samples, count) - sum(before, count);
  const rate =
    previous === undefined
      ? ''
      : ` ${Math.round((sum(now.samples, count) - sum(previous.samples, count)) / ((now.at - previous.at) / 1000))}/s`;
  const rejected =
    sum(now.samples, `${PREFIX}rejections_total`) - sum(before, `${PREFIX}rejections_total`);
  const open = now.samples
    .filter(
      (s) => s.name === `${PREFIX}breaker_state` && s.labels.state === 'open' && s.value === 1,
    )
    .map((s) => s.labels.breaker);
  const borrowed = max(now.samples, `${PREFIX}pool_borrowed`) ?? 0;
  return `    ${String(Math.round(elapsed)).padStart(4)}s/${planned}s  ${Math.round(total)} answered${rate}  [${classes}]  rejected ${Math.round(rejected)}  pool borrowed ≤${borrowed}${
    open.length > 0 ? `  open breakers: ${open.join(', ')}` : ''
  }`;
}

async function runScenario(
  scenario: Scenario,
  options: RunOptions,
  redis: boolean,
  resultsDir: string,
): Promise<ScenarioResult> {
  const variables = resolveVariables(scenario, process.env, options.variables);
  const plan = phasePlan(scenario, variables);
  const planned = Math.round(
    plan.reduce((a, p) => a + (Number.isFinite(p.seconds) ? p.seconds : 0), 0),
  );
  const result: ScenarioResult = {
    name: scenario.name,
    description: scenario.description,
    variables,
    startedAt: Date.now(),
    endedAt: Date.now(),
    passed: false,
    checks: [],
    charts: [],
    artifacts: {},
  };
  log(
    `\n▶ ${scenario.name}: ${scenario.description || scenario.file} (about ${planned} s of load)`,
  );
  if (Object.keys(variables).length > 0) {
    log(
      `    ${Object.entries(variables)
        .map(([k, v]) => `${k}=${v}`)
        .join('  ')}`,
    );
  }
  let target: Target | undefined;
  const scraper = { timer: undefined as ReturnType<typeof setInterval> | undefined };
  try {
    if (options.target === undefined)
      log('    starting the fake upstream and the example service…');
    target = await startTarget(options, redis);
    if (scenario.needsUpstreamAdmin && target.upstream === undefined) {
      throw new Error(
        'this scenario injects faults through the fake upstream: pass --upstream URL with --target',
      );
    }
    const metricsUrl = `${target.url}/metrics`;
    const before = await tryScrape(metricsUrl);
    if (before === undefined)
      log(`    warning: cannot scrape ${metricsUrl}: the resilience metrics will be missing`);
    const series: Scrape[] = before === undefined ? [] : [before];
    // When Artillery's first phase started: it takes a few seconds to boot.
    let loadStartedAt: number | undefined;
    let lastPrinted = 0;
    scraper.timer = setInterval(() => {
      void tryScrape(metricsUrl).then((s) => {
        if (s === undefined || before === undefined) return;
        const previous = series[series.length - 1];
        series.push(s);
        if (loadStartedAt !== undefined && s.at - lastPrinted >= 5000) {
          lastPrinted = s.at;
          log(progressLine((s.at - loadStartedAt) / 1000, planned, before.samples, s, previous));
        }
      });
    }, scenario.scrapeInterval * 1000);

    const json = join(resultsDir, `${scenario.name}.json`);
    const controller = new AbortController();
    live.artillery = controller;
    const { exitCode, output } = await runArtillery({
      script: scenario.file,
      output: json,
      signal: controller.signal,
      env: {
        ...variables,
        TARGET: target.url,
        UPSTREAM: target.upstream ?? '',
        LOAD_TIMELINE: timeline(plan, scenario.quarters),
      },
      onLine: (line) => {
        const phase = parsePhaseLine(line);
        if (phase?.event === 'started' && loadStartedAt === undefined) {
          loadStartedAt = Date.now();
          lastPrinted = loadStartedAt;
        }
        if (options.verbose) log(`    | ${line}`);
        else if (phase !== undefined) log(`    phase ${phase.event}: ${phase.name}`);
        else if (/^(ok|fail): /.test(line) || /error|warning/i.test(line)) log(`    | ${line}`);
      },
    });
    live.artillery = undefined;
    clearInterval(scraper.timer);
    const after = await tryScrape(metricsUrl);
    if (after !== undefined) series.push(after);
    result.exitCode = exitCode;
    const logFile = join(resultsDir, `${scenario.name}.log`);
    writeFileSync(logFile, output);
    result.artifacts = { artilleryJson: json, log: logFile };

    let report: ArtilleryReport;
    try {
      report = JSON.parse(readFileSync(json, 'utf8')) as ArtilleryReport;
    } catch {
      throw new Error(`Artillery exited with ${exitCode} and wrote no report; see ${logFile}`);
    }
    const artillery = summarize(report);
    result.artillery = artillery;
    const expressions = ensureExpressions(scenario, variables);
    const ensure = describeEnsure(parseEnsureOutput(output), expressions);
    const checks: CheckResult[] = [...ensure];
    if (ensure.length < expressions.size) {
      checks.push({
        source: 'runner',
        name: 'ensure checks ran',
        passed: false,
        detail: `Artillery reported ${ensure.length} of the scenario's ${expressions.size} ensure checks (exit code ${exitCode})`,
      });
    }
    // The scrapes while the load ran (the first phase's start is known from Artillery's output,
    // or from its first metric): the flat checks compare quarters of this.
    const loadStart = loadStartedAt ?? artillery.startedAt;
    const during = series.filter((s) => s.at >= loadStart);
    if (before !== undefined && after !== undefined) {
      checks.push(
        ...runnerChecks(scenario.checks, {
          before: before.samples,
          after: after.samples,
          series: during,
          artillery,
          phases: plan,
        }),
      );
      result.resilience = summarizeResilience(before.samples, after.samples, series, PREFIX);
    } else if (scenario.checks.length > 0) {
      checks.push({
        source: 'runner',
        name: `${metricsUrl} scraped`,
        passed: false,
        detail: 'the runner checks need the service metrics',
      });
    }
    const capacityCheck = scenario.checks.find((c) => c.kind === 'capacity');
    if (capacityCheck?.kind === 'capacity') {
      result.capacity = capacity(
        artillery,
        plan,
        capacityCheck.objectiveMs,
        capacityCheck.maxErrorPercent,
      );
    }
    result.checks = checks;
    result.charts = charts(artillery, series, PREFIX, loadStart);
    // 0: fine; 1: an ensure check failed; 21: an expectation failed (counted by the checks).
    if (![0, 1, 21].includes(exitCode))
      result.error = `Artillery exited with ${exitCode}; see ${logFile}`;
    result.passed =
      result.error === undefined &&
      checks.length > 0 &&
      checks.every((c) => c.passed || c.optional === true);
  } catch (err) {
    result.error = (err as Error).message;
    result.passed = false;
  } finally {
    if (scraper.timer !== undefined) clearInterval(scraper.timer);
    live.artillery?.abort();
    live.artillery = undefined;
    await target?.stop();
    result.endedAt = Date.now();
  }
  const failed = result.checks.filter((c) => !c.passed && !c.optional).length;
  log(
    `  ${result.passed ? '✔' : '✘'} ${scenario.name}: ${result.passed ? 'pass' : 'FAIL'} (${result.checks.length - failed}/${result.checks.length} checks, ${Math.round((result.endedAt - result.startedAt) / 1000)} s)${
      result.error ? ` — ${result.error.split('\n')[0]}` : ''
    }`,
  );
  return result;
}

function writeRun(run: RunResult, resultsDir: string, reportFile: string): void {
  writeFileSync(join(resultsDir, 'summary.json'), `${JSON.stringify(run, null, 2)}\n`);
  writeFileSync(reportFile, renderReport(run));
}

async function main(): Promise<number> {
  let options: RunOptions;
  try {
    options = parseRunArgs(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    log(USAGE);
    return 0;
  }
  let scenarios: Scenario[];
  try {
    const names = options.scenarios.length > 0 ? options.scenarios : listScenarios();
    scenarios = names.map((n) => loadScenario(scenarioFile(n)));
  } catch (err) {
    const known = listScenarios().join(', ');
    console.error(`${(err as Error).message.split('\n')[0]}\nbundled scenarios: ${known}`);
    return 2;
  }
  if (options.list) {
    for (const s of scenarios) {
      log(`${s.name.padEnd(16)} ${s.description}`);
      for (const [k, v] of Object.entries(s.variables)) log(`${''.padEnd(16)}   ${k}=${v}`);
    }
    return 0;
  }

  const id = new Date()
    .toISOString()
    .replace(/[:.]/g, '-')
    .replace(/-\d{3}Z$/, 'Z');
  const outDir = resolve(options.outDir);
  const resultsDir = join(outDir, 'results', id);
  const reportFile = join(outDir, 'reports', `${id}.html`);
  mkdirSync(resultsDir, { recursive: true });
  mkdirSync(join(outDir, 'reports'), { recursive: true });

  const run: RunResult = {
    id,
    startedAt: Date.now(),
    endedAt: Date.now(),
    target: options.target ?? 'the example service (started per scenario)',
    managed: options.target === undefined,
    node: process.version,
    passed: false,
    scenarios: [],
  };

  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`\n${signal}: stopping Artillery and everything the runner started…`);
    live.artillery?.abort();
    void Promise.all([...live.processes].map((p) => p.stop(3000))).finally(() => {
      run.endedAt = Date.now();
      writeRun(run, resultsDir, reportFile);
      log(`partial report: ${relative(process.cwd(), reportFile)}`);
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let redis = false;
  if (run.managed && options.redis !== null) {
    redis = await redisAnswers(options.redis);
    run.redis = redis;
    log(
      redis
        ? `Redis answers at ${options.redis}: the service caches in it.`
        : `No Redis at ${options.redis}: the service runs with its cache disabled.`,
    );
  }
  log(
    `Scenarios: ${scenarios.map((s) => s.name).join(', ')}. Results in ${relative(process.cwd(), resultsDir)}/`,
  );

  for (const scenario of scenarios) {
    if (interrupted) break;
    run.scenarios.push(await runScenario(scenario, options, redis, resultsDir));
  }
  if (interrupted) return new Promise(() => {});
  run.endedAt = Date.now();
  run.passed = run.scenarios.length > 0 && run.scenarios.every((s) => s.passed);
  writeRun(run, resultsDir, reportFile);

  log(`\n${summaryTable(run)}\n`);
  for (const line of failureLines(run)) log(`  ✘ ${line}`);
  log(`\nReport: ${relative(process.cwd(), reportFile)}`);
  log(`JSON:   ${relative(process.cwd(), join(resultsDir, 'summary.json'))}`);
  log(run.passed ? 'All checks passed.' : 'Some checks FAILED.');
  return run.passed ? 0 : 1;
}

process.exitCode = await main();
