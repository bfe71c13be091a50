// The dashboard's front end: plain DOM and uPlot, one ES module that the browser loads as compiled (no bundler).
// Routes live in the hash: #run=<id>&tab=metrics|evals|pairs|credit. Metrics are polled with ?since=N, so charts and
// the latest-values table grow while a run trains. Metric names come from the trainer's table (src/train/metrics.ts,
// a module without imports that the server sends as /train/metrics.js); the credit view's types are the server's.

import uPlot from "uplot";
import { EVAL_PREFIX, evalBase, evalMetric, LEGACY_EVAL_PREFIX, METRICS } from "../../train/metrics.js";
import type { CreditResult } from "../credit.js";

// ---- API types (mirror src/dashboard/runs.ts, pairs.ts) ----

interface RunInfo {
  id: string;
  name: string;
  kind: "pipeline" | "training";
  parent: string | null;
  isModel: boolean;
  steps: number;
  last: Record<string, number> | null;
  mtime: number;
  stage: string | null;
}
interface RunDetail {
  run: RunInfo;
  children: RunInfo[];
  pair_files: string[];
  pair_counts: Record<string, number>;
  skipped: { dir: string; reason: string }[];
  credit: { model: string | null; ref: string | null; beta: number };
}
interface MetricsChunk {
  records: Record<string, number>[];
  next: number;
  reset: boolean;
}
interface EvalTable {
  file: string;
  seed: string | null;
  variant: string;
  accuracy: number | null;
  n: number | null;
  ci95: [number, number] | null;
  maj_accuracy: number | null;
  step_error_rate: number | null;
  by_steps: { steps: number; n: number; accuracy: number }[];
  by_level: { level: string; n: number; accuracy: number }[];
}
interface ReportVariant {
  name?: unknown;
  accuracy?: unknown;
  n?: unknown;
  ci95?: unknown;
  spread?: unknown;
  maj_accuracy?: unknown;
  step_error_rate?: unknown;
}
interface Evals {
  report: { variants?: ReportVariant[]; seeds?: unknown; seconds?: unknown } | null;
  tables: EvalTable[];
}
interface PairView {
  line: number;
  id: string | null;
  kind: string | null;
  prompt: string;
  chosen: string;
  rejected: string;
  initial_reason_steps: string | null;
  context: string;
  chosen_steps: string[];
  rejected_steps: string[];
  first_diff: number | null;
  error: string | null;
}
interface PairPage {
  file: string;
  offset: number;
  total: number;
  pairs: PairView[];
}

type Tab = "metrics" | "evals" | "pairs" | "credit";
const TABS: Tab[] = ["metrics", "evals", "pairs", "credit"];

const params = new URLSearchParams(location.search);
const POLL_MS = Math.max(200, Number(params.get("poll")) || 1000);
const PAGE = 10;

// ---- helpers ----

async function api<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  const body = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(body.error ?? `${res.status} ${res.statusText}`);
  return body;
}

const runUrl = (id: string, what = "") => `/api/runs/${encodeURIComponent(id)}${what ? `/${what}` : ""}`;

type Child = Node | string | null | undefined | false;
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

/** Numbers as the tables show them: 6 significant digits, no trailing zeros. */
function fmt(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "";
  if (Number.isInteger(x)) return String(x);
  return String(Number(x.toPrecision(6)));
}
const pct = (x: number | null) => (x === null ? "" : `${(100 * x).toFixed(1)}%`);
const ci = (c: [number, number] | null | unknown) =>
  Array.isArray(c) && c.length === 2 ? `${pct(c[0] as number)} – ${pct(c[1] as number)}` : "";
const numOrNull = (x: unknown) => (typeof x === "number" ? x : null);

function numCell(text: string, value?: number | null): HTMLTableCellElement {
  const td = el("td", { class: "num" }, text);
  if (value !== undefined && value !== null) td.dataset.value = String(value);
  return td;
}

function table(head: string[], rows: HTMLTableRowElement[], attrs: Record<string, string> = {}): HTMLTableElement {
  return el(
    "table",
    attrs,
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows),
  );
}

