// Models by Hugging Face name (hubcache.ts): names and cache folders as huggingface_hub reads them, snapshots found
// through refs or commit hashes (symlinked or copied), clear errors that name the folder searched and the missing
// file, adapters whose base is a name, and downloads from a local server that answers as the hub does (only the
// files the loader needs, with progress), none of which touches the network.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { referenceBackend } from "../backend/index.js";
import { noGrad } from "../engine/tensor.js";
import { MICRO_CONFIG, microModelDir } from "../cli/testkit.js";
import { loadModel, saveModel } from "./hub.js";
import {
  findSnapshot,
  hubCacheDir,
  parseHubName,
  repoFolder,
  resolveModel,
  type DownloadProgress,
} from "./hubcache.js";
import { cacheModel, fakeCommit, fakeHub } from "./hubcache.testkit.js";
import { Llama } from "./llama.js";
import { attachLora, saveAdapter } from "./lora.js";
import { scoreTokens } from "./score.js";
import { builtinTokenizer } from "./tokenizer.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-hubcache-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const be = referenceBackend();
const REPO = "owner/tiny-model";
const A = fakeCommit("a");
const B = fakeCommit("b");
const modelA = microModelDir(tmp, "model-a", 1);
const modelB = microModelDir(tmp, "model-b", 2);
const sharded = shardedModelDir(path.join(tmp, "sharded"));
const OFFLINE = { HF_HUB_OFFLINE: "1" };

/** A random micro model saved in shards of at most 4000 bytes (model.safetensors.index.json + shard files). */
function shardedModelDir(dir: string): string {
  const m = new Llama(MICRO_CONFIG, { seed: 3, backend: be });
  saveModel(m, dir, { maxShardBytes: 4000 });
  builtinTokenizer().save(dir);
  m.dispose();
  return dir;
}

/** A fresh empty cache folder. */
function newCache(): string {
  return fs.mkdtempSync(path.join(tmp, "cache-"));
}

/** Every parameter of the model in `dir`, for comparing two loads. */
function weights(dir: string): Record<string, number[]> {
  const m = loadModel(dir, { backend: be });
  const out = Object.fromEntries([...m.params].map(([n, p]) => [n, [...p.toArray()]]));
  m.dispose();
  return out;
}

async function rejects(p: Promise<unknown>, ...res: RegExp[]): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    for (const re of res) assert.match(e.message, re);
    return true;
  });
}

test("names: owner/name[@revision] unless it is an existing path or a .gguf file; bad revisions are errors", () => {
  const smol = "HuggingFaceTB/SmolLM2-135M-Instruct";
  assert.deepEqual(parseHubName(smol), { repo: smol, revision: "main" });
  assert.deepEqual(parseHubName("Qwen/Qwen2.5-0.5B@v1.0"), { repo: "Qwen/Qwen2.5-0.5B", revision: "v1.0" });
  assert.deepEqual(parseHubName(`o/n@${A}`), { repo: "o/n", revision: A });
  assert.deepEqual(parseHubName("o/n@refs/pr/1"), { repo: "o/n", revision: "refs/pr/1" });
  for (const p of ["tiny", "a/b/c", "./o/n", "/o/n", "o/n.gguf", "o/--n", "o/..", ".o/n", "o/"]) {
    assert.equal(parseHubName(p), null, p);
  }
  fs.mkdirSync(path.join(tmp, "local", "model"), { recursive: true });
  assert.equal(parseHubName("local/model", tmp), null, "existing relative to the base folder");
  assert.throws(() => parseHubName("o/n@"), /bad revision ""/);
  assert.throws(() => parseHubName("o/n@refs/../x"), /bad revision/);
});

test("the cache folder: HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME or ~/.cache, then huggingface/hub", () => {
  assert.equal(hubCacheDir({ HF_HUB_CACHE: "/c", HF_HOME: "/h", XDG_CACHE_HOME: "/x" }), "/c");
  assert.equal(hubCacheDir({ HF_HOME: "/h", XDG_CACHE_HOME: "/x" }), path.join("/h", "hub"));
  assert.equal(hubCacheDir({ XDG_CACHE_HOME: "/x" }), path.join("/x", "huggingface", "hub"));
  assert.equal(hubCacheDir({}), path.join(os.homedir(), ".cache", "huggingface", "hub"));
  assert.equal(hubCacheDir({ HF_HOME: "~/hf" }), path.join(os.homedir(), "hf", "hub"));
  assert.equal(repoFolder("/c", "owner/name"), path.join("/c", "models--owner--name"));
});

