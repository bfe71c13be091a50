// Models by Hugging Face name. A --model value that is not an existing local path and reads as a hub repo id,
// `owner/name` or `owner/name@revision`, is a snapshot folder of the local Hugging Face cache, in the layout that
// huggingface_hub and transformers share:
//
//   CACHE/models--owner--name/refs/main               the commit the ref names (40 hex digits)
//   CACHE/models--owner--name/snapshots/COMMIT/...    that commit's files (symlinks into blobs/, or plain copies)
//   CACHE/models--owner--name/blobs/ETAG              the contents
//
// CACHE is HF_HUB_CACHE, else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub (default ~/.cache/huggingface/hub).
// A revision is a ref (branch or tag; default main) or a full commit hash. A snapshot that holds every file the
// loader needs is used as it is: the hub is never asked whether a ref moved. Otherwise resolveModel downloads what
// is missing (config, tokenizer, weights, adapter; never the rest of the repo) into the cache with @huggingface/hub,
// unless HF_HUB_OFFLINE is set or the hub cannot be reached: then the error says which folder it looked in.
// HF_ENDPOINT (another hub's URL) and HF_TOKEN (gated and private models) are honoured as huggingface_hub does.

import { atomicWrite, writeAllSync } from "../core/atomic.js";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ListFileEntry } from "@huggingface/hub";
import { EndpointError, InputError, StepwiseError } from "../core/errors.js";
import type { ProgressFactory } from "../core/stage.js";
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, readAdapterConfig } from "./lora.js";

export interface HubName {
  repo: string; // owner/name
  revision: string; // a ref name or a commit hash
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;
const REVISION = /^[\w.-]+(\/[\w.-]+)*$/; // refs like refs/pr/1 hold slashes
const COMMIT = /^[0-9a-f]{40}$/;
const INDEX = "model.safetensors.index.json";
/** Small files fetched when the repo has them: what the config, tokenizer and chat template readers look for. */
const META = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "chat_template.jinja",
  "chat_template.json",
  ADAPTER_CONFIG,
  INDEX,
];

/** `owner/name[@revision]` as a hub name; null for an existing path (relative to `base`) or text that is no repo id. */
export function parseHubName(where: string, base = process.cwd()): HubName | null {
  if (/\.gguf$/i.test(where) || fs.existsSync(path.resolve(base, where))) return null;
  const at = where.indexOf("@");
  const repo = at < 0 ? where : where.slice(0, at);
  if (!REPO_ID.test(repo) || repo.includes("..") || repo.includes("--")) return null;
  const revision = at < 0 ? "main" : where.slice(at + 1);
  if (!REVISION.test(revision) || revision.split("/").includes("..")) {
    throw new InputError(
      `bad revision "${revision}"`,
      where,
      "write owner/name@REVISION with a branch, tag or commit hash",
    );
  }
  return { repo, revision };
}

function showName(name: HubName): string {
  return name.revision === "main" ? name.repo : `${name.repo}@${name.revision}`;
}

/** The hub cache folder, as huggingface_hub finds it. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const expand = (p: string) => (p === "~" || p.startsWith("~/") ? path.join(os.homedir(), p.slice(1)) : p);
  if (env.HF_HUB_CACHE) return expand(env.HF_HUB_CACHE);
  if (env.HF_HOME) return path.join(expand(env.HF_HOME), "hub");
  return path.join(
    env.XDG_CACHE_HOME ? expand(env.XDG_CACHE_HOME) : path.join(os.homedir(), ".cache"),
    "huggingface",
    "hub",
  );
}

/** CACHE/models--owner--name. */
export function repoFolder(cache: string, repo: string): string {
  return path.join(cache, `models--${repo.replace("/", "--")}`);
}

/** A name's snapshot in the cache: its folder (null if absent), the files it lacks, and what is wrong in words. */
export interface Snapshot {
  dir: string | null;
  missing: string[];
  problem: string | null; // null: complete
}

