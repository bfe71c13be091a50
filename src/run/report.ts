// The report of `stepwise run`: report.json (the numbers), report.html (one self-contained page: the comparison
// table, accuracy with 95% intervals, training curves, accuracy by number of steps, credit-assignment examples)
// and the summary table printed in the terminal.
//
// Over several seeds a variant's accuracy is the mean of its seeds' greedy accuracies, `spread` their sample
// standard deviation, and `ci95` the Wilson interval of the pooled counts (every seed's problems together).

import { wilson } from "../eval/stats.js";
import { diagnosticsHtml, type SeedDiagnostics } from "./diagnostics.js";

export interface SeedEval {
  name: string;
  seed: number;
  round: number;
  accuracy: number;
  n: number;
  correct: number;
  ci95: [number, number];
  maj_accuracy?: number;
  step_error_rate?: number;
  by_steps: { steps: number; n: number; accuracy: number }[];
  by_level?: { level: string; n: number; accuracy: number }[];
}

export interface VariantSummary {
  name: string;
  accuracy: number;
  ci95: [number, number];
  maj_accuracy: number | null;
  step_error_rate: number | null;
  spread: number | null; // standard deviation over seeds (null with one seed)
  per_seed: { seed: number; accuracy: number }[];
  by_steps: { steps: number; n: number; accuracy: number }[];
  by_level?: { level: string; n: number; accuracy: number }[]; // a mixed task's parts
  n: number; // problems per seed
}

export interface Report {
  format: 1;
  variants: VariantSummary[];
  seeds: number;
  seconds: number;
  config: unknown;
  stages?: { name: string; seconds: number }[];
  skipped?: { name: string; seed: number; round: number; reason: string }[]; // variants with nothing to train on
  pairs?: Record<string, number>; // pairs per kind (seed 1, round 1)
  diagnostics?: SeedDiagnostics[]; // headroom and pair audit per seed (diagnostics.ts)
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
function std(xs: number[]): number | null {
  if (xs.length < 2) return null;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}
const optMean = (xs: (number | undefined)[]) =>
  xs.every((x) => x !== undefined) && xs.length > 0 ? mean(xs as number[]) : null;

/** Groups pooled over seeds: per key, the problems of every seed together and their accuracy. */
function pool<K>(groups: { key: K; n: number; accuracy: number }[]): { key: K; n: number; accuracy: number }[] {
  const out = new Map<K, { n: number; correct: number }>();
  for (const g of groups) {
    const o = out.get(g.key) ?? { n: 0, correct: 0 };
    o.n += g.n;
    o.correct += g.accuracy * g.n;
    out.set(g.key, o);
  }
  return [...out.entries()].map(([key, o]) => ({ key, n: o.n, accuracy: o.n === 0 ? 0 : o.correct / o.n }));
}

/** One summary per variant name, in the order the evals first name them (SFT first). */
export function summarize(evals: SeedEval[]): VariantSummary[] {
  const names = [...new Set(evals.map((e) => e.name))];
  return names.map((name) => {
    const es = evals.filter((e) => e.name === name).sort((a, b) => a.seed - b.seed);
    const correct = es.reduce((a, e) => a + e.correct, 0);
    const total = es.reduce((a, e) => a + e.n, 0);
    const by_steps = pool(es.flatMap((e) => e.by_steps.map((b) => ({ ...b, key: b.steps }))))
      .sort((a, b) => a.key - b.key)
      .map(({ key, n, accuracy }) => ({ steps: key, n, accuracy }));
    const levels = es.flatMap((e) => (e.by_level ?? []).map((b) => ({ ...b, key: b.level })));
    return {
      name,
      accuracy: mean(es.map((e) => e.accuracy)),
      ci95: wilson(correct, total),
      maj_accuracy: optMean(es.map((e) => e.maj_accuracy)),
      step_error_rate: optMean(es.map((e) => e.step_error_rate)),
      spread: std(es.map((e) => e.accuracy)),
      per_seed: es.map((e) => ({ seed: e.seed, accuracy: e.accuracy })),
      by_steps,
      ...(levels.length > 0
        ? { by_level: pool(levels).map(({ key, n, accuracy }) => ({ level: key, n, accuracy })) }
        : {}),
      n: es[0].n,
    };
  });
}

const pct = (x: number | null | undefined, digits = 1) =>
  x === null || x === undefined ? "-" : `${(100 * x).toFixed(digits)}`;

/** The terminal summary: one row per variant, accuracy in points with its interval and the change from SFT. */
export function summaryTable(report: Report): string {
  const sft = report.variants.find((v) => v.name === "sft");
  const head = [
    "variant",
    "accuracy %",
    "95% CI",
    "vs SFT",
    ...(report.seeds > 1 ? ["spread"] : []),
    "maj %",
    "step err %",
  ];
  const rows = report.variants.map((v) => [
    v.name,
    pct(v.accuracy),
    `${pct(v.ci95[0])}-${pct(v.ci95[1])}`,
    sft && v !== sft ? `${v.accuracy >= sft.accuracy ? "+" : ""}${(100 * (v.accuracy - sft.accuracy)).toFixed(1)}` : "",
    ...(report.seeds > 1 ? [v.spread === null ? "-" : (100 * v.spread).toFixed(1)] : []),
    pct(v.maj_accuracy),
    pct(v.step_error_rate),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [
    line(head),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.map(line),
    `${report.variants[0]?.n ?? 0} held-out problems, ${report.seeds} seed${report.seeds > 1 ? "s" : ""}, ${Math.round(report.seconds)} s`,
    ...(report.skipped ?? []).map((s) => `skipped: ${s.name} (seed ${s.seed}): ${s.reason}`),
  ].join("\n");
}

// --- HTML ---

export interface Curve {
  name: string; // series name (a variant)
  points: [number, number][]; // (step, value)
}

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
const COLORS = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d"];

/** A trailing moving average over about 1/25 of the points (per-step DPO metrics are noisy at batch size 8). */
export function smooth(points: [number, number][], parts = 25): [number, number][] {
  const w = Math.max(1, Math.round(points.length / parts));
  let sum = 0;
  return points.map(([x, y], i) => {
    sum += y - (i >= w ? points[i - w][1] : 0);
    return [x, sum / Math.min(i + 1, w)];
  });
}

/** A line chart as inline SVG: one polyline per series, axes with min/max labels, a legend. */
export function lineChart(title: string, series: Curve[], width = 420, height = 220): string {
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (all.length === 0)
    return `<figure class="chart"><figcaption>${esc(title)}</figcaption><p class="empty">no data</p></figure>`;
  const pad = { l: 48, r: 10, t: 10, b: 26 };
  const [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0 || 1)) * (width - pad.l - pad.r);
  const sy = (y: number) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2));
  const lines = series.map((s, i) => {
    const pts = s.points
      .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
      .map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`)
      .join(" ");
    return `<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5" points="${pts}"><title>${esc(s.name)}</title></polyline>`;
  });
  const legend = series
    .map((s, i) => `<span><i style="background:${COLORS[i % COLORS.length]}"></i>${esc(s.name)}</span>`)
    .join(" ");
  return `<figure class="chart"><figcaption>${esc(title)}</figcaption>
<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(title)}">
<line x1="${pad.l}" y1="${height - pad.b}" x2="${width - pad.r}" y2="${height - pad.b}" stroke="#999"/>
<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${height - pad.b}" stroke="#999"/>
<text x="${pad.l - 4}" y="${pad.t + 8}" text-anchor="end">${fmt(y1)}</text>
<text x="${pad.l - 4}" y="${height - pad.b}" text-anchor="end">${fmt(y0)}</text>
<text x="${pad.l}" y="${height - 8}">${fmt(x0)}</text>
<text x="${width - pad.r}" y="${height - 8}" text-anchor="end">step ${fmt(x1)}</text>
${lines.join("\n")}
</svg><div class="legend">${legend}</div></figure>`;
}

