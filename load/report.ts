import type { CheckResult, Latency } from './artillery.js';
import type { RunResult, ScenarioResult } from './result.js';
import { escapeHtml as h, svgBars, svgChart } from './svg.js';

const ms = (n: number | undefined) => (n === undefined ? '–' : `${Math.round(n * 10) / 10} ms`);

/** How many checks passed, of how many (optional ones that failed are not counted against). */
export function checkCounts(checks: readonly CheckResult[]): { passed: number; total: number } {
  const counted = checks.filter((c) => c.passed || !c.optional);
  return { passed: counted.filter((c) => c.passed).length, total: counted.length };
}

function duration(s: ScenarioResult): string {
  return `${Math.round((s.endedAt - s.startedAt) / 1000)} s`;
}

/**
 * The run as a text table, one row per scenario, for the terminal: verdict, requests,
 * throughput, latency, unexpected errors and checks.
 */
export function summaryTable(run: RunResult): string {
  const header = [
    'scenario',
    'result',
    'requests',
    'resp/s',
    'p95',
    'p99',
    'unexpected',
    'checks',
    'time',
  ];
  const rows = run.scenarios.map((s) => {
    const a = s.artillery;
    const c = checkCounts(s.checks);
    return [
      s.name,
      s.passed ? 'PASS' : 'FAIL',
      a ? String(a.requests) : '–',
      a ? String(a.throughput) : '–',
      a?.latency ? ms(a.latency.p95) : '–',
      a?.latency ? ms(a.latency.p99) : '–',
      a ? `${a.unexpectedPercent}%` : '–',
      `${c.passed}/${c.total}`,
      duration(s),
    ];
  });
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** The failed checks and errors of a run, one line each, for the terminal. */
export function failureLines(run: RunResult): string[] {
  const lines: string[] = [];
  for (const s of run.scenarios) {
    if (s.error !== undefined) lines.push(`${s.name}: ${s.error}`);
    for (const c of s.checks) {
      if (c.passed || c.optional) continue;
      const what = c.description || c.name;
      lines.push(
        `${s.name}: FAILED ${what}${c.detail ? ` — ${c.detail}` : ''}${what === c.name ? '' : ` [${c.source}: ${c.name}]`}`,
      );
    }
  }
  return lines;
}

function table(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  raw = false,
): string {
  if (rows.length === 0) return '<p class="muted">none</p>';
  const cell = (v: string) => (raw ? v : h(v));
  return `<table><thead><tr>${headers.map((x) => `<th>${h(x)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((v) => `<td>${cell(v)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

function latencyRow(name: string, l: Latency | undefined): string[] {
  return [
    name,
    String(l?.count ?? 0),
    ms(l?.min),
    ms(l?.median),
    ms(l?.p95),
    ms(l?.p99),
    ms(l?.max),
  ];
}

function entries(record: Record<string, number>): [string, number][] {
  return Object.entries(record).sort((a, b) => b[1] - a[1]);
}

function scenarioSection(s: ScenarioResult): string {
  const a = s.artillery;
  const r = s.resilience;
  const verdict = s.passed ? '<span class="pass">PASS</span>' : '<span class="fail">FAIL</span>';
  const parts: string[] = [];
  parts.push(`<section id="${h(s.name)}"><h2>${h(s.name)} ${verdict}</h2>`);
  if (s.description) parts.push(`<p>${h(s.description)}</p>`);
  const vars = Object.entries(s.variables)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  parts.push(
    `<p class="muted">${h(new Date(s.startedAt).toISOString())} · ${duration(s)}${vars ? ` · ${h(vars)}` : ''}${
      s.exitCode === undefined ? '' : ` · Artillery exit code ${s.exitCode}`
    }</p>`,
  );
  if (s.error !== undefined) parts.push(`<pre class="error">${h(s.error)}</pre>`);
  if (a !== undefined) {
    parts.push(
      `<div class="kpis">${[
        ['requests', String(a.requests)],
        ['responses/s', String(a.throughput)],
        ['p95', ms(a.latency?.p95)],
        ['p99', ms(a.latency?.p99)],
        ['max', ms(a.latency?.max)],
        ['unexpected errors', `${a.unexpected} (${a.unexpectedPercent}%)`],
        ...(s.capacity ? [['capacity', `${s.capacity.rps}/s`]] : []),
      ]
        .map(([k, v]) => `<div><span>${h(k)}</span><strong>${h(v)}</strong></div>`)
        .join('')}</div>`,
    );
  }
  parts.push('<h3>Checks</h3>');
  parts.push(
    table(
      ['', 'check', 'what it means', 'measured', 'from'],
      s.checks.map((c) => [
        c.passed
          ? '<span class="pass">✔</span>'
          : c.optional
            ? '<span class="muted">✘ (optional)</span>'
            : '<span class="fail">✘</span>',
        `<code>${h(c.name)}</code>`,
        h(c.description ?? ''),
        h(c.detail ?? ''),
        h(c.source === 'ensure' ? 'Artillery ensure' : 'runner'),
      ]),
      true,
    ),
  );
  if (s.capacity !== undefined) {
    parts.push(`<h3>Capacity: ${s.capacity.rps}/s within p95 ≤ ${s.capacity.objectiveMs} ms</h3>`);
    parts.push(
      table(
        ['step', 'requests', 'served/s', 'p95 (served)', 'not served', 'within objective'],
        s.capacity.steps.map((st) => [
          st.phase,
          String(st.requests),
          String(st.servedRps),
          ms(st.p95),
          `${st.errorPercent}%`,
          st.withinObjective ? 'yes' : 'no',
        ]),
      ),
    );
  }
  if (s.charts.length > 0) {
    parts.push('<h3>Over time</h3><div class="charts">');
    for (const chart of s.charts) parts.push(svgChart(chart));
    parts.push('</div>');
  }
  if (a !== undefined) {
    parts.push('<h3>Latency (Artillery)</h3>');
    parts.push(
      table(
        ['responses', 'count', 'min', 'median', 'p95', 'p99', 'max'],
        [
          latencyRow('all', a.latency),
          ...Object.entries(a.latencyByClass).map(([k, l]) => latencyRow(k, l)),
          ...Object.entries(a.histograms)
            .filter(([k]) => k.startsWith('rejection_ms.'))
            .map(([k, l]) => latencyRow(`rejected: ${k.slice('rejection_ms.'.length)}`, l)),
        ],
      ),
    );
    parts.push('<div class="charts">');
    parts.push(svgBars('Status codes (Artillery)', entries(a.codes)));
    const errors = entries(a.errors);
    if (errors.length > 0) parts.push(svgBars('Network errors (Artillery)', errors));
    parts.push('</div>');
  }
  if (r !== undefined) {
    parts.push('<h3>Resilience (/metrics, before → after)</h3><div class="charts">');
    parts.push(
      svgBars('Rejections by route and reason', entries(r.rejections)) ||
        '<p class="muted">No rejections.</p>',
    );
    parts.push(svgBars('Answers by route and status class', entries(r.served)));
    parts.push('</div>');
    parts.push('<h4>Breaker transitions</h4>');
    parts.push(
      table(
        ['breaker', 'scope', 'from', 'to', 'count'],
        entries(r.breakerTransitions).map(([k, v]) => [...k.split('/'), String(v)]),
      ),
    );
    parts.push('<h4>Pools</h4>');
    parts.push(
      table(
        ['resource', 'max', 'peak borrowed', 'peak waiting', 'borrowed after', 'acquire errors'],
        r.pools.map((p) => [
          p.resource,
          String(p.max),
          String(p.peakBorrowed),
          String(p.peakPending),
          String(p.borrowedAfter),
          Object.entries(r.poolAcquireErrors)
            .filter(([k]) => k.startsWith(`${p.resource}/`))
            .map(([k, v]) => `${k.split('/')[1]}: ${v}`)
            .join(', ') || '0',
        ]),
      ),
    );
    parts.push('<h4>Upstream calls</h4>');
    parts.push(
      table(
        ['resource', 'outcome', 'calls'],
        entries(r.upstreamCalls).map(([k, v]) => [...k.split('/'), String(v)]),
      ),
    );
    if (r.memory !== undefined) {
      parts.push(
        `<p class="muted">Memory: heap ${r.memory.heapFirst} → ${r.memory.heapLast} MB, resident ${r.memory.rssFirst} → ${r.memory.rssLast} MB.</p>`,
      );
    }
  }
  if (a !== undefined && Object.keys(a.counters).length > 0) {
    parts.push('<details><summary>Scenario counters (processor)</summary>');
    parts.push(
      table(
        ['counter', 'value'],
        entries(a.counters).map(([k, v]) => [k, String(v)]),
      ),
    );
    parts.push('</details>');
  }
  const files = Object.values(s.artifacts).filter((f): f is string => f !== undefined);
  if (files.length > 0)
    parts.push(
      `<p class="muted">Files: ${files.map((f) => `<code>${h(f)}</code>`).join(', ')}</p>`,
    );
  parts.push('</section>');
  return parts.join('\n');
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0 auto;max-width:1360px;padding:24px;color:#111827}
h1{margin:0 0 4px}h2{margin-top:40px;border-bottom:2px solid #e5e7eb;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f9fafb}.pass{color:#15803d;font-weight:600}.fail{color:#b91c1c;font-weight:600}.muted{color:#6b7280}
.kpis{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}.kpis div{border:1px solid #e5e7eb;border-radius:6px;padding:8px 12px;min-width:110px}
.kpis span{display:block;color:#6b7280;font-size:12px}.kpis strong{font-size:18px}
.charts{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0}figcaption{font-weight:600;margin-bottom:4px}
svg text{font-size:11px;fill:#374151}.unit{font-weight:400;color:#6b7280}pre.error{background:#fef2f2;padding:8px;white-space:pre-wrap}
code{font-size:12px}`;

/**
 * The run as one self-contained HTML page: a summary table, then per scenario its checks,
 * Artillery's latency and throughput, and the resilience metrics (breaker transitions,
 * rejections by reason, pool stats) with inline SVG charts. No script, no external resource.
 */
export function renderReport(run: RunResult): string {
  const summaryRows = run.scenarios.map((s) => {
    const a = s.artillery;
    const c = checkCounts(s.checks);
    return [
      `<a href="#${h(s.name)}">${h(s.name)}</a>`,
      s.passed ? '<span class="pass">PASS</span>' : '<span class="fail">FAIL</span>',
      h(a ? String(a.requests) : '–'),
      h(a ? String(a.throughput) : '–'),
      h(ms(a?.latency?.p95)),
      h(ms(a?.latency?.p99)),
      h(a ? `${a.unexpectedPercent}%` : '–'),
      h(`${c.passed}/${c.total}`),
      h(duration(s)),
    ];
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Load run ${h(run.id)} — ${run.passed ? 'pass' : 'FAIL'}</title><style>${STYLE}</style></head>
<body>
<h1>Load run ${h(run.id)} ${run.passed ? '<span class="pass">PASS</span>' : '<span class="fail">FAIL</span>'}</h1>
<p class="muted">${h(new Date(run.startedAt).toISOString())} · ${Math.round((run.endedAt - run.startedAt) / 1000)} s · target ${h(run.target)}${
    run.managed
      ? ` (example service started by the runner${run.redis === undefined ? '' : run.redis ? ', with Redis' : ', without Redis'})`
      : ''
  } · Node ${h(run.node)}</p>
${table(['scenario', 'result', 'requests', 'responses/s', 'p95', 'p99', 'unexpected', 'checks', 'time'], summaryRows, true)}
${run.scenarios.map(scenarioSection).join('\n')}
</body></html>
`;
}