// ---- state and routing ----

let runs: RunInfo[] = [];
let current: { id: string; tab: Tab; stop: () => void } | null = null;
let routeSeq = 0; // the latest navigation; slower earlier ones are dropped
/** Text the pair browser hands to the credit tab. */
let creditRequest: { prompt: string; text: string } | null = null;

function route(): { id: string | null; tab: Tab } {
  const h = new URLSearchParams(location.hash.slice(1));
  const tab = h.get("tab") as Tab | null;
  return { id: h.get("run"), tab: tab && TABS.includes(tab) ? tab : "metrics" };
}

function go(id: string, tab: Tab): void {
  location.hash = new URLSearchParams({ run: id, tab }).toString();
}

async function refreshRuns(): Promise<void> {
  const r = await api<{ root: string; runs: RunInfo[] }>("/api/runs");
  runs = r.runs;
  document.getElementById("root")!.textContent = r.root;
  renderRunList();
}

function renderRunList(): void {
  const nav = document.getElementById("runs")!;
  const now = Date.now();
  nav.replaceChildren(
    ...(runs.length === 0
      ? [
          el(
            "p",
            { class: "empty", style: "padding: 0 14px" },
            "No runs yet: directories with metrics.jsonl or report.json.",
          ),
        ]
      : runs.map((r) => {
          const loss = r.last?.loss;
          const live = now - r.mtime < 30_000;
          return el(
            "a",
            {
              class: `run${r.parent !== null ? " child" : ""}${current?.id === r.id ? " selected" : ""}`,
              href: `#${new URLSearchParams({ run: r.id, tab: "metrics" })}`,
              "data-run": r.id,
            },
            el(
              "div",
              {},
              r.id,
              el("span", { class: "badge" }, r.kind === "pipeline" ? "pipeline" : (r.stage ?? "train")),
              live ? el("span", { class: "badge live" }, "live") : null,
            ),
            el(
              "div",
              { class: "meta" },
              r.kind === "training"
                ? `${r.steps} steps${loss !== undefined ? ` · loss ${fmt(loss)}` : ""}`
                : "report.json",
            ),
          );
        })),
  );
}

async function onRoute(): Promise<void> {
  const { id, tab } = route();
  if (id === null) return;
  if (current && current.id === id && current.tab === tab) return;
  current?.stop();
  current = null;
  const seq = ++routeSeq;
  const main = document.getElementById("main")!;
  let detail: RunDetail;
  try {
    detail = await api<RunDetail>(runUrl(id)); // fresh each time: a pipeline gains runs and pairs as it goes
  } catch (e) {
    if (seq === routeSeq)
      main.replaceChildren(el("p", { class: "error" }, `Cannot open run ${id}: ${(e as Error).message}`));
    return;
  }
  if (seq !== routeSeq) return; // the user moved on while this loaded
  current = { id, tab, stop: () => {} };
  renderRunList();
  const tabs = el(
    "div",
    { class: "tabs" },
    ...TABS.map((t) => {
      const b = el("button", { class: t === tab ? "active" : "", "data-tab": t }, t[0].toUpperCase() + t.slice(1));
      b.onclick = () => go(id, t);
      return b;
    }),
  );
  const body = el("div", { id: `tab-${tab}` });
  main.replaceChildren(el("h2", {}, detail.run.id, el("span", { class: "badge" }, detail.run.kind)), tabs, body);
  // biome-ignore lint/suspicious/noConfusingVoidType: a view returns its stop function, or nothing when it starts no timer
  const views: Record<Tab, (b: HTMLElement, d: RunDetail) => (() => void) | void> = {
    metrics: metricsView,
    evals: evalsView,
    pairs: pairsView,
    credit: creditView,
  };
  current.stop = views[tab](body, detail) ?? (() => {});
}

// ---- metrics ----