/** Horizontal bars of accuracy with their 95% interval as whiskers. */
function accuracyBars(vs: VariantSummary[]): string {
  const w = 520,
    row = 26,
    h = row * vs.length + 24,
    l = 90,
    r = 60;
  const sx = (x: number) => l + x * (w - l - r);
  const bars = vs.map((v, i) => {
    const y = 8 + i * row;
    return `<text x="${l - 6}" y="${y + 14}" text-anchor="end">${esc(v.name)}</text>
<rect x="${l}" y="${y + 3}" width="${(sx(v.accuracy) - l).toFixed(1)}" height="${row - 10}" fill="${COLORS[i % COLORS.length]}"/>
<line x1="${sx(v.ci95[0]).toFixed(1)}" x2="${sx(v.ci95[1]).toFixed(1)}" y1="${y + 3 + (row - 10) / 2}" y2="${y + 3 + (row - 10) / 2}" stroke="#222"/>
<text x="${(sx(Math.max(v.accuracy, v.ci95[1])) + 4).toFixed(1)}" y="${y + 14}">${pct(v.accuracy)}%</text>`;
  });
  return `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="accuracy">${bars.join("\n")}
<line x1="${l}" x2="${w - r}" y1="${h - 12}" y2="${h - 12}" stroke="#999"/><text x="${l}" y="${h - 1}">0%</text><text x="${w - r}" y="${h - 1}" text-anchor="end">100%</text></svg>`;
}

export interface HtmlParts {
  curves: { metric: string; series: Curve[] }[]; // training curves of seed 1
  credit?: { title: string; html: string }[]; // credit-assignment heatmaps (trusted HTML from the credit module)
}

