// The dashboard's HTTP server (node:http): a JSON API over the run directories under one root, the front end
// (dist/dashboard/web/*.js, compiled from src/dashboard/web, and the metric names it imports from
// dist/train/metrics.js) and uPlot from node_modules. Nothing is fetched from the network; the page works offline.
//
// GET  /api/runs                                 every run: {root, runs: RunInfo[]}
// GET  /api/runs/:id                             one run: {run, children, pair_files, pair_counts, skipped, credit}
// GET  /api/runs/:id/metrics?since=N             metrics records after the first N: {records, next, reset}
// GET  /api/runs/:id/evals                       {report, tables}
// GET  /api/runs/:id/pairs                       {files}
// GET  /api/runs/:id/pairs?file=F&offset=O&limit=L   a page of pairs with their first differing step
// GET  /api/models                               model folders under the root (ids), for the credit view
// POST /api/credit {model, ref, text, prompt?, beta?}   per-token implicit rewards (CreditResult)
//
// Ids and files come from requests and are resolved with resolveInside: nothing outside the root is read. Bound to
// a loopback address, the server answers only requests whose Host is a loopback name (a web page elsewhere cannot
// read the runs through DNS rebinding).

import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { LOOPBACK, isLoopbackHost } from "../core/loopback.js";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Backend } from "../backend/backend.js";
import { InputError, StepwiseError } from "../core/errors.js";
import { credit, ModelCache } from "./credit.js";
import { indexHtml } from "./page.js";
import { readPairs } from "./pairs.js";
import {
  countLines,
  describeRun,
  discoverRuns,
  HttpError,
  isModelDir,
  listPairFiles,
  listSkipped,
  readEvals,
  readJsonOrNull,
  readMetrics,
  resolveInside,
  ROOT_ID,
  runDir,
  type RunInfo,
} from "./runs.js";

export interface DashboardOptions {
  root: string; // the --runs directory
  backend?: Backend; // for credit scoring
  maxBodyBytes?: number; // largest POST body, default 1 MiB
  modelCacheSize?: number; // model folders kept loaded, default 4
}

const WEB_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "web");
const require = createRequire(import.meta.url);

/** Files the server sends as they are: name -> [absolute path, content type]. */
function staticFiles(): Map<string, [string, string]> {
  const m = new Map<string, [string, string]>();
  const uplotDir = path.dirname(require.resolve("uplot/dist/uPlot.esm.js"));
  m.set("/vendor/uPlot.esm.js", [path.join(uplotDir, "uPlot.esm.js"), "text/javascript"]);
  m.set("/vendor/uPlot.min.css", [path.join(uplotDir, "uPlot.min.css"), "text/css"]);
  for (const f of fs.existsSync(WEB_DIR) ? fs.readdirSync(WEB_DIR) : []) {
    if (/^[\w-]+\.js$/.test(f)) m.set(`/web/${f}`, [path.join(WEB_DIR, f), "text/javascript"]);
  }
  // The trainer's metric names: /web/app.js imports "../../train/metrics.js" (dist/train/metrics.js, no imports).
  m.set("/train/metrics.js", [fileURLToPath(new URL("../train/metrics.js", import.meta.url)), "text/javascript"]);
  return m;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  res.end(data);
}

function intParam(q: URLSearchParams, name: string, dflt: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = q.get(name);
  if (v === null || v === "") return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new HttpError(400, `?${name} must be an integer in 0..${max}, got "${v}"`);
  return n;
}

async function readBody(req: http.IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw new HttpError(413, `request body over ${limit} bytes`);
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (e) {
    throw new HttpError(400, `the body is not valid JSON (${(e as Error).message})`);
  }
}

export class DashboardServer {
  readonly root: string;
  readonly models: ModelCache;
  private readonly server: http.Server;
  private readonly statics = staticFiles();
  private readonly maxBody: number;
  private loopbackOnly = true;

