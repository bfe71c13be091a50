// `stepwise sample --endpoint` against a faulty server on 127.0.0.1 (issue #15, item 4): 429 / 500 / garbage /
// dropped connections are retried (--retries), a request that keeps failing does not cost the finished samples,
// the exit names exactly the missing ones and a rerun completes them; no MaxListenersExceededWarning.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { BIN } from "./testkit.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-sample-endpoint-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

type Answer = "ok" | "429" | "500" | "garbage" | "drop";

/**
 * /v1/models and /v1/completions; attempt j (from 0) at one sample (prompt P, seed) gets answer(j, P), so the
 * faults each sample meets do not depend on timing. The text is "P|seed".
 */
async function server(answer: (j: number, prompt: string) => Answer) {
  const s = { url: "", requests: 0, byPrompt: new Map<string, number>(), close: async () => {} };
  const attempts = new Map<string, number>();
  const srv = http.createServer((req, res) => {
    if (req.url === "/v1/models") {
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify({ object: "list", data: [{ id: "m" }] }));
    }
    let raw = "";
    req.on("data", (d) => (raw += d));
    req.on("end", () => {
      const body = JSON.parse(raw) as { prompt: string; seed: number };
      s.byPrompt.set(body.prompt, (s.byPrompt.get(body.prompt) ?? 0) + 1);
      const json = (status: number, v: unknown, h: http.OutgoingHttpHeaders = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...h });
        res.end(JSON.stringify(v));
      };
      s.requests++;
      const sample = `${body.prompt}\u0000${body.seed}`;
      const j = attempts.get(sample) ?? 0;
      attempts.set(sample, j + 1);
      switch (answer(j, body.prompt)) {
        case "ok":
          return json(200, {
            choices: [{ index: 0, text: `${body.prompt.trim()}|${body.seed}`, finish_reason: "length" }],
          });
        case "429":
          return json(429, { error: { message: "slow down" } }, { "retry-after": "0" });
        case "500":
          return json(500, { error: { message: "boom" } });
        case "garbage":
          return res.writeHead(200, { "content-type": "application/json" }).end('{"choices": [{"te');
        case "drop":
          return req.socket.destroy();
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  s.url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  s.close = () =>
    new Promise<void>((r) => {
      srv.close(() => r());
      srv.closeAllConnections();
    });
  return s;
}

/** The CLI as a child process (the server lives in this one, so it must not block); bounded by a timeout. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return new Promise((resolve) =>
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

const problems = Array.from({ length: 12 }, (_, i) => ({ id: `p${i}`, question: `q${i}`, answer: "#### 1" }));
fs.writeFileSync(path.join(dir, "problems.jsonl"), problems.map((p) => JSON.stringify(p)).join("\n") + "\n");

const keys = (file: string) =>
  fs
    .readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => {
      const r = JSON.parse(l) as { id: string; sample: number };
      return `${r.id}/${r.sample}`;
    });
const all = problems.flatMap((p) => [0, 1, 2].map((s) => `${p.id}/${s}`));

test("4 failures in every 5 requests (429, 500, garbage, drop): all 36 samples, each once, no listener warning", async () => {
  const cycle: Answer[] = ["429", "500", "garbage", "drop", "ok"];
  const s = await server((j) => cycle[j % cycle.length]);
  try {
    const r = await cli([
      "sample",
      "--endpoint",
      s.url,
      "--problems",
      "problems.jsonl",
      "--n",
      "3",
      "--out",
      "flaky.jsonl",
      "--batch-size",
      "36",
      "--retries",
      "4",
      "--timeout",
      "10",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /MaxListenersExceededWarning/);
    assert.deepEqual(keys(path.join(dir, "flaky.jsonl")).sort(), [...all].sort());
    assert.deepEqual(JSON.parse(r.stdout).missing, []);
    assert.equal(s.requests, 36 * 5, "every sample met the four faults, then an answer");
  } finally {
    await s.close();
  }
});

test("a problem whose requests keep failing: the others are written, the exit names its samples, a rerun completes", async () => {
  let broken = true;
  const s = await server((_k, prompt) => (broken && prompt.startsWith("q3") ? "500" : "ok"));
  try {
    const args = [
      "sample",
      "--endpoint",
      s.url,
      "--problems",
      "problems.jsonl",
      "--n",
      "3",
      "--out",
      "part.jsonl",
      "--batch-size",
      "8",
      "--retries",
      "1",
    ];
    const first = await cli(args);
    assert.equal(first.code, 3, first.stderr);
    assert.match(first.stderr, /3 of 36 samples are missing: 3 failed in 3 passes \(last error: .*HTTP 500/);
    assert.match(first.stderr, /\n {2}"p3": samples 0, 1, 2\n {2}rerun the same command/);
    assert.deepEqual(keys(path.join(dir, "part.jsonl")).sort(), all.filter((k) => !k.startsWith("p3/")).sort());
    assert.equal(s.byPrompt.get("q3\n"), 3 * 2 * 3, "3 samples x (1 + --retries 1) attempts x 3 passes");
    broken = false;
    const second = await cli([...args, "--json"]);
    assert.equal(second.code, 0, second.stderr);
    const summary = JSON.parse(second.stdout);
    assert.equal(summary.present, 33);
    assert.equal(summary.written, 3);
    assert.deepEqual(keys(path.join(dir, "part.jsonl")).sort(), [...all].sort());
  } finally {
    await s.close();
  }
});

test("--retries and --timeout are checked and need --endpoint", async () => {
  let r = await cli([
    "sample",
    "--endpoint",
    "http://127.0.0.1:9",
    "--problems",
    "problems.jsonl",
    "--out",
    "x.jsonl",
    "--retries=-1",
  ]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--retries must be an integer >= 0, got "-1"/);
  r = await cli([
    "sample",
    "--endpoint",
    "http://127.0.0.1:9",
    "--problems",
    "problems.jsonl",
    "--out",
    "x.jsonl",
    "--timeout",
    "0",
  ]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--timeout must be a number of seconds in \(0, 86400\], got "0"/);
  r = await cli(["sample", "--model", "nowhere", "--problems", "problems.jsonl", "--out", "x.jsonl", "--retries", "2"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--retries needs --endpoint/);
});