export function reportHtml(report: Report, parts: HtmlParts): string {
  const vs = report.variants;
  const sft = vs.find((v) => v.name === "sft");
  const table = `<table id="comparison"><thead><tr><th>variant</th><th>accuracy %</th><th>95% CI</th><th>vs SFT</th>${report.seeds > 1 ? "<th>spread</th><th>per seed</th>" : ""}<th>maj %</th><th>step error %</th></tr></thead><tbody>
${vs.map((v) => `<tr data-variant="${esc(v.name)}"><td>${esc(v.name)}</td><td class="acc">${pct(v.accuracy)}</td><td>${pct(v.ci95[0])}-${pct(v.ci95[1])}</td><td>${sft && v !== sft ? (v.accuracy >= sft.accuracy ? "+" : "") + (100 * (v.accuracy - sft.accuracy)).toFixed(1) : ""}</td>${report.seeds > 1 ? `<td>${v.spread === null ? "-" : (100 * v.spread).toFixed(1)}</td><td>${v.per_seed.map((p) => pct(p.accuracy)).join(", ")}</td>` : ""}<td>${pct(v.maj_accuracy)}</td><td>${pct(v.step_error_rate)}</td></tr>`).join("\n")}
</tbody></table>`;
  const steps = [...new Set(vs.flatMap((v) => v.by_steps.map((b) => b.steps)))].sort((a, b) => a - b);
  const byStep = `<table id="by-steps"><thead><tr><th>steps</th>${vs.map((v) => `<th>${esc(v.name)}</th>`).join("")}</tr></thead><tbody>
${steps
  .map(
    (s) =>
      `<tr><td>${s}</td>${vs
        .map((v) => {
          const b = v.by_steps.find((x) => x.steps === s);
          return `<td>${b ? `${pct(b.accuracy)} <small>(n=${b.n})</small>` : "-"}</td>`;
        })
        .join("")}</tr>`,
  )
  .join("\n")}</tbody></table>`;
  const levels = [...new Set(vs.flatMap((v) => (v.by_level ?? []).map((b) => b.level)))];
  const byLevel =
    levels.length === 0
      ? ""
      : `<h2>Accuracy by level</h2>
<table id="by-level"><thead><tr><th>level</th>${vs.map((v) => `<th>${esc(v.name)}</th>`).join("")}</tr></thead><tbody>
${levels
  .map(
    (l) =>
      `<tr><td>${esc(l)}</td>${vs
        .map((v) => {
          const b = v.by_level?.find((x) => x.level === l);
          return `<td>${b ? `${pct(b.accuracy)} <small>(n=${b.n})</small>` : "-"}</td>`;
        })
        .join("")}</tr>`,
  )
  .join("\n")}</tbody></table>`;
  const charts = parts.curves.map((c) => lineChart(c.metric, c.series)).join("\n");
  const credit = (parts.credit ?? [])
    .map((c) => `<section class="credit"><h3>${esc(c.title)}</h3>${c.html}</section>`)
    .join("\n");
  const pairs = report.pairs
    ? `<p>Pairs (seed 1): ${Object.entries(report.pairs)
        .map(([k, n]) => `${esc(k)} ${n}`)
        .join(", ")}.</p>`
    : "";
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>stepwise run report</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0}td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:12px}
figure.chart{margin:0;border:1px solid #eee;padding:6px}figcaption{font-weight:600}svg text{font-size:11px;fill:#444}
.legend span{margin-right:10px;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}
</style></head><body>
<h1>stepwise run</h1>
<p>${vs[0]?.n ?? 0} held-out problems, ${report.seeds} seed${report.seeds > 1 ? "s" : ""}, ${Math.round(report.seconds)} s. Accuracy is greedy; the interval is Wilson's 95% over ${report.seeds > 1 ? "the pooled seeds" : "the problems"}.</p>
${pairs}
${(report.skipped ?? []).map((s) => `<p class="skipped">Skipped: ${esc(s.name)} (seed ${s.seed}): ${esc(s.reason)}.</p>`).join("\n")}
<h2>Comparison</h2>
${table}
${accuracyBars(vs)}
${diagnosticsHtml(report.diagnostics ?? [])}
<h2>Training curves</h2>
<div class="charts">${charts}</div>
<h2>Accuracy by number of steps</h2>
${byStep}
${byLevel}
${credit ? `<h2>Credit assignment</h2><p>Per-token implicit reward beta*log(pi/pi_ref) of the Step-DPO policy against its SFT reference; red is blamed, green credited.</p>${credit}` : ""}
<h2>Config</h2>
<pre>${esc(JSON.stringify(report.config, null, 2))}</pre>
</body></html>
`;
}