/** Metric names in the order the charts show them; others follow alphabetically. */
const ORDER: string[] = [
  METRICS.loss,
  METRICS.rewardsAccuracies,
  METRICS.rewardsMargins,
  METRICS.rewardsChosen,
  METRICS.rewardsRejected,
  METRICS.learningRate,
  METRICS.gradNorm,
  METRICS.logpsChosen,
  METRICS.logpsRejected,
  METRICS.logitsChosen,
  METRICS.logitsRejected,
  METRICS.meanTokenAccuracy,
  METRICS.entropy,
  METRICS.numTokens,
  METRICS.tokensPerSecond,
];
const NOT_CHARTED = new Set<string>([METRICS.step, METRICS.epoch]);
/** The preference metrics the pipeline overview compares across its variants, one chart each. */
const COMPARED: string[] = [
  METRICS.loss,
  METRICS.rewardsAccuracies,
  METRICS.rewardsMargins,
  METRICS.rewardsChosen,
  METRICS.rewardsRejected,
];
/** eval_loss, and an old run's eval/loss: both are the held-out loss. */
const isEval = (k: string) => evalBase(k) !== null;
/** A record's step: its step field, else its place in metrics.jsonl (1-based). */
const stepOf = (r: Record<string, number>, i: number) => r[METRICS.step] ?? i + 1;

function chartNames(keys: Iterable<string>): string[] {
  const names = new Set<string>();
  for (const k of keys) {
    const base = evalBase(k) ?? k;
    if (!NOT_CHARTED.has(base)) names.add(base);
  }
  const rank = (n: string) => (ORDER.includes(n) ? ORDER.indexOf(n) : ORDER.length);
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

const COLOURS = ["#2f6fdf", "#e8710a", "#1e8e3e", "#c5221f", "#8e44ad", "#00838f", "#6d4c41", "#d81b60"];

/** Axis numbers: 3 significant digits, exponents for the very small and large (learning rates, token counts). */
function axisValue(v: number | null): string {
  if (v === null) return "";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(1);
  return String(Number(v.toPrecision(3)));
}

/** A uPlot line chart over steps, inside `card`. */
function lineChart(
  card: HTMLElement,
  series: { label: string; colour: string; points: boolean }[],
  data: uPlot.AlignedData,
): uPlot {
  return new uPlot(
    {
      width: Math.max(380, card.clientWidth - 24),
      height: 200,
      scales: { x: { time: false } },
      axes: [
        { label: "step", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000] },
        { size: 70, values: (_u, splits) => splits.map(axisValue) },
      ],
      series: [
        { label: "step" },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.colour,
          width: 1.5,
          spanGaps: true,
          points: { show: s.points },
        })),
      ],
    },
    data,
    card,
  );
}

