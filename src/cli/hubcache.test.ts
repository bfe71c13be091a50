// Models by Hugging Face name, end to end through the binary: `stepwise score --model owner/name` (and --ref) reads
// the hub cache and gives exactly the result of the folders; a missing model downloads from a server that answers
// as the hub does (HF_ENDPOINT), with a progress bar on stderr and stdout left to the command; offline, a missing
// model exits 2 naming the folder searched. The lookup's cases are src/model/hubcache.test.ts's job.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { repoFolder } from "../model/hubcache.js";
import { cacheModel, fakeCommit, fakeHub } from "../model/hubcache.testkit.js";
import { BIN, microModelDir } from "./testkit.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-hubname-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const modelA = microModelDir(tmp, "model-a", 1);
const modelB = microModelDir(tmp, "model-b", 2);
const TEXT = "Tom has 3 apples.\n3+4=7";

/** Runs the binary without blocking this process (the fake hub answers from it). */
function cli(
  env: Record<string, string>,
  ...args: string[]
): Promise<{ code: number | null; out: string; err: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("HF_")));
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...clean, STEPWISE_BACKEND: "reference", ...env } });
  let out = "";
  let err = "";
  child.stdout.on("data", (c) => (out += c));
  child.stderr.on("data", (c) => (err += c));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, out, err })));
}

test("stepwise score --model owner/name --ref owner/name@v2: from the hub cache, the same result as the folders", async () => {
  const cache = fs.mkdtempSync(path.join(tmp, "cache-"));
  cacheModel(cache, "owner/tiny", modelA, { commit: fakeCommit("a") });
  cacheModel(cache, "owner/tiny", modelB, { commit: fakeCommit("b"), ref: "v2" });
  const env = { HF_HUB_CACHE: cache, HF_HUB_OFFLINE: "1" };
  const byName = await cli(env, "score", "--model", "owner/tiny", "--ref", "owner/tiny@v2", "--text", TEXT, "--json");
  assert.equal(byName.code, 0, byName.err);
  const byFolder = await cli(env, "score", "--model", modelA, "--ref", modelB, "--text", TEXT, "--json");
  assert.equal(byFolder.code, 0, byFolder.err);
  assert.deepEqual(JSON.parse(byName.out), JSON.parse(byFolder.out));
  assert.equal(byName.err, "");
});

test("a missing model downloads into the cache with a progress bar on stderr; stdout stays the command's", async () => {
  const cache = fs.mkdtempSync(path.join(tmp, "cache-"));
  const commit = fakeCommit("hub");
  const hub = await fakeHub("owner/remote", commit, modelA, { "README.md": "# tiny" });
  let got: Awaited<ReturnType<typeof cli>>;
  try {
    got = await cli(
      { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url },
      "score",
      "--model",
      "owner/remote",
      "--text",
      TEXT,
      "--json",
    );
  } finally {
    await hub.close();
  }
  assert.equal(got.code, 0, got.err);
  assert.match(got.err, /download owner\/remote \[#{24}\] 100% ([\d.]+)\/\1 kB/);
  const want = await cli({}, "score", "--model", modelA, "--text", TEXT, "--json");
  assert.deepEqual(JSON.parse(got.out), JSON.parse(want.out));
  const snap = path.join(repoFolder(cache, "owner/remote"), "snapshots", commit);
  assert.deepEqual(fs.readdirSync(snap).sort(), fs.readdirSync(modelA).sort());
  // now cached: offline (the server is gone) it loads as it is
  const offline = { HF_HUB_CACHE: cache, HF_HUB_OFFLINE: "1" };
  const again = await cli(offline, "score", "--model", "owner/remote", "--text", TEXT, "--json");
  assert.equal(again.code, 0, again.err);
  assert.deepEqual(JSON.parse(again.out), JSON.parse(want.out));
});

test("offline, a missing model exits 2 naming the cache folder it looked in", async () => {
  const home = fs.mkdtempSync(path.join(tmp, "hf-home-"));
  const smol = "HuggingFaceTB/SmolLM2-135M-Instruct";
  const r = await cli({ HF_HOME: home, HF_HUB_OFFLINE: "1" }, "score", "--model", smol, "--text", TEXT);
  assert.equal(r.code, 2, r.err);
  const folder = path.join(home, "hub", "models--HuggingFaceTB--SmolLM2-135M-Instruct");
  assert.ok(r.err.includes(`not in the Hugging Face cache (no ${folder})`), r.err);
  assert.match(r.err, /HF_HUB_OFFLINE is set/);
  assert.equal(r.out, "");
});
