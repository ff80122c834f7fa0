import type { Registry } from 'prom-client';

/** The value of one series (0 when absent), read from the registry like a scrape would. */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  // Histogram series (_count, _sum, _bucket) live under the histogram's own name.
  const base = registry.getSingleMetric(name) ? name : name.replace(/_(count|sum|bucket)$/, '');
  const metric = registry.getSingleMetric(base);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  let total = 0;
  for (const v of values) {
    if (base !== name && (v as { metricName?: string }).metricName !== name) continue;
    const l = v.labels as Record<string, unknown>;
    if (Object.entries(labels).every(([k, want]) => String(l[k]) === want)) total += v.value;
  }
  return total;
}

/** How many series the registry exposes in all (histograms count every bucket line). */
export async function seriesCount(registry: Registry): Promise<number> {
  const text = await registry.metrics();
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#')).length;
}