function metricsView(body: HTMLElement, detail: RunDetail): () => void {
  if (detail.run.kind === "pipeline") return pipelineOverview(body, detail);
  const records: Record<string, number>[] = [];
  const charts = new Map<string, { plot: uPlot; keys: string[] }>();
  const latest = el("div", { class: "card" }, el("h3", {}, "Latest"), el("p", { class: "empty" }, "No metrics yet."));
  const grid = el("div", { class: "charts", id: "charts" });
  body.append(latest, grid);
  let since = 0;
  let timer = 0;
  let stopped = false;

  const xs = () => records.map(stepOf);
  const series = (k: string) => records.map((r) => (k in r ? r[k] : null));
  const update = () => {
    const last = records[records.length - 1];
    if (last) {
      const keys = Object.keys(last).filter((k) => k !== METRICS.step);
      latest.replaceChildren(
        el("h3", {}, `Latest · step ${fmt(last[METRICS.step])}`),
        table(
          ["metric", "value"],
          keys.map((k) => el("tr", { "data-metric": k }, el("td", {}, k), numCell(fmt(last[k]), last[k]))),
          { id: "latest-table" },
        ),
      );
    }
    const allKeys = new Set(records.flatMap((r) => Object.keys(r)));
    for (const name of chartNames(allKeys)) {
      const keys = [name, evalMetric(name), `${LEGACY_EVAL_PREFIX}${name}`].filter((k) => allKeys.has(k));
      let c = charts.get(name);
      if (c && c.keys.length !== keys.length) {
        c.plot.destroy();
        c.plot.root.parentElement?.remove();
        charts.delete(name);
        c = undefined;
      }
      const data = [xs(), ...keys.map(series)] as uPlot.AlignedData;
      if (c) {
        c.plot.setData(data);
        c.plot.root.parentElement!.dataset.points = String(records.length);
        continue;
      }
      const card = el(
        "div",
        { class: "card chart", "data-chart": name, "data-points": String(records.length) },
        el("h3", {}, name),
      );
      grid.append(card);
      const plot = lineChart(
        card,
        keys.map((k) => ({
          label: k,
          colour: isEval(k) ? "#e8710a" : COLOURS[0],
          points: isEval(k) || records.length < 30,
        })),
        data,
      );
      charts.set(name, { plot, keys });
    }
  };

  const poll = async () => {
    try {
      const chunk = await api<MetricsChunk>(`${runUrl(detail.run.id, "metrics")}?since=${since}`);
      if (stopped) return;
      if (chunk.reset) records.length = 0;
      if (chunk.reset || chunk.records.length > 0) {
        records.push(...chunk.records);
        update();
      }
      since = chunk.next;
    } catch (e) {
      latest.append(el("p", { class: "error" }, (e as Error).message));
    }
    if (!stopped) timer = window.setTimeout(poll, POLL_MS);
  };
  void poll();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    for (const c of charts.values()) c.plot.destroy();
  };
}

function pipelineOverview(body: HTMLElement, detail: RunDetail): () => void {
  const shown = [METRICS.loss, METRICS.rewardsAccuracies, METRICS.rewardsMargins]; // each run's last value of these
  const rows = detail.children.map((c) =>
    el(
      "tr",
      {},
      el("td", {}, el("a", { href: `#${new URLSearchParams({ run: c.id, tab: "metrics" })}` }, c.id)),
      el("td", {}, c.stage ?? ""),
      numCell(String(c.steps)),
      ...shown.map((k) => numCell(fmt(c.last?.[k]), c.last?.[k])),
    ),
  );
  body.append(
    el(
      "div",
      { class: "card" },
      el("h3", {}, "Training runs"),
      rows.length
        ? table(["run", "stage", "steps", ...shown], rows, { id: "children-table" })
        : el("p", { class: "empty" }, "No training runs inside yet."),
      ...detail.skipped.map((k) => el("p", { class: "muted skipped" }, `skipped: ${k.dir} (${k.reason})`)),
    ),
  );
  const evals = el("div");
  body.append(evals);
  void api<Evals>(runUrl(detail.run.id, "evals")).then((ev) => reportCard(evals, ev));
  return compareCharts(
    body,
    detail.run.id,
    detail.children.filter((c) => c.stage !== "sft" && c.name !== "sft"),
  );
}