export function findSnapshot(name: HubName, cache: string): Snapshot {
  const repoDir = repoFolder(cache, name.repo);
  if (!fs.existsSync(repoDir))
    return { dir: null, missing: [], problem: `not in the Hugging Face cache (no ${repoDir})` };
  let commit = name.revision;
  if (!COMMIT.test(commit)) {
    const ref = path.join(repoDir, "refs", name.revision);
    if (!fs.existsSync(ref)) {
      return { dir: null, missing: [], problem: `the cache has no revision "${name.revision}" of it (no ${ref})` };
    }
    commit = fs.readFileSync(ref, "utf8").trim();
    if (!COMMIT.test(commit)) return { dir: null, missing: [], problem: `${ref} holds no commit hash` };
  }
  const dir = path.join(repoDir, "snapshots", commit);
  if (!fs.existsSync(dir)) return { dir: null, missing: [], problem: `the cache has no snapshot ${dir}` };
  const missing = missingFiles(dir);
  return {
    dir,
    missing,
    problem: missing.length > 0 ? `the cached snapshot ${dir} has no ${missing.join(", ")}` : null,
  };
}

/**
 * The files the loader needs that a model folder lacks: config.json, the weights (model.safetensors, or the shards
 * model.safetensors.index.json names) and tokenizer.json; for an adapter, adapter_model.safetensors (and the model
 * files too when the adapter folder holds its own base, i.e. has config.json). A dangling symlink counts as missing.
 */
export function missingFiles(dir: string): string[] {
  const has = (f: string) => fs.existsSync(path.join(dir, f));
  const adapter = has(ADAPTER_CONFIG) ? [ADAPTER_WEIGHTS] : [];
  const model =
    adapter.length > 0 && !has("config.json")
      ? []
      : ["config.json", ...(has(INDEX) ? shardFiles(dir) : ["model.safetensors"]), "tokenizer.json"];
  return [...model, ...adapter].filter((f) => !has(f));
}

/** The shard files an index names; none when it does not parse (the checkpoint reader then says what is wrong). */
function shardFiles(dir: string): string[] {
  try {
    const index = JSON.parse(fs.readFileSync(path.join(dir, INDEX), "utf8")) as {
      weight_map?: Record<string, unknown>;
    };
    return [...new Set(Object.values(index.weight_map ?? {}))].filter((f): f is string => typeof f === "string");
  } catch {
    return [];
  }
}

function notCached(name: HubName, problem: string, why: string): InputError {
  return new InputError(
    `not a local path, and ${problem}`,
    showName(name),
    `${why}. Download it where the network allows (any stepwise command given --model ${showName(name)} does, ` +
      `or \`hf download ${name.repo}\`), point HF_HUB_CACHE or HF_HOME at a cache that has it, or pass a local model folder`,
  );
}

/** The complete cached snapshot folder of a name, without the network (the loader's path for adapter bases). */
export function cachedSnapshot(name: HubName, env: NodeJS.ProcessEnv = process.env): string {
  const snap = findSnapshot(name, hubCacheDir(env));
  if (snap.problem === null) return snap.dir!;
  throw notCached(name, snap.problem, "nothing is downloaded while a model loads");
}

/**
 * The hub name of a snapshot folder of the cache (CACHE/models--owner--name/snapshots/COMMIT), or null for any other
 * path. The revision is the commit, or "main" when refs/main names that commit.
 */
export function snapshotName(dir: string): HubName | null {
  const snap = path.resolve(dir);
  const commit = path.basename(snap);
  const repoDir = path.dirname(path.dirname(snap));
  const m = /^models--(.+?)--(.+)$/.exec(path.basename(repoDir));
  if (!COMMIT.test(commit) || path.basename(path.dirname(snap)) !== "snapshots" || !m) return null;
  const repo = `${m[1]}/${m[2]}`;
  if (!REPO_ID.test(repo) || repo.includes("--")) return null;
  const main = path.join(repoDir, "refs", "main");
  const onMain = fs.existsSync(main) && fs.readFileSync(main, "utf8").trim() === commit;
  return { repo, revision: onMain ? "main" : commit };
}

/**
 * How an adapter written to `adapterDir` names its base (adapter_config.json's base_model_name_or_path and
 * revision): a snapshot of the hub cache by its Hugging Face name, as PEFT names a base loaded by name (revision:
 * the commit, unless it is main's); another local path relative to the adapter folder, so that the two can move
 * together; anything else (already a name) as it is.
 */