test("a cached name resolves to its snapshot (symlinks into blobs/) and loads the same weights as the folder", async () => {
  const cache = newCache();
  const snap = cacheModel(cache, REPO, modelA, { commit: A });
  assert.ok(fs.lstatSync(path.join(snap, "model.safetensors")).isSymbolicLink());
  const dir = await resolveModel(REPO, { env: { HF_HUB_CACHE: cache, ...OFFLINE } });
  assert.equal(dir, path.join(cache, "models--owner--tiny-model", "snapshots", A));
  assert.deepEqual(weights(dir), weights(modelA));
  // HF_HOME without HF_HUB_CACHE: HF_HOME/hub
  const home = fs.mkdtempSync(path.join(tmp, "hf-home-"));
  cacheModel(path.join(home, "hub"), REPO, modelB, { commit: B });
  const fromHome = await resolveModel(REPO, { env: { HF_HOME: home, ...OFFLINE } });
  assert.equal(fromHome, path.join(home, "hub", "models--owner--tiny-model", "snapshots", B));
  assert.deepEqual(weights(fromHome), weights(modelB));
  // a path is never looked up
  assert.equal(await resolveModel(modelA, { env: { HF_HUB_CACHE: cache, ...OFFLINE } }), modelA);
});

test("revisions: main, another ref, a commit hash (plain copies too); a missing revision names the ref file", async () => {
  const cache = newCache();
  cacheModel(cache, REPO, modelA, { commit: A });
  cacheModel(cache, REPO, modelB, { commit: B, ref: "v2", copies: true });
  const env = { HF_HUB_CACHE: cache, ...OFFLINE };
  const snapshots = path.join(repoFolder(cache, REPO), "snapshots");
  assert.equal(await resolveModel(REPO, { env }), path.join(snapshots, A));
  assert.equal(await resolveModel(`${REPO}@v2`, { env }), path.join(snapshots, B));
  assert.equal(await resolveModel(`${REPO}@${B}`, { env }), path.join(snapshots, B));
  assert.deepEqual(weights(path.join(snapshots, B)), weights(modelB));
  await rejects(
    resolveModel(`${REPO}@v3`, { env }),
    /owner\/tiny-model@v3: .*no revision "v3"/,
    new RegExp(`no ${path.join(repoFolder(cache, REPO), "refs", "v3")}`),
    /HF_HUB_OFFLINE is set/,
  );
  const C = fakeCommit("c");
  await rejects(resolveModel(`${REPO}@${C}`, { env }), new RegExp(`no snapshot ${path.join(snapshots, C)}`));
});

test("offline, a missing model says which folder it looked in and what to do", async () => {
  const cache = newCache();
  await rejects(
    resolveModel("HuggingFaceTB/SmolLM2-135M-Instruct", { env: { HF_HUB_CACHE: cache, ...OFFLINE } }),
    /^HuggingFaceTB\/SmolLM2-135M-Instruct: not a local path, and not in the Hugging Face cache/,
    new RegExp(`no ${path.join(cache, "models--HuggingFaceTB--SmolLM2-135M-Instruct")}\\)`),
    /hint: HF_HUB_OFFLINE is set, so nothing is downloaded/,
    /hf download HuggingFaceTB\/SmolLM2-135M-Instruct/,
    /HF_HUB_CACHE or HF_HOME/,
  );
});

test("a snapshot without a file the loader needs names it: tokenizer.json, a shard of the index, adapter weights", async () => {
  const cache = newCache();
  const env = { HF_HUB_CACHE: cache, ...OFFLINE };
  const snap = cacheModel(cache, REPO, modelA, { commit: A });
  fs.rmSync(path.join(snap, "tokenizer.json"));
  await rejects(resolveModel(REPO, { env }), new RegExp(`the cached snapshot ${snap} has no tokenizer.json`));
  // a dangling symlink (its blob deleted) is missing too
  fs.rmSync(path.join(fs.realpathSync(path.join(snap, "config.json"))));
  assert.deepEqual(findSnapshot({ repo: REPO, revision: "main" }, cache).missing, ["config.json", "tokenizer.json"]);

  const shards = fs
    .readdirSync(sharded)
    .filter((f) => /^model-.*\.safetensors$/.test(f))
    .sort();
  assert.ok(shards.length >= 2, shards.join());
  const snap2 = cacheModel(cache, "owner/sharded", sharded, { commit: B });
  assert.deepEqual(weights(await resolveModel("owner/sharded", { env })), weights(sharded));
  fs.rmSync(path.join(snap2, shards[1]));
  await rejects(
    resolveModel("owner/sharded", { env }),
    new RegExp(`${snap2} has no ${shards[1].replaceAll(".", "\\.")}`),
  );
});