/** The preference-trained variants side by side: one chart per metric, one line per run; follows their metrics. */
function compareCharts(body: HTMLElement, pipelineId: string, runs: RunInfo[]): () => void {
  const label = (r: RunInfo) =>
    pipelineId !== "~" && r.id.startsWith(`${pipelineId}/`) ? r.id.slice(pipelineId.length + 1) : r.id;
  if (runs.length === 0) return () => {};
  const grid = el("div", { class: "charts", id: "compare-charts" });
  body.append(el("h3", {}, "Variants compared"), grid);
  const records = new Map<string, Record<string, number>[]>(runs.map((r) => [r.id, []]));
  const since = new Map<string, number>(runs.map((r) => [r.id, 0]));
  const charts = new Map<string, uPlot>();
  let timer = 0;
  let stopped = false;
  const draw = () => {
    const steps = [...new Set([...records.values()].flatMap((rs) => rs.map(stepOf)))].sort((a, b) => a - b);
    for (const name of COMPARED) {
      const withIt = runs.filter((r) => records.get(r.id)!.some((x) => name in x));
      if (withIt.length === 0) continue;
      const data = [
        steps,
        ...withIt.map((r) => {
          const at = new Map(records.get(r.id)!.map((x, i) => [stepOf(x, i), x[name] ?? null]));
          return steps.map((st) => at.get(st) ?? null);
        }),
      ] as uPlot.AlignedData;
      const key = `${name}:${withIt.map((r) => r.id).join(",")}`;
      const old = charts.get(name);
      if (old && old.series.length === withIt.length + 1) {
        old.setData(data);
        continue;
      }
      old?.root.parentElement?.remove();
      old?.destroy();
      const card = el("div", { class: "card chart", "data-compare": name, "data-key": key }, el("h3", {}, name));
      grid.append(card);
      charts.set(
        name,
        lineChart(
          card,
          withIt.map((r, i) => ({ label: label(r), colour: COLOURS[i % COLOURS.length], points: steps.length < 30 })),
          data,
        ),
      );
    }
  };
  const poll = async () => {
    let grew = false;
    for (const r of runs) {
      try {
        const chunk = await api<MetricsChunk>(`${runUrl(r.id, "metrics")}?since=${since.get(r.id)}`);
        const rs = records.get(r.id)!;
        if (chunk.reset) rs.length = 0;
        rs.push(...chunk.records);
        since.set(r.id, chunk.next);
        grew ||= chunk.reset || chunk.records.length > 0;
      } catch {
        /* a run that went away: keep what we have */
      }
    }
    if (stopped) return;
    if (grew) draw();
    timer = window.setTimeout(poll, Math.max(POLL_MS, 2000));
  };
  void poll();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    for (const c of charts.values()) c.destroy();
  };
}

// ---- evals ----

function reportCard(parent: HTMLElement, ev: Evals): void {
  const variants = Array.isArray(ev.report?.variants) ? ev.report!.variants : [];
  if (variants.length === 0) return;
  const spread = variants.some((v) => typeof v.spread === "number");
  const rows = variants.map((v) =>
    el(
      "tr",
      { "data-variant": String(v.name) },
      el("td", {}, String(v.name ?? "")),
      numCell(pct(numOrNull(v.accuracy)), numOrNull(v.accuracy)),
      numCell(fmt(numOrNull(v.n)), numOrNull(v.n)),
      numCell(ci(v.ci95)),
      spread ? numCell(pct(numOrNull(v.spread)), numOrNull(v.spread)) : null,
      numCell(pct(numOrNull(v.maj_accuracy)), numOrNull(v.maj_accuracy)),
      numCell(pct(numOrNull(v.step_error_rate)), numOrNull(v.step_error_rate)),
    ),
  );
  const meta = [
    ev.report?.seeds !== undefined ? `seeds: ${JSON.stringify(ev.report.seeds)}` : "",
    typeof ev.report?.seconds === "number" ? `${fmt(ev.report.seconds)} s` : "",
  ]
    .filter(Boolean)
    .join(" · ");
  parent.append(
    el(
      "div",
      { class: "card" },
      el("h3", {}, "Report"),
      meta ? el("p", { class: "muted" }, meta) : null,
      table(
        [
          "variant",
          "accuracy",
          "n",
          "95% CI",
          ...(spread ? ["spread (sd over seeds)"] : []),
          "maj@k",
          "step error rate",
        ],
        rows,
        { id: "report-table" },
      ),
    ),
  );
}