  constructor(opts: DashboardOptions) {
    this.root = path.resolve(opts.root);
    if (!fs.existsSync(this.root) || !fs.statSync(this.root).isDirectory()) {
      throw new InputError("not a directory", `--runs ${opts.root}`, "point --runs at a folder of run directories");
    }
    this.models = new ModelCache(opts.backend, opts.modelCacheSize ?? 4);
    this.maxBody = opts.maxBodyBytes ?? 1 << 20;
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e) => this.fail(res, e));
    });
  }

  /** Starts listening; resolves to the base URL. */
  listen(port: number, host = "127.0.0.1"): Promise<string> {
    this.loopbackOnly = LOOPBACK.has(host);
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        const a = this.server.address() as AddressInfo;
        resolve(`http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`);
      });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) =>
      this.server.close(() => {
        this.models.dispose();
        resolve();
      }),
    );
  }

  private fail(res: http.ServerResponse, e: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (e instanceof HttpError) sendJson(res, e.status, { error: e.message });
    else if (e instanceof StepwiseError) sendJson(res, 400, { error: e.message });
    else sendJson(res, 500, { error: `internal error: ${(e as Error).message ?? e}` });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = req.method ?? "GET";
    if (this.loopbackOnly && !isLoopbackHost(req.headers.host)) {
      throw new HttpError(403, `Host "${req.headers.host ?? ""}" refused: the dashboard answers on localhost only`);
    }
    if (url.pathname === "/api/credit") {
      if (method !== "POST")
        throw new HttpError(405, "POST a JSON body {model, ref, text, prompt?, beta?} to /api/credit");
      sendJson(res, 200, this.credit(await readBody(req, this.maxBody)));
      return;
    }
    if (method !== "GET" && method !== "HEAD") throw new HttpError(405, `${method} is not supported here`);
    if (url.pathname === "/" || url.pathname === "/index.html") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      res.end(indexHtml());
      return;
    }
    const file = this.statics.get(url.pathname);
    if (file) {
      res.writeHead(200, { "content-type": `${file[1]}; charset=utf-8`, "cache-control": "no-cache" });
      fs.createReadStream(file[0]).pipe(res);
      return;
    }
    if (url.pathname === "/api/runs") return sendJson(res, 200, { root: this.root, runs: discoverRuns(this.root) });
    if (url.pathname === "/api/models") return sendJson(res, 200, { models: this.modelIds() });
    const parts = url.pathname.split("/");
    if (parts[1] === "api" && parts[2] === "runs" && parts.length >= 4 && parts.length <= 5) {
      let id: string;
      try {
        id = decodeURIComponent(parts[3]);
      } catch {
        throw new HttpError(400, "bad percent-encoding in the run id");
      }
      return sendJson(res, 200, await this.runRoute(id, parts[4] ?? "", url.searchParams));
    }
    throw new HttpError(404, `no such endpoint: ${url.pathname}`);
  }

  private async runRoute(id: string, what: string, q: URLSearchParams): Promise<unknown> {
    const dir = runDir(this.root, id);
    switch (what) {
      case "":
        return this.runDetail(id, dir);
      case "metrics":
        return readMetrics(path.join(dir, "metrics.jsonl"), intParam(q, "since", 0));
      case "evals":
        return readEvals(dir);
      case "pairs": {
        const file = q.get("file");
        if (file === null) return { files: listPairFiles(dir) };
        if (!file.endsWith(".jsonl")) throw new HttpError(400, `?file must name a .jsonl file, got "${file}"`);
        const full = resolveInside(dir, file, "pair file");
        if (!fs.statSync(full).isFile()) throw new HttpError(404, `no pair file "${file}"`);
        return readPairs(full, file, intParam(q, "offset", 0), Math.max(1, intParam(q, "limit", 20, 200)));
      }
      default:
        throw new HttpError(404, `no such endpoint: /api/runs/:id/${what}`);
    }
  }

  private idOf(dir: string): string {
    const rel = path.relative(this.root, dir);
    return rel === "" ? ROOT_ID : rel.split(path.sep).join("/");
  }

  /** A run, the training runs nested in it, its pair files, and the models the credit view starts with. */
  private runDetail(id: string, dir: string) {
    const run = describeRun(this.root, dir, null) as RunInfo;
    const children =
      run.kind === "pipeline"
        ? discoverRuns(this.root).filter((r) => r.id !== id && (id === ROOT_ID || r.id.startsWith(`${id}/`)))
        : [];
    const pairFiles = listPairFiles(dir);
    return {
      run,
      children,
      pair_files: pairFiles,
      pair_counts: Object.fromEntries(pairFiles.map((f) => [f, countLines(path.join(dir, ...f.split("/")))])),
      skipped: listSkipped(dir),
      credit: this.creditDefaults(run, children),
    };
  }

  /**
   * The policy is the run (or, for a pipeline, its first DPO-family model); the reference is train_config.json's
   * `ref` when it lies under the root, else an `sft` folder beside the policy; beta is train_config.json's.
   */
  private creditDefaults(run: RunInfo, children: RunInfo[]) {
    const policyId = run.isModel
      ? run.id
      : ((children.find((c) => c.isModel && c.name !== "sft") ?? children.find((c) => c.isModel))?.id ?? null);
    let ref: string | null = null;
    let beta = 0.1;
    if (policyId !== null) {
      const policyDir = path.join(this.root, ...(policyId === ROOT_ID ? [] : policyId.split("/")));
      const tc = readJsonOrNull(path.join(policyDir, "train_config.json")) as { ref?: unknown; beta?: unknown } | null;
      if (typeof tc?.beta === "number" && tc.beta > 0) beta = tc.beta;
      const candidates = [
        typeof tc?.ref === "string" ? path.resolve(policyDir, tc.ref) : null,
        path.join(path.dirname(policyDir), "sft"),
      ];
      const realRoot = fs.realpathSync(this.root);
      for (const c of candidates) {
        if (!c || !isModelDir(c) || path.resolve(c) === path.resolve(policyDir)) continue;
        const real = fs.realpathSync(c);
        if (real === realRoot || real.startsWith(realRoot + path.sep)) {
          ref = this.idOf(path.join(this.root, path.relative(realRoot, real)));
          break;
        }
      }
    }
    return { model: policyId, ref, beta };
  }

  private modelIds(): string[] {
    return discoverRuns(this.root)
      .filter((r) => r.isModel)
      .map((r) => r.id);
  }

  private credit(body: unknown): unknown {
    if (!body || typeof body !== "object" || Array.isArray(body))
      throw new HttpError(400, "the body must be a JSON object");
    const b = body as Record<string, unknown>;
    for (const k of ["model", "ref", "text"]) {
      if (typeof b[k] !== "string") throw new HttpError(400, `"${k}" must be a string`);
    }
    if (b.prompt !== undefined && typeof b.prompt !== "string") throw new HttpError(400, `"prompt" must be a string`);
    const beta = b.beta === undefined ? 0.1 : b.beta;
    if (typeof beta !== "number" || !Number.isFinite(beta) || beta <= 0)
      throw new HttpError(400, `"beta" must be a number > 0`);
    const dirOf = (k: "model" | "ref") => {
      const d = resolveInside(this.root, b[k] as string, k);
      if (!isModelDir(d))
        throw new HttpError(404, `"${k}" ${b[k]} is not a model folder (config.json, tokenizer.json, weights)`);
      return d;
    };
    return credit(
      this.models,
      dirOf("model"),
      dirOf("ref"),
      (b.prompt as string | undefined) ?? "",
      b.text as string,
      beta,
    );
  }
}