test("an adapter by name whose base_model_name_or_path is a name: both come from the cache", async () => {
  const cache = newCache();
  cacheModel(cache, "owner/base", modelA, { commit: A });
  const m = loadModel(modelA, { backend: be });
  attachLora(m, { r: 2, seed: 5 });
  noGrad(() => {
    for (const l of m.lora!.linears) l.B.backend.write(l.B.buf, new Float32Array(l.B.size).fill(0.05));
  });
  const adapter = path.join(tmp, "adapter");
  saveAdapter(m, adapter, { baseModel: "owner/base" });
  cacheModel(cache, "owner/adapter", adapter, { commit: B });
  const saved = { ...process.env };
  process.env.HF_HUB_CACHE = cache; // the loader finds the base through the process's environment
  process.env.HF_HUB_OFFLINE = "1";
  try {
    const dir = await resolveModel("owner/adapter");
    const back = loadModel(dir, { backend: be });
    assert.ok(back.lora && !back.lora.merged);
    const ids = [[1, 5, 9, 13, 2]];
    assert.deepEqual(scoreTokens(back, ids), scoreTokens(m, ids));
    back.dispose();
    fs.rmSync(repoFolder(cache, "owner/base"), { recursive: true });
    await rejects(resolveModel("owner/adapter"), /^owner\/base: not a local path, and not in the Hugging Face cache/);
    assert.throws(
      () => loadModel(dir, { backend: be }),
      /owner\/base: .*hint: nothing is downloaded while a model loads/s,
    );
  } finally {
    process.env.HF_HUB_CACHE = saved.HF_HUB_CACHE;
    process.env.HF_HUB_OFFLINE = saved.HF_HUB_OFFLINE;
    if (saved.HF_HUB_CACHE === undefined) delete process.env.HF_HUB_CACHE;
    if (saved.HF_HUB_OFFLINE === undefined) delete process.env.HF_HUB_OFFLINE;
    m.dispose();
  }
});

test("an unreachable hub: the error names the cache folder and the connection failure", async () => {
  const cache = newCache();
  const hub = await fakeHub(REPO, A, modelA);
  await hub.close(); // a port nothing listens on
  await rejects(
    resolveModel(REPO, { env: { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url } }),
    new RegExp(`not in the Hugging Face cache \\(no ${repoFolder(cache, REPO)}\\)`),
    new RegExp(`the hub \\(${hub.url}\\) could not be reached \\(ECONNREFUSED\\)`),
  );
});

test("download: only the files the loader needs (sharded weights too) into the hub layout, with progress", async () => {
  const cache = newCache();
  const extra = { "README.md": "# tiny", "pytorch_model.bin": "pickles", "onnx/model.onnx": "graph" };
  const hub = await fakeHub(REPO, A, sharded, extra);
  const calls: { name: string; bytes: number; set: number[]; finished: number }[] = [];
  const onDownload = (name: string, bytes: number): DownloadProgress => {
    const c = { name, bytes, set: [] as number[], finished: 0 };
    calls.push(c);
    return { set: (b) => c.set.push(b), finish: () => c.finished++ };
  };
  const debug = console.debug;
  try {
    const dir = await resolveModel(REPO, { env: { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url }, onDownload });
    const repoDir = repoFolder(cache, REPO);
    assert.equal(dir, path.join(repoDir, "snapshots", A));
    assert.equal(fs.readFileSync(path.join(repoDir, "refs", "main"), "utf8"), A);
    assert.deepEqual(fs.readdirSync(dir).sort(), fs.readdirSync(sharded).sort(), "no README, .bin or onnx/");
    assert.ok(fs.lstatSync(path.join(dir, "config.json")).isSymbolicLink(), "snapshot entries point into blobs/");
    assert.deepEqual(weights(dir), weights(sharded));
    assert.equal(console.debug, debug, "console.debug is restored");
    const total = fs
      .readdirSync(sharded)
      .filter((f) => f !== "model.safetensors.index.json")
      .reduce((s, f) => s + fs.statSync(path.join(sharded, f)).size, 0);
    assert.equal(calls.length, 1);
    assert.deepEqual({ ...calls[0], set: undefined }, { name: REPO, bytes: total, set: undefined, finished: 1 });
    assert.equal(calls[0].set.at(-1), total);
    assert.ok(
      calls[0].set.every((b, i) => i === 0 || b >= calls[0].set[i - 1]),
      "progress only grows",
    );
    // cached now: no request reaches the hub, even without HF_HUB_OFFLINE
    const seen = hub.requests.length;
    assert.equal(await resolveModel(REPO, { env: { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url }, onDownload }), dir);
    assert.equal(hub.requests.length, seen);
    assert.equal(calls.length, 1);
    // a snapshot missing one file fetches only that file
    const link = path.join(dir, "tokenizer.json");
    fs.rmSync(fs.realpathSync(link));
    fs.rmSync(link);
    await resolveModel(REPO, { env: { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url } });
    const fetched = hub.requests.slice(seen).filter((r) => r.includes("/resolve/"));
    assert.deepEqual([...new Set(fetched)], [`GET /${REPO}/resolve/${A}/tokenizer.json`]);
    // a name the hub does not know
    await rejects(
      resolveModel("owner/nothing", { env: { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url } }),
      /^owner\/nothing: not a local path, and no such model on the hub, or it is gated or private \(HTTP 404/,
      /HF_TOKEN/,
    );
  } finally {
    await hub.close();
  }
});
