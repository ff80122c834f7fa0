import type { Metric, Registry } from 'prom-client';

/** One exported sample, shaped as prom-client's registry reads a metric's `get()`. */
export interface HistogramSample {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

/** One label set of a {@link SeriesHistogram}: what `labels(...)` hands out, kept by callers. */
export interface HistogramSeries {
  observe(value: number): void;
}

class Series implements HistogramSeries {
  /** Per bucket (not cumulative); the last slot counts values above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/**
 * A histogram registered in a prom-client registry and exposed exactly as prom-client's own
 * (`_bucket` with `le` first, `_sum`, `_count`), for the one series written on every request.
 * Written by hand because prom-client's `Histogram.observe`, even through a `labels()` child,
 * validates and hashes the label set and looks its bucket up by a number turned into a string
 * on every call — about a microsecond per request; a series here is held by the caller and an
 * observation is a bucket scan and three additions.
 */
export class SeriesHistogram<L extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly bounds: readonly number[];
  private series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[],
    buckets: readonly number[],
    registry: Registry,
  ) {
    this.bounds = [...buckets].sort((a, b) => a - b);
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values (in `labelNames` order); keep it and observe into it. */
  labels(...values: string[]): HistogramSeries {
    const key = values.join('\u0000');
    let series = this.series.get(key);
    if (series === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => (labels[name] = values[i] ?? ''));
      series = new Series(labels, this.bounds);
      this.series.set(key, series);
    }
    return series;
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    values: HistogramSample[];
    aggregator: 'sum';
  }> {
    const values: HistogramSample[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const series of this.series.values()) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += series.counts[i]!;
        values.push({
          labels: { le: bound, ...series.labels },
          value: cumulative,
          metricName: bucketName,
        });
      });
      values.push(
        {
          labels: { le: '+Inf', ...series.labels },
          value: series.count,
          metricName: bucketName,
        },
        {
          labels: { ...series.labels },
          value: series.sum,
          metricName: `${this.name}_sum`,
        },
        {
          labels: { ...series.labels },
          value: series.count,
          metricName: `${this.name}_count`,
        },
      );
    }
    return {
      name: this.name,
      help: this.help,
      type: 'histogram',
      values,
      aggregator: 'sum',
    };
  }

  reset(): void {
    this.series = new Map();
  }
}