export function baseModelRecord(base: string, adapterDir: string): { name: string; revision: string | null } {
  const hub = snapshotName(base);
  if (hub) return { name: hub.repo, revision: hub.revision === "main" ? null : hub.revision };
  if (!base || !fs.existsSync(path.resolve(base))) return { name: base, revision: null };
  return { name: path.relative(path.resolve(adapterDir), path.resolve(base)) || ".", revision: null };
}

/** Follows a download: `set` gets the bytes fetched so far, `finish` is called once at the end (or on failure). */
export interface DownloadProgress {
  set(bytes: number): void;
  finish(): void;
}

export interface ResolveOptions {
  env?: NodeJS.ProcessEnv; // default process.env
  /** Called when a download starts, with the name and the bytes to fetch; absent: no progress is shown. */
  onDownload?: (name: string, bytes: number) => DownloadProgress;
}

/**
 * Download progress on a stage's progress display, in MB (kB below 10 MB), to a tenth of the unit: the
 * ResolveOptions.onDownload of a caller that shows downloads.
 */
export function downloadProgress(progress: ProgressFactory): (name: string, bytes: number) => DownloadProgress {
  return (name, bytes) => {
    const [scale, unit] = bytes >= 1e7 ? [1e6, "MB"] : [1e3, "kB"];
    const size = (b: number) => Math.round((10 * b) / scale) / 10;
    const bar = progress(`download ${name}`, { total: Math.max(0.1, size(bytes)), unit });
    return { set: (b) => bar.set(size(b)), finish: () => bar.finish() };
  };
}

/**
 * A --model value as a local path: a path stays as it is; a hub name becomes its cached snapshot folder, downloaded
 * first when it is missing or incomplete. An adapter whose base_model_name_or_path is a hub name gets its base too.
 */
export async function resolveModel(where: string, opts: ResolveOptions = {}): Promise<string> {
  const name = parseHubName(where);
  const dir = name ? await snapshotOrDownload(name, opts) : where;
  const base = adapterHubBase(dir);
  if (base) await snapshotOrDownload(base, opts);
  return dir;
}

/** The base of an adapter folder without its own weights, when that base is a hub name rather than a local path. */
function adapterHubBase(dir: string): HubName | null {
  if (!fs.existsSync(path.join(dir, ADAPTER_CONFIG)) || fs.existsSync(path.join(dir, "config.json"))) return null;
  const { baseModel = "", baseRevision } = readAdapterConfig(dir).options;
  if (!baseModel || fs.existsSync(path.resolve(dir, baseModel))) return null;
  return parseHubName(baseRevision ? `${baseModel}@${baseRevision}` : baseModel);
}

const truthy = (v: string | undefined) => ["1", "on", "yes", "true"].includes((v ?? "").toLowerCase());

async function snapshotOrDownload(name: HubName, opts: ResolveOptions): Promise<string> {
  const env = opts.env ?? process.env;
  const cache = hubCacheDir(env);
  const snap = findSnapshot(name, cache);
  if (snap.problem === null) return snap.dir!;
  if (truthy(env.HF_HUB_OFFLINE))
    throw notCached(name, snap.problem, "HF_HUB_OFFLINE is set, so nothing is downloaded");
  let dir: string;
  try {
    dir = await download(name, cache, env, opts.onDownload);
  } catch (e) {
    throw hubError(e, name, snap.problem, env);
  }
  const missing = missingFiles(dir);
  if (missing.length > 0) {
    throw new InputError(
      `the model on the hub has no ${missing.join(", ")}`,
      showName(name),
      "stepwise loads Llama-family models in Hugging Face format (config.json, safetensors weights, tokenizer.json)",
    );
  }
  return dir;
}