function evalsView(body: HTMLElement, detail: RunDetail): void {
  body.append(el("p", { class: "muted" }, "Loading…"));
  void api<Evals>(runUrl(detail.run.id, "evals"))
    .then((ev) => {
      body.replaceChildren();
      reportCard(body, ev);
      if (ev.tables.length > 0) {
        const rows = ev.tables.map((t) =>
          el(
            "tr",
            { "data-file": t.file },
            el("td", {}, t.seed ?? ""),
            el("td", {}, t.variant),
            numCell(pct(t.accuracy), t.accuracy),
            numCell(fmt(t.n), t.n),
            numCell(ci(t.ci95)),
            numCell(pct(t.maj_accuracy), t.maj_accuracy),
            numCell(pct(t.step_error_rate), t.step_error_rate),
          ),
        );
        body.append(
          el(
            "div",
            { class: "card" },
            el("h3", {}, "Evaluations"),
            table(["seed", "variant", "accuracy", "n", "95% CI", "maj@k", "step error rate"], rows, {
              id: "eval-table",
            }),
          ),
        );
        groupCard(
          body,
          ev.tables,
          "Accuracy by number of steps",
          "by-steps-table",
          (t) => t.by_steps.map((b) => ({ ...b, key: b.steps })),
          (k) => `${k} steps`,
        );
        groupCard(
          body,
          ev.tables,
          "Accuracy by level",
          "by-level-table",
          (t) => t.by_level.map((b) => ({ ...b, key: b.level })),
          String,
        );
      }
      if (detail.run.kind === "training") trainingEvalCard(body, detail);
      else if (!ev.report && ev.tables.length === 0)
        body.append(el("p", { class: "empty" }, "No evaluations in this run."));
    })
    .catch((e) => body.replaceChildren(el("p", { class: "error" }, (e as Error).message)));
}

/** One row per eval, one column per group (steps, level) with its accuracy and count; nothing when no eval has groups. */
function groupCard<K extends string | number>(
  body: HTMLElement,
  tables: EvalTable[],
  title: string,
  id: string,
  groups: (t: EvalTable) => { key: K; n: number; accuracy: number }[],
  label: (k: K) => string,
): void {
  const keys = [...new Set(tables.flatMap((t) => groups(t).map((g) => g.key)))];
  if (keys.length === 0) return;
  if (keys.every((k) => typeof k === "number")) keys.sort((a, b) => (a as number) - (b as number));
  const rows = tables.map((t) =>
    el(
      "tr",
      {},
      el("td", {}, t.seed ?? ""),
      el("td", {}, t.variant),
      ...keys.map((k) => {
        const g = groups(t).find((x) => x.key === k);
        return numCell(g ? `${pct(g.accuracy)} (${g.n})` : "", g?.accuracy);
      }),
    ),
  );
  body.append(
    el("div", { class: "card" }, el("h3", {}, title), table(["seed", "variant", ...keys.map(label)], rows, { id })),
  );
}

/** Held-out eval_ metrics logged during training, one row per evaluation. */
function trainingEvalCard(body: HTMLElement, detail: RunDetail): void {
  void api<MetricsChunk>(runUrl(detail.run.id, "metrics")).then((m) => {
    const rows = m.records.filter((r) => Object.keys(r).some(isEval));
    const keys = [...new Set(rows.flatMap((r) => Object.keys(r).filter(isEval)))];
    body.append(
      el(
        "div",
        { class: "card" },
        el("h3", {}, "Held-out metrics during training"),
        rows.length === 0
          ? el("p", { class: "empty" }, `This run logged no ${EVAL_PREFIX} metrics.`)
          : table(
              [METRICS.step, ...keys],
              rows.map((r) =>
                el("tr", {}, numCell(fmt(r[METRICS.step])), ...keys.map((k) => numCell(fmt(r[k]), r[k]))),
              ),
              { id: "train-eval-table" },
            ),
      ),
    );
  });
}

// ---- pairs ----

function stepsColumn(kind: "chosen" | "rejected", steps: string[], firstDiff: number | null): HTMLElement {
  return el(
    "div",
    { class: `side ${kind}` },
    el("h4", {}, kind),
    ...steps.map((s, i) =>
      el(
        "div",
        {
          class: `step ${firstDiff === null || i < firstDiff ? "same" : i === firstDiff ? "diff-first" : "after"}`,
          "data-step": String(i),
        },
        s,
      ),
    ),
  );
}

