import type { Chart } from './resilience.js';

const COLOURS = [
  '#2563eb',
  '#dc2626',
  '#16a34a',
  '#d97706',
  '#7c3aed',
  '#0891b2',
  '#db2777',
  '#4b5563',
];

/** Escapes text for HTML and SVG. */
export function escapeHtml(text: unknown): string {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A "nice" upper bound and tick step for an axis from 0 to `value`. */
export function niceScale(value: number, ticks = 4): { max: number; step: number } {
  if (!(value > 0) || !Number.isFinite(value)) return { max: 1, step: 0.25 };
  const rough = value / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * magnitude).find((s) => s >= rough)!;
  return { max: Math.ceil(value / step) * step, step };
}

const fmt = (n: number): string =>
  Math.abs(n) >= 1000 ? `${Math.round(n / 100) / 10}k` : String(Math.round(n * 100) / 100);

/**
 * Renders a chart as an inline SVG line (or step) chart with axes and a legend: no script, no
 * external resource, so the report stays one self-contained file.
 */
export function svgChart(chart: Chart, width = 640, height = 240): string {
  const pad = { left: 48, right: 12, top: 12, bottom: 28 };
  const legendRows = Math.ceil(chart.series.length / 3);
  const plotH = height - pad.top - pad.bottom;
  const plotW = width - pad.left - pad.right;
  const all = chart.series.flatMap((s) => s.points);
  const xMax = niceScale(Math.max(1, ...all.map(([x]) => x)), 6);
  const yMax = niceScale(Math.max(0, ...all.map(([, y]) => y)), 4);
  const x = (v: number) => pad.left + (Math.max(0, v) / xMax.max) * plotW;
  const y = (v: number) => pad.top + plotH - (v / yMax.max) * plotH;
  const parts: string[] = [];
  for (let v = 0; v <= yMax.max + 1e-9; v += yMax.step) {
    parts.push(
      `<line x1="${pad.left}" x2="${width - pad.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e7eb"/>`,
      `<text x="${pad.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  for (let v = 0; v <= xMax.max + 1e-9; v += xMax.step) {
    parts.push(
      `<text x="${x(v).toFixed(1)}" y="${height - pad.bottom + 16}" text-anchor="middle">${fmt(v)}s</text>`,
    );
  }
  parts.push(
    `<line x1="${pad.left}" x2="${pad.left}" y1="${pad.top}" y2="${pad.top + plotH}" stroke="#9ca3af"/>`,
    `<line x1="${pad.left}" x2="${width - pad.right}" y1="${pad.top + plotH}" y2="${pad.top + plotH}" stroke="#9ca3af"/>`,
  );
  chart.series.forEach((series, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const points: string[] = [];
    let prev: [number, number] | undefined;
    for (const point of series.points) {
      if (chart.kind === 'step' && prev !== undefined) {
        points.push(`${x(point[0]).toFixed(1)},${y(prev[1]).toFixed(1)}`);
      }
      points.push(`${x(point[0]).toFixed(1)},${y(point[1]).toFixed(1)}`);
      prev = point;
    }
    if (points.length === 1) {
      const [px, py] = points[0]!.split(',');
      parts.push(`<circle cx="${px}" cy="${py}" r="3" fill="${colour}"/>`);
    } else if (points.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${colour}" stroke-width="1.8" points="${points.join(' ')}"><title>${escapeHtml(series.name)}</title></polyline>`,
      );
    }
  });
  const legend = chart.series
    .map((s, i) => {
      const colour = COLOURS[i % COLOURS.length]!;
      const lx = 8 + (i % 3) * 210;
      const ly = height + 14 + Math.floor(i / 3) * 16;
      return `<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${colour}"/><text x="${lx + 14}" y="${ly}">${escapeHtml(s.name)}</text>`;
    })
    .join('');
  const total = height + legendRows * 16 + 8;
  return `<figure><figcaption>${escapeHtml(chart.title)} <span class="unit">(${escapeHtml(chart.unit)})</span></figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${total}" width="${width}" height="${total}" role="img" aria-label="${escapeHtml(chart.title)}">${parts.join('')}${legend}</svg></figure>`;
}

/** A horizontal bar chart of labelled counts (status codes, rejections by reason). */
export function svgBars(title: string, entries: readonly [string, number][], width = 640): string {
  if (entries.length === 0) return '';
  const rowH = 20;
  const labelW = 220;
  const top = Math.max(...entries.map(([, v]) => v), 1);
  const rows = entries
    .map(([label, value], i) => {
      const w = Math.max(1, ((width - labelW - 60) * value) / top);
      const yy = i * rowH;
      return `<text x="${labelW - 6}" y="${yy + 14}" text-anchor="end">${escapeHtml(label)}</text><rect x="${labelW}" y="${yy + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${COLOURS[i % COLOURS.length]}"/><text x="${(labelW + w + 4).toFixed(1)}" y="${yy + 14}">${fmt(value)}</text>`;
    })
    .join('');
  const h = entries.length * rowH + 4;
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${h}" width="${width}" height="${h}" role="img" aria-label="${escapeHtml(title)}">${rows}</svg></figure>`;
}
