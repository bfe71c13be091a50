// Run directories as the dashboard sees them: discovery under a root, safe resolution of ids and files that come from
// HTTP requests, and tolerant readers for metrics.jsonl (a run may be writing it), eval JSON and pair files.
//
// A training run is a directory with metrics.jsonl (an `sft`/`dpo` output folder: usually also a model folder).
// A pipeline run (from `stepwise run`) is a directory with report.json; its seed-N/<variant>/ training runs are listed
// under it. A run's id is its path relative to the root, with "/" separators; the root itself is ROOT_ID.

import fs from "node:fs";
import path from "node:path";

export const ROOT_ID = "~";
/** How deep below the root discovery looks (root = depth 0). */
export const MAX_DEPTH = 4;
/** Directories discovery never enters: checkpoints hold weights, not runs. */
const SKIP_DIRS = new Set(["checkpoints", "node_modules"]);

/** An HTTP-facing error: the server answers with `status` and `{"error": message}`. */
export class HttpError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 405 | 413 | 500,
    message: string,
  ) {
    super(message);
  }
}

export interface RunInfo {
  id: string;
  name: string; // the directory's name
  kind: "pipeline" | "training";
  parent: string | null; // id of the enclosing pipeline run
  isModel: boolean; // config.json + tokenizer.json + weights: the credit view can load it
  steps: number; // metrics records so far (training runs)
  last: Record<string, number> | null; // the last metrics record
  mtime: number; // ms since epoch of the newest of metrics.jsonl / report.json
  stage: string | null; // train_config.json's stage (sft, dpo) when present
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

export function isModelDir(dir: string): boolean {
  return (
    isFile(path.join(dir, "config.json")) &&
    isFile(path.join(dir, "tokenizer.json")) &&
    (isFile(path.join(dir, "model.safetensors")) ||
      isFile(path.join(dir, "model.safetensors.index.json")) ||
      isFile(path.join(dir, "adapter_model.safetensors")))
  );
}

/** Reads a JSON file, or null when it is missing or not (yet) valid JSON. */
export function readJsonOrNull(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}

function idOf(root: string, dir: string): string {
  const rel = path.relative(root, dir);
  return rel === "" ? ROOT_ID : rel.split(path.sep).join("/");
}

/** Every run under `root` (depth-limited), pipelines before the training runs nested in them, sorted by id. */
export function discoverRuns(root: string): RunInfo[] {
  const found: RunInfo[] = [];
  const walk = (dir: string, depth: number, parent: string | null) => {
    const info = describeRun(root, dir, parent);
    if (info) found.push(info);
    if (depth >= MAX_DEPTH) return;
    let names: string[];
    try {
      names = fs.readdirSync(dir).sort();
    } catch {
      return;
    }
    const childParent = info?.kind === "pipeline" ? info.id : parent;
    for (const name of names) {
      if (name.startsWith(".") || SKIP_DIRS.has(name) || name === ROOT_ID) continue;
      const sub = path.join(dir, name);
      if (!fs.lstatSync(sub).isSymbolicLink() && isDir(sub)) walk(sub, depth + 1, childParent);
    }
  };
  walk(root, 0, null);
  return found;
}

/** What the dashboard knows of one directory, or null when it is not a run. */
export function describeRun(root: string, dir: string, parent: string | null): RunInfo | null {
  const metricsFile = path.join(dir, "metrics.jsonl");
  const reportFile = path.join(dir, "report.json");
  const hasMetrics = isFile(metricsFile);
  const hasReport = isFile(reportFile);
  if (!hasMetrics && !hasReport) return null;
  const mtime = Math.max(
    ...[metricsFile, reportFile].map((f) => {
      try {
        return fs.statSync(f).mtimeMs;
      } catch {
        return 0;
      }
    }),
  );
  const metrics = hasMetrics ? readMetrics(metricsFile, 0).records : [];
  const trainConfig = readJsonOrNull(path.join(dir, "train_config.json")) as { stage?: unknown } | null;
  return {
    id: idOf(root, dir),
    name: path.basename(dir),
    kind: hasReport ? "pipeline" : "training",
    parent,
    isModel: isModelDir(dir),
    steps: metrics.length,
    last: metrics.length ? metrics[metrics.length - 1] : null,
    mtime,
    stage: typeof trainConfig?.stage === "string" ? trainConfig.stage : null,
  };
}

/**
 * Resolves a path that came from a request (a run id, a file inside a run) to an absolute path inside `base`.
 * Absolute paths, ".." segments, NUL bytes and symlinks that lead outside are refused with a 400.
 */
export function resolveInside(base: string, rel: string, what: string): string {
  if (rel === ROOT_ID || rel === "") return base;
  if (rel.includes("\0") || rel.includes("\\") || path.isAbsolute(rel) || /^[a-zA-Z]:/.test(rel)) {
    throw new HttpError(400, `bad ${what} "${rel}": must be a relative path inside the runs directory`);
  }
  const parts = rel.split("/");
  if (parts.some((p) => p === ".." || p === "." || p === "")) {
    throw new HttpError(400, `bad ${what} "${rel}": "..", "." and empty path segments are refused`);
  }
  const full = path.join(base, ...parts);
  if (!fs.existsSync(full)) throw new HttpError(404, `no ${what} "${rel}"`);
  const real = fs.realpathSync(full);
  const realBase = fs.realpathSync(base);
  if (real !== realBase && !real.startsWith(realBase + path.sep)) {
    throw new HttpError(400, `bad ${what} "${rel}": it leads outside the runs directory`);
  }
  return full;
}

/** The directory of run `id` under `root`: 404 when it is not a run. */
export function runDir(root: string, id: string): string {
  const dir = resolveInside(root, id, "run");
  if (!isDir(dir) || (!isFile(path.join(dir, "metrics.jsonl")) && !isFile(path.join(dir, "report.json")))) {
    throw new HttpError(404, `no run "${id}" (a run directory holds metrics.jsonl or report.json)`);
  }
  return dir;
}

export interface MetricsChunk {
  records: Record<string, number>[]; // complete records after the first `since`
  next: number; // pass as `since` next time
  reset: boolean; // the file has fewer records than `since` (a resumed run rewrote it): records start at 0
}

/**
 * Records of metrics.jsonl after the first `since`. A last line without its newline (being written) or that does not
 * parse is left for the next call; a bad line in the middle is skipped. Only numeric fields are kept.
 */
export function readMetrics(file: string, since: number): MetricsChunk {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return { records: [], next: 0, reset: since > 0 };
  }
  const lines = text.split("\n");
  lines.pop(); // what follows the last newline: empty, or a torn line
  const all: Record<string, number>[] = [];
  for (const line of lines) {
    if (!line.trim()) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      continue;
    }
    if (!obj || typeof obj !== "object" || Array.isArray(obj)) continue;
    const rec: Record<string, number> = {};
    for (const [k, v] of Object.entries(obj)) if (typeof v === "number" && Number.isFinite(v)) rec[k] = v;
    all.push(rec);
  }
  const reset = since > all.length;
  const from = reset ? 0 : since;
  return { records: all.slice(from), next: all.length, reset };
}