function pairCard(p: PairView, detail: RunDetail): HTMLElement {
  if (p.error) return el("div", { class: "card pair" }, el("p", { class: "error" }, `line ${p.line}: ${p.error}`));
  const credit = (side: "chosen" | "rejected") => {
    const b = el("button", { class: "small", "data-credit": side }, `credit heatmap: ${side}`);
    b.onclick = () => {
      creditRequest = { prompt: p.context, text: side === "chosen" ? p.chosen : p.rejected };
      go(detail.run.id, "credit");
    };
    return b;
  };
  const where =
    p.first_diff === null
      ? "chosen and rejected are the same step for step"
      : `first differing step: ${p.first_diff + 1}`;
  return el(
    "div",
    { class: "card pair", "data-line": String(p.line) },
    el("h3", {}, `line ${p.line}${p.id ? ` · ${p.id}` : ""}${p.kind ? ` · ${p.kind}` : ""}`),
    el("pre", { class: "prompt" }, p.prompt),
    p.initial_reason_steps ? el("pre", { class: "prompt muted" }, p.initial_reason_steps) : null,
    el("p", { class: "muted first-diff" }, where),
    el(
      "div",
      { class: "pair-sides" },
      stepsColumn("chosen", p.chosen_steps, p.first_diff),
      stepsColumn("rejected", p.rejected_steps, p.first_diff),
    ),
    el("div", { class: "toolbar", style: "margin: 8px 0 0" }, credit("chosen"), credit("rejected")),
  );
}

function pairsView(body: HTMLElement, detail: RunDetail): void {
  if (detail.pair_files.length === 0) {
    body.append(el("p", { class: "empty" }, "No pair files in this run (pairs/*.jsonl, seed-N/pairs/*.jsonl)."));
    return;
  }
  const select = el(
    "select",
    { id: "pair-file" },
    ...detail.pair_files.map((f) => el("option", { value: f }, `${f} (${detail.pair_counts[f] ?? "?"})`)),
  );
  select.value = detail.pair_files.find((f) => (detail.pair_counts[f] ?? 0) > 0) ?? detail.pair_files[0];
  const info = el("span", { class: "muted" });
  const prev = el("button", {}, "‹ prev");
  const next = el("button", {}, "next ›");
  const list = el("div", { id: "pairs" });
  body.append(el("div", { class: "toolbar" }, el("label", {}, "file"), select, prev, next, info), list);
  let offset = 0;
  let total = 0;
  const load = async () => {
    try {
      const page = await api<PairPage>(
        `${runUrl(detail.run.id, "pairs")}?${new URLSearchParams({ file: select.value, offset: String(offset), limit: String(PAGE) })}`,
      );
      total = page.total;
      info.textContent = total === 0 ? "empty file" : `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}`;
      list.replaceChildren(...page.pairs.map((p) => pairCard(p, detail)));
    } catch (e) {
      list.replaceChildren(el("p", { class: "error" }, (e as Error).message));
    }
  };
  select.onchange = () => {
    offset = 0;
    void load();
  };
  prev.onclick = () => {
    if (offset > 0) {
      offset = Math.max(0, offset - PAGE);
      void load();
    }
  };
  next.onclick = () => {
    if (offset + PAGE < total) {
      offset += PAGE;
      void load();
    }
  };
  void load();
}

// ---- credit ----

/** Red for negative rewards, green for positive, white at 0; saturates at +-scale. */
function rewardColour(r: number, scale: number): string {
  const t = Math.min(1, Math.abs(r) / scale);
  const [R, G, B] = r < 0 ? [220, 50, 40] : [30, 150, 60];
  const mix = (c: number) => Math.round(255 + (c - 255) * t);
  return `rgb(${mix(R)}, ${mix(G)}, ${mix(B)})`;
}