/** Fetches the files the loader needs of one commit into the cache (those already there are kept); its snapshot. */
async function download(
  name: HubName,
  cache: string,
  env: NodeJS.ProcessEnv,
  onDownload: ResolveOptions["onDownload"],
): Promise<string> {
  const hub = await import("@huggingface/hub");
  const creds = { hubUrl: env.HF_ENDPOINT || undefined, accessToken: env.HF_TOKEN || undefined };
  const repo = { type: "model" as const, name: name.repo };
  const { sha } = await hub.modelInfo({
    ...creds,
    name: name.repo,
    revision: name.revision,
    additionalFields: ["sha"],
  });
  const repoDir = repoFolder(cache, name.repo);
  if (name.revision !== sha) {
    fs.mkdirSync(path.dirname(path.join(repoDir, "refs", name.revision)), { recursive: true });
    atomicWrite(path.join(repoDir, "refs", name.revision), (fd) => writeAllSync(fd, Buffer.from(sha)));
  }
  const entries = new Map<string, ListFileEntry>();
  for await (const e of hub.listFiles({ ...creds, repo, revision: sha })) if (e.type === "file") entries.set(e.path, e);
  const dir = path.join(repoDir, "snapshots", sha);
  const fetchFile = (file: string) =>
    hub.downloadFileToCacheDir({ ...creds, repo, path: file, revision: sha, cacheDir: cache });
  // downloadFileToCacheDir announces each file with console.debug, which Node writes to stdout, where a command's
  // own output goes (score --json): the progress bar on stderr tells the same.
  const debug = console.debug;
  console.debug = () => {};
  try {
    if (entries.has(INDEX)) await fetchFile(INDEX); // first: it names the shards
    const weights = entries.has(INDEX) ? shardFiles(dir) : ["model.safetensors"];
    const wanted = [...META, ...weights, ADAPTER_WEIGHTS].filter(
      (f) => entries.has(f) && !fs.existsSync(path.join(dir, f)),
    );
    const bytes = wanted.reduce((total, f) => total + entries.get(f)!.size, 0);
    await fetchWithProgress(wanted, entries, repoDir, fetchFile, onDownload?.(showName(name), bytes));
  } finally {
    console.debug = debug;
  }
  return dir;
}

/** Fetches files one by one; the bytes written so far (the cache's blobs/ETAG.incomplete) are polled for `progress`. */
async function fetchWithProgress(
  files: string[],
  entries: Map<string, ListFileEntry>,
  repoDir: string,
  fetchFile: (file: string) => Promise<string>,
  progress: DownloadProgress | undefined,
): Promise<void> {
  let done = 0;
  let current: ListFileEntry | undefined;
  const partial = () => {
    const etag = current && (current.lfs?.oid ?? current.xetHash ?? current.oid);
    return etag
      ? (fs.statSync(path.join(repoDir, "blobs", `${etag}.incomplete`), { throwIfNoEntry: false })?.size ?? 0)
      : 0;
  };
  const poll = setInterval(() => progress?.set(done + partial()), 200);
  poll.unref();
  try {
    for (const f of files) {
      current = entries.get(f);
      await fetchFile(f);
      done += current!.size;
      progress?.set(done);
    }
  } finally {
    clearInterval(poll);
    progress?.finish();
  }
}

/** A failed download as a clear error: the hub unreachable, the name unknown or gated, the cache not writable. */
function hubError(e: unknown, name: HubName, problem: string, env: NodeJS.ProcessEnv): unknown {
  if (e instanceof StepwiseError) return e;
  const err = e as Error & {
    cause?: { code?: string; message?: string };
    statusCode?: number;
    code?: string;
    path?: string;
  };
  if (err instanceof TypeError && err.message === "fetch failed") {
    const why = err.cause?.code ?? err.cause?.message ?? "no connection";
    return notCached(
      name,
      problem,
      `the hub (${env.HF_ENDPOINT || "https://huggingface.co"}) could not be reached (${why})`,
    );
  }
  if (typeof err.statusCode === "number" && [401, 403, 404].includes(err.statusCode)) {
    return new InputError(
      `not a local path, and no such model on the hub, or it is gated or private ` +
        `(HTTP ${err.statusCode}: ${err.message})`,
      showName(name),
      "check the name and revision; for a gated or private model accept its terms on the hub and set HF_TOKEN",
    );
  }
  if (typeof err.statusCode === "number") {
    return new EndpointError(`${showName(name)}: the hub answered HTTP ${err.statusCode}: ${err.message}`);
  }
  if (typeof err.code === "string" && ["EACCES", "EROFS", "ENOSPC", "EPERM"].includes(err.code)) {
    return new InputError(
      `cannot write the Hugging Face cache (${err.code})`,
      err.path,
      "point HF_HUB_CACHE at a writable folder with room",
    );
  }
  return e;
}