export interface EvalTable {
  file: string; // relative to the run: seed-1/eval/dpo.json
  seed: string | null;
  variant: string;
  accuracy: number | null;
  n: number | null;
  ci95: [number, number] | null;
  maj_accuracy: number | null;
  step_error_rate: number | null;
  by_steps: { steps: number; n: number; accuracy: number }[];
  by_level: { level: string; n: number; accuracy: number }[]; // a mixed task's parts; empty otherwise
}

const num = (x: unknown): number | null => (typeof x === "number" && Number.isFinite(x) ? x : null);

function evalTable(runDirPath: string, file: string, seed: string | null): EvalTable | null {
  const j = readJsonOrNull(file) as Record<string, unknown> | null;
  if (!j || typeof j !== "object") return null;
  const ci =
    Array.isArray(j.ci95) && j.ci95.length === 2 && j.ci95.every((x) => num(x) !== null)
      ? (j.ci95 as [number, number])
      : null;
  const bySteps = Array.isArray(j.by_steps)
    ? j.by_steps.filter(
        (r): r is { steps: number; n: number; accuracy: number } =>
          !!r && typeof r === "object" && num(r.steps) !== null && num(r.n) !== null && num(r.accuracy) !== null,
      )
    : [];
  const byLevel = Array.isArray(j.by_level)
    ? j.by_level.filter(
        (r): r is { level: string; n: number; accuracy: number } =>
          !!r && typeof r === "object" && typeof r.level === "string" && num(r.n) !== null && num(r.accuracy) !== null,
      )
    : [];
  return {
    file: path.relative(runDirPath, file).split(path.sep).join("/"),
    seed,
    variant: path.basename(file, ".json"),
    accuracy: num(j.accuracy),
    n: num(j.n),
    ci95: ci,
    maj_accuracy: num(j.maj_accuracy),
    step_error_rate: num(j.step_error_rate),
    by_steps: bySteps,
    by_level: byLevel,
  };
}