function heatmap(r: CreditResult): HTMLElement {
  const rewards = r.tokens.map((t) => t.reward ?? 0);
  const scale = Math.max(1e-12, ...rewards.slice(r.prompt_tokens).map(Math.abs));
  const spans = r.tokens.map((t, i) => {
    const reward = t.reward ?? null;
    const s = el(
      "span",
      {
        class: `tok${i < r.prompt_tokens ? " prompt-tok" : ""}`,
        "data-reward": reward === null ? "" : String(reward),
        title: `#${i} id ${t.id} ${JSON.stringify(t.text)}\nreward ${reward === null ? "–" : reward.toExponential(3)}\nlogprob ${t.logprob === null ? "–" : t.logprob.toFixed(4)}`,
      },
      t.text,
    );
    if (reward !== null) s.style.background = rewardColour(reward, scale);
    return s;
  });
  return el(
    "div",
    { class: "card", id: "credit-result" },
    el(
      "div",
      { class: "legend" },
      `−${scale.toExponential(2)}`,
      el("span", { class: "bar" }),
      `+${scale.toExponential(2)}`,
      el("span", {}, ` · β = ${r.beta} · completion reward `),
      el("b", { id: "completion-reward" }, fmt(r.completion_reward)),
      el("span", {}, ` · total log-prob ${fmt(r.total_logprob)}`),
    ),
    el("div", { class: "heatmap", id: "heatmap" }, ...spans),
  );
}

function creditView(body: HTMLElement, detail: RunDetail): void {
  const modelSel = el("select", { id: "credit-model" });
  const refSel = el("select", { id: "credit-ref" });
  const beta = el("input", {
    id: "credit-beta",
    type: "number",
    step: "any",
    min: "0",
    value: String(detail.credit.beta),
    style: "width: 80px",
  });
  const prompt = el("textarea", {
    id: "credit-prompt",
    rows: "3",
    placeholder: "prompt (context: scored, shown dimmed)",
  });
  const text = el("textarea", { id: "credit-text", rows: "5", placeholder: "completion to score" });
  const go = el("button", { id: "credit-go" }, "Score");
  const out = el("div", { id: "credit-out" });
  body.append(
    el(
      "div",
      { class: "card" },
      el(
        "p",
        { class: "muted" },
        "Per-token implicit reward β·log(π/π_ref) of the policy against the reference: which tokens DPO credits (green) or blames (red).",
      ),
      el(
        "div",
        { class: "toolbar" },
        el("label", {}, "policy"),
        modelSel,
        el("label", {}, "reference"),
        refSel,
        el("label", {}, "β"),
        beta,
      ),
      el("label", {}, "prompt"),
      prompt,
      el("label", {}, "completion"),
      text,
      el("div", { class: "toolbar", style: "margin-top: 6px" }, go),
    ),
    out,
  );
  if (creditRequest) {
    prompt.value = creditRequest.prompt;
    text.value = creditRequest.text;
  }
  const score = async () => {
    out.replaceChildren(el("p", { class: "muted" }, "Scoring…"));
    try {
      const r = await api<CreditResult>("/api/credit", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: modelSel.value,
          ref: refSel.value,
          prompt: prompt.value,
          text: text.value,
          beta: Number(beta.value),
        }),
      });
      out.replaceChildren(heatmap(r));
    } catch (e) {
      out.replaceChildren(el("p", { class: "error" }, (e as Error).message));
    }
  };
  go.onclick = () => void score();
  void api<{ models: string[] }>("/api/models").then(({ models }) => {
    const fill = (sel: HTMLSelectElement, chosen: string | null) => {
      sel.replaceChildren(...models.map((m) => el("option", { value: m }, m)));
      if (chosen !== null && models.includes(chosen)) sel.value = chosen;
    };
    fill(modelSel, detail.credit.model);
    fill(refSel, detail.credit.ref);
    if (models.length === 0)
      out.replaceChildren(el("p", { class: "empty" }, "No model folders under the runs directory."));
    else if (creditRequest) void score();
    creditRequest = null;
  });
}

// ---- start ----

window.addEventListener("hashchange", () => {
  void onRoute();
  void refreshRuns().catch(() => {});
});
void refreshRuns().then(() => {
  if (route().id === null && runs.length > 0) go(runs[0].id, "metrics");
  else void onRoute();
});
window.setInterval(() => void refreshRuns().catch(() => {}), Math.max(POLL_MS, 3000));
