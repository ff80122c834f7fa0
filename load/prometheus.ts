/** One sample of the Prometheus text exposition format. */
export interface Sample {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

/** A scrape of /metrics: when it was taken and what it held. */
export interface Scrape {
  /** Epoch milliseconds. */
  at: number;
  samples: readonly Sample[];
}

/** Label filters: a value must match exactly; an array means any of these values. */
export type LabelFilter = Readonly<Record<string, string | readonly string[]>>;

const SAMPLE = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/gy;

function unescape(value: string): string {
  return value.replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

/**
 * Parses the Prometheus text format (what prom-client serves): one {@link Sample} per sample
 * line; comments, `# HELP`/`# TYPE` lines and malformed lines are skipped.
 */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (match === null) continue;
    const labels: Record<string, string> = {};
    const body = match[2];
    if (body !== undefined && body !== '') {
      LABEL.lastIndex = 0;
      let pair: RegExpExecArray | null;
      let end = 0;
      while ((pair = LABEL.exec(body)) !== null) {
        labels[pair[1]!] = unescape(pair[2]!);
        end = LABEL.lastIndex;
      }
      if (end !== body.length) continue;
    }
    const value = parseValue(match[3]!);
    if (Number.isNaN(value)) continue;
    samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

function matches(sample: Sample, labels: LabelFilter | undefined): boolean {
  if (labels === undefined) return true;
  for (const [key, want] of Object.entries(labels)) {
    const have = sample.labels[key];
    if (have === undefined) return false;
    if (typeof want === 'string' ? have !== want : !want.includes(have)) return false;
  }
  return true;
}

/** The samples of metric `name` whose labels match `labels`. */
export function select(samples: readonly Sample[], name: string, labels?: LabelFilter): Sample[] {
  return samples.filter((s) => s.name === name && matches(s, labels));
}

/** The sum of the matching samples (0 when none match). */
export function sum(samples: readonly Sample[], name: string, labels?: LabelFilter): number {
  let total = 0;
  for (const s of select(samples, name, labels)) total += s.value;
  return total;
}

/** The largest matching sample, or undefined when none match. */
export function max(
  samples: readonly Sample[],
  name: string,
  labels?: LabelFilter,
): number | undefined {
  let best: number | undefined;
  for (const s of select(samples, name, labels))
    if (best === undefined || s.value > best) best = s.value;
  return best;
}

/**
 * Sums the matching samples grouped by the values of `by` (joined with `/`): `{ "open": 3 }`
 * for `by: ['to']`.
 */
export function sumBy(
  samples: readonly Sample[],
  name: string,
  by: readonly string[],
  labels?: LabelFilter,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of select(samples, name, labels)) {
    const key = by.map((b) => s.labels[b] ?? '').join('/');
    out[key] = (out[key] ?? 0) + s.value;
  }
  return out;
}

/**
 * How much each group of a counter grew between two scrapes (`after - before`, by the labels in
 * `by`); groups that did not grow are left out. A counter that went down (a restarted process)
 * counts from zero.
 */
export function increaseBy(
  before: readonly Sample[],
  after: readonly Sample[],
  name: string,
  by: readonly string[],
  labels?: LabelFilter,
): Record<string, number> {
  const start = sumBy(before, name, by, labels);
  const end = sumBy(after, name, by, labels);
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(end)) {
    const base = start[key] ?? 0;
    const grew = value >= base ? value - base : value;
    if (grew > 0) out[key] = grew;
  }
  return out;
}

/** Fetches and parses `url` (a /metrics endpoint); rejects on a non-200 answer. */
export async function scrape(url: string, timeoutMs = 2000): Promise<Scrape> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
  return { at: Date.now(), samples: parsePrometheus(text) };
}