/** Subdirectories named seed-N, in numeric order, plus the run itself (seed null). */
function seedDirs(dir: string): { seed: string | null; dir: string }[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir).filter((n) => /^seed-\d+$/.test(n) && isDir(path.join(dir, n)));
  } catch {
    /* unreadable: no seeds */
  }
  names.sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  return [{ seed: null, dir }, ...names.map((n) => ({ seed: n, dir: path.join(dir, n) }))];
}

function filesIn(dir: string, ext: string): string[] {
  try {
    return fs
      .readdirSync(dir)
      .filter((n) => n.endsWith(ext) && isFile(path.join(dir, n)))
      .sort();
  } catch {
    return [];
  }
}

export interface Evals {
  report: unknown | null; // report.json as written (variants, seeds, seconds, config)
  tables: EvalTable[];
}

/** report.json and every eval/<variant>.json of the run and its seed-N folders. */
export function readEvals(dir: string): Evals {
  const tables: EvalTable[] = [];
  for (const s of seedDirs(dir)) {
    const evalDir = path.join(s.dir, "eval");
    for (const f of filesIn(evalDir, ".json")) {
      const t = evalTable(dir, path.join(evalDir, f), s.seed);
      if (t) tables.push(t);
    }
  }
  return { report: readJsonOrNull(path.join(dir, "report.json")), tables };
}

/** Pair files of a run (pairs/*.jsonl in the run and its seeds), relative to the run. */
export function listPairFiles(dir: string): string[] {
  const out: string[] = [];
  for (const s of seedDirs(dir)) {
    for (const f of filesIn(path.join(s.dir, "pairs"), ".jsonl")) {
      out.push(
        path
          .relative(dir, path.join(s.dir, "pairs", f))
          .split(path.sep)
          .join("/"),
      );
    }
  }
  return out;
}

/** Non-blank lines of a file (pairs in a pair file); 0 when it cannot be read. */
export function countLines(file: string): number {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return 0;
  }
  let n = 0;
  for (const line of text.split("\n")) if (line.trim()) n++;
  return n;
}

export interface Skipped {
  dir: string; // relative to the run: seed-1/dpo
  reason: string;
}

/** Variants `stepwise run` skipped (seed-N/<variant>/SKIPPED.json), with the reason it wrote. */
export function listSkipped(dir: string): Skipped[] {
  const out: Skipped[] = [];
  for (const s of seedDirs(dir).slice(1)) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(s.dir).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      const j = readJsonOrNull(path.join(s.dir, n, "SKIPPED.json")) as { reason?: unknown } | null;
      if (j) out.push({ dir: `${s.seed}/${n}`, reason: typeof j.reason === "string" ? j.reason : "skipped" });
    }
  }
  return out;
}
