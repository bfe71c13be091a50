// Issue #15's adversarial cases, re-run against today's CLI (`node bin/stepwise.js ...`) in a temp folder, one at a
// time, each tiny (a few steps, --threads 1). Prints a Markdown table on stdout: the issue's item, the case, a short
// command, what the issue saw before, what happens now (exit code and the first line of the message, measured) and
// whether the fix held. Progress goes to stderr.
//
//   node scripts/adversarial.mjs > TABLE.md           every case (about 75 s on 2 busy cores)
//   node scripts/adversarial.mjs --only 2,4 --keep    items 2 and 4; keep the temp folder
//
// Fixtures: micro model folders are written with the compiled test kit (dist/cli/testkit.js, random weights on the
// built-in tokenizer); the faulty endpoint is an HTTP server in this process; the sandbox attacks are Python
// programs in a crafted `verify --task code` input. Peak memory is the child's VmHWM from /proc.

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const BIN = path.join(ROOT, "bin/stepwise.js");
const argv = process.argv.slice(2);
const KEEP = argv.includes("--keep");
const onlyAt = argv.indexOf("--only");
const ONLY = onlyAt >= 0 ? new Set(argv[onlyAt + 1].split(",").map(Number)) : null;

const work = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-adversarial-"));
const t0 = Date.now();
const log = (m) => process.stderr.write(`[adversarial ${((Date.now() - t0) / 1000).toFixed(0)}s] ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const at = (...p) => path.join(work, ...p);
const live = new Set(); // children still running, killed if this script ends first
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

// ---------------------------------------------------------------------------------------------------------------
// Running the CLI

/** The peak resident set of a live process in KiB (VmHWM), or 0 when it is gone. */
function peakKb(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Starts `stepwise ARGS` in the work folder. The handle's `done` resolves to {code, signal, stdout, stderr, ms,
 * peakKb}; a run past `timeoutMs` is killed (SIGKILL) and marked timedOut.
 */
function start(args, { cwd = work, env = {}, timeoutMs = 120_000, nodeArgs = [] } = {}) {
  const t = Date.now();
  const child = spawn(process.execPath, [...nodeArgs, BIN, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  const h = { child, stdout: "", stderr: "", peak: 0, timedOut: false };
  child.stdout.on("data", (d) => (h.stdout += d));
  child.stderr.on("data", (d) => (h.stderr += d));
  const poll = setInterval(() => (h.peak = Math.max(h.peak, peakKb(child.pid))), 50);
  const timer = setTimeout(() => {
    h.timedOut = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  h.done = new Promise((resolve) =>
    child.on("close", (code, signal) => {
      live.delete(child);
      clearInterval(poll);
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: h.stdout,
        stderr: h.stderr,
        ms: Date.now() - t,
        peakKb: h.peak,
        timedOut: h.timedOut,
      });
    }),
  );
  h.sample = () => (h.peak = Math.max(h.peak, peakKb(child.pid)));
  return h;
}

const cli = (args, opts) => start(args, opts).done;

/** Waits until `cond()` holds, the child exits or `ms` pass; returns whether it holds. */
async function until(cond, h, ms = 60_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    if (h && h.child.exitCode !== null) return cond();
    await sleep(40);
  }
  return cond();
}

const PROGRESS = /\[[#. ]+\]|^\s*$/;
/** The message lines of stderr: progress bars and blank lines dropped. */
const messages = (stderr) => stderr.split(/[\n\r]/).filter((l) => !PROGRESS.test(l));
/** The first message line matching `re`; without a match the last one that is not a hint; without `re` the first. */
function line(stderr, re) {
  const ls = messages(stderr);
  if (!re) return ls[0] ?? "(no message)";
  return ls.find((l) => re.test(l)) ?? ls.filter((l) => !/^\s*hint:/.test(l)).at(-1) ?? "(no message)";
}
/** "exit N: <line>" (or the signal) for the table's "now" column. */
function now(r, re, extra = "") {
  const how = r.timedOut ? "timed out (killed)" : r.code === null ? `killed by ${r.signal}` : `exit ${r.code}`;
  return `${how}: ${line(r.stderr, re)}${extra ? `; ${extra}` : ""}`;
}

const metricSteps = (dir) => {
  try {
    return fs
      .readFileSync(path.join(dir, "metrics.jsonl"), "utf8")
      .split("\n")
      .filter((l) => l.endsWith("}"))
      .map((l) => JSON.parse(l).step);
  } catch {
    return [];
  }
};
const jsonlLines = (file) =>
  fs.existsSync(file)
    ? fs
        .readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l.trim())
    : [];
const isRange = (xs) => xs.every((x, i) => x === i + 1);
const mb = (kb) => `${(kb / 1024).toFixed(0)} MB`;

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

const PROBLEMS = [
  {
    id: "a",
    question: "Ann has 3 apples and buys 4 more. How many apples does she have?",
    answer: "3 + 4 = <<3+4=7>>7\n#### 7",
  },
  {
    id: "b",
    question: "Bo has 9 pens and gives away 2. How many pens are left?",
    answer: "9 - 2 = <<9-2=7>>7\n#### 7",
  },
];
const writeJsonl = (file, records) => fs.writeFileSync(file, records.map((r) => JSON.stringify(r) + "\n").join(""));

/** A random micro model folder (the tests' one: 1 layer, vocabulary 100, the built-in tokenizer). */
async function microModel(name, seed = 1, overrides = {}) {
  const { microModelDir } = await import(path.join(ROOT, "dist/cli/testkit.js"));
  return microModelDir(work, name, seed, overrides);
}

/** Safetensors tensors: {name: {dtype, shape, data_offsets}} and the byte offset of the data. */
function stHeader(buf) {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8"));
  delete header.__metadata__;
  return { header, base: 8 + n };
}

/** Counts the non-finite values of every float tensor of a safetensors file: {count, first: tensor name}. */
function nonFinite(file) {
  const buf = fs.readFileSync(file);
  const { header, base } = stHeader(buf);
  let count = 0;
  let first = null;
  for (const [name, t] of Object.entries(header)) {
    const [a, b] = t.data_offsets;
    const bytes = buf.subarray(base + a, base + b);
    let bad = 0;
    if (t.dtype === "F32")
      for (let i = 0; i < bytes.length; i += 4) bad += Number.isFinite(bytes.readFloatLE(i)) ? 0 : 1;
    else if (t.dtype === "F64")
      for (let i = 0; i < bytes.length; i += 8) bad += Number.isFinite(bytes.readDoubleLE(i)) ? 0 : 1;
    else if (t.dtype === "BF16")
      for (let i = 0; i < bytes.length; i += 2) bad += (bytes.readUInt16LE(i) & 0x7f80) === 0x7f80 ? 1 : 0;
    else if (t.dtype === "F16")
      for (let i = 0; i < bytes.length; i += 2) bad += (bytes.readUInt16LE(i) & 0x7c00) === 0x7c00 ? 1 : 0;
    if (bad > 0 && first === null) first = name;
    count += bad;
  }
  return { count, first };
}

/** Every *.safetensors file under dir. */
function safetensorsUnder(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith(".safetensors"))
    .map((f) => path.join(dir, f));
}

/** Writes NaN and Inf into two values of one tensor of a model folder's model.safetensors. */
function poison(dir, tensor) {
  const file = path.join(dir, "model.safetensors");
  const buf = fs.readFileSync(file);
  const { header, base } = stHeader(buf);
  const t = header[tensor];
  const size = { F32: 4, F16: 2, BF16: 2, F64: 8 }[t.dtype];
  const put = (i, v) => {
    const o = base + t.data_offsets[0] + i * size;
    if (t.dtype === "F32") buf.writeFloatLE(v, o);
    else if (t.dtype === "F64") buf.writeDoubleLE(v, o);
    else
      buf.writeUInt16LE(
        Number.isNaN(v) ? (t.dtype === "F16" ? 0x7e00 : 0x7fc0) : t.dtype === "F16" ? 0x7c00 : 0x7f80,
        o,
      );
  };
  put(3, Number.POSITIVE_INFINITY);
  put(5, Number.NaN);
  fs.writeFileSync(file, buf);
}

// ---------------------------------------------------------------------------------------------------------------
// The table

const rows = [];
function row(item, kase, command, before, nowText, held, note = "") {
  rows.push({ item, kase, command, before, now: nowText + (note ? ` (${note})` : ""), held });
  log(`${held === "?" ? "UNCLEAR " : held ? "held    " : "NOT HELD"} ${item} ${kase}: ${nowText}`);
}
const cell = (s, max = 240) => {
  const t = String(s).replaceAll(`${work}/`, "").replace(/\s+/g, " ").replace(/\|/g, "\\|").trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};

// ---------------------------------------------------------------------------------------------------------------
// Item 1: Ctrl-C and SIGTERM

const SFT_LONG = ["--init", "tiny", "--tokenizer", "chars", "--batch-size", "1", "--threads", "1"];

/** Starts a command, sends `signal` once `steps()` has more than `after` entries, and waits for the exit. */
async function interrupt(args, steps, after, signal, opts = {}) {
  const h = start(args, opts);
  const ready = await until(() => steps().length > after, h, 90_000);
  const atSignal = steps().length;
  const sent = Date.now();
  h.child.kill(signal);
  const r = await h.done;
  return { ...r, ready, atSignal, stopMs: Date.now() - sent };
}

async function item1() {
  writeJsonl(at("d.jsonl"), PROBLEMS);
  const total = 1500;
  const args = [
    "sft",
    "--data",
    "d.jsonl",
    ...SFT_LONG,
    "--out",
    "int",
    "--epochs",
    "100000",
    "--max-steps",
    String(total),
    "--save-every",
    "1000",
  ];
  const steps = () => metricSteps(at("int"));
  const first = await interrupt(args, steps, 25, "SIGINT");
  const m = /interrupted by SIGINT: sft stopped after step (\d+) of (\d+); checkpoint (\S+) holds it/.exec(
    first.stderr,
  );
  const stoppedAt = m ? Number(m[1]) : Number.NaN;
  const hint = /to resume: stepwise sft .*--resume/.test(first.stderr);
  const ckpt = m && fs.existsSync(path.join(work, m[3], "weights.safetensors"));
  row(
    1,
    "SIGINT during sft",
    "sft --epochs 100000 (Ctrl-C after 25 steps)",
    "ignored: trained all 60 steps, exit 0",
    now(first, /interrupted by SIGINT/),
    first.code === 130 && m !== null && hint && ckpt && stoppedAt - first.atSignal <= 2,
    `stopped at step ${stoppedAt}, ${first.atSignal} logged at the signal, in ${first.stopMs} ms; checkpoint ${ckpt ? "written" : "MISSING"}; resume line ${hint ? "printed" : "MISSING"}`,
  );
  // the rate before the interruption: the last progress line of the first run ("N/1500 steps R/s")
  const rates = [...first.stderr.matchAll(/(\d+)\/\d+ +steps ([\d.]+)\/s/g)];
  const rate1 = rates.length ? Number(rates.at(-1)[2]) : Number.NaN;

  // resume, read the first progress line's ETA, then SIGTERM
  const h = start([...args, "--resume"]);
  const etaRe = /(\d+)\/(\d+) +steps ([\d.]+)\/s ETA ([\d:]+)/;
  await until(() => etaRe.test(h.stderr) && steps().length > stoppedAt + 3, h, 90_000);
  const atSignal = steps().length;
  h.child.kill("SIGTERM");
  const second = await h.done;
  const later = Number(/stopped after step (\d+) of/.exec(second.stderr)?.[1]);
  const ms = steps();
  row(
    1,
    "SIGTERM during a resumed sft",
    "sft ... --resume (SIGTERM)",
    "SIGTERM ignored like SIGINT",
    now(second, /interrupted by SIGTERM/),
    second.code === 143 && later >= atSignal && later - atSignal <= 2 && isRange(ms) && ms.at(-1) === later,
    `metrics 1..${ms.at(-1)} without a gap or a repeat`,
  );
  const e = etaRe.exec(second.stderr);
  let etaHeld = false;
  let etaText = "no progress line with an ETA";
  if (e) {
    const [, done, tot, rate, eta] = e;
    const etaS = eta.split(":").reduce((s, p) => s * 60 + Number(p), 0);
    const honest = (Number(tot) - Number(done)) / rate1; // the steps left at the first run's rate
    // before the fix the rate counted every step from 0 over this process's time
    const inflated =
      (Number(tot) - Number(done)) / ((Number(rate) * Number(done)) / Math.max(1, Number(done) - stoppedAt));
    etaHeld = Number.isFinite(honest) && etaS > honest / 4 && etaS < honest * 4;
    etaText = `first line after resuming at step ${stoppedAt}: "${done}/${tot} steps ${rate}/s ETA ${eta}" (${etaS} s); the rate before was ${rate1}/s, so ~${honest.toFixed(0)} s is honest and ~${inflated.toFixed(0)} s is what counting from step 0 gives`;
  }
  row(
    1,
    "ETA after resume",
    "sft ... --resume (first progress line)",
    '"ETA 0:10" with 1,400 steps left (rate from the resumed step counter)',
    etaText,
    etaHeld,
  );

  // dpo
  const micro = await microModel("micro", 1);
  writeJsonl(at("pp.jsonl"), [
    { prompt: "3+4=", chosen: "7", rejected: "8" },
    { prompt: "9-2=", chosen: "7", rejected: "6" },
  ]);
  const dargs = [
    "dpo",
    "--model",
    micro,
    "--pairs",
    "pp.jsonl",
    "--out",
    "dpoint",
    "--epochs",
    "100000",
    "--batch-size",
    "1",
    "--threads",
    "1",
    "--save-every",
    "1000",
  ];
  const d = await interrupt(dargs, () => metricSteps(at("dpoint")), 3, "SIGINT");
  const dm = /interrupted by SIGINT: dpo stopped after step (\d+) of \d+; checkpoint (\S+) holds it/.exec(d.stderr);
  row(
    1,
    "SIGINT during dpo",
    "dpo --epochs 100000 (Ctrl-C after 3 steps)",
    "ignored, as in sft",
    now(d, /interrupted by SIGINT/),
    d.code === 130 && dm !== null && /to resume: stepwise dpo .*--resume/.test(d.stderr),
    `stopped at step ${dm?.[1]}, ${d.atSignal} logged at the signal, in ${d.stopMs} ms`,
  );

  // run, during its SFT stage
  fs.writeFileSync(
    at("long.yaml"),
    [
      "threads: 1",
      "task: {train: 48, test: 6}",
      "model: {vocab_size: 400}",
      "sft: {epochs: 2000, batch_size: 16}",
      "eval: {max_tokens: 20, maj: 1}",
      "sample: {problems: 4, n: 2, max_tokens: 20}",
      "pairs: {scdpo_n: 2, stepdpo_rollouts: 2}",
      "dpo: {batch_size: 4}",
      "variants:",
      "  - {name: dpo, pairs: [outcome]}",
      "",
    ].join("\n"),
  );
  const rargs = ["run", "long.yaml", "--out", "runint"];
  const runSteps = () => metricSteps(at("runint/seed-1/sft"));
  const r = await interrupt(rargs, runSteps, 2, "SIGINT");
  const stopped = runSteps().length;
  row(
    1,
    "SIGINT during run (its SFT stage)",
    "run long.yaml (Ctrl-C after 2 SFT steps)",
    "ignored, as in sft",
    now(r, /interrupted by SIGINT/),
    r.code === 130 && /to resume: stepwise run/.test(r.stderr) && stopped - r.atSignal <= 2,
    `SFT stopped at step ${stopped}, ${r.atSignal} logged at the signal, in ${r.stopMs} ms`,
  );
  const r2 = await interrupt(rargs, runSteps, stopped + 2, "SIGTERM");
  const ms2 = runSteps();
  row(
    1,
    "rerun resumes, then SIGTERM",
    "run long.yaml again (SIGTERM)",
    "(resume after a kill held before)",
    now(r2, /interrupted by SIGTERM/),
    r2.code === 143 && isRange(ms2) && ms2.length > stopped,
    `SFT metrics 1..${ms2.at(-1)}, continued from step ${stopped}`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Item 2: output folders and files

async function item2() {
  writeJsonl(at("d.jsonl"), PROBLEMS);
  const sft = (out, ...extra) =>
    cli(["sft", "--data", "d.jsonl", ...SFT_LONG, "--out", out, ...extra], { timeoutMs: 60_000 });
  let r = await sft("run1", "--max-steps", "2", "--epochs", "2", "--save-every", "1");
  // as in the issue: the old run's checkpoints count as newer than a fresh run's
  fs.renameSync(at("run1/checkpoints/step-0000002"), at("run1/checkpoints/step-0000100"));
  const before = fs.readFileSync(at("run1/metrics.jsonl"), "utf8");
  r = await sft("run1", "--max-steps", "1");
  const untouched = fs.readFileSync(at("run1/metrics.jsonl"), "utf8") === before;
  row(
    2,
    "fresh sft into a folder of an earlier run",
    "sft --out run1 (run1 holds a run)",
    "overwrote metrics.jsonl and train_config.json, deleted its own new checkpoint; --resume then refused",
    now(r, /holds the outputs of an earlier run/),
    r.code === 2 && untouched && /--overwrite/.test(r.stderr),
    `earlier metrics.jsonl ${untouched ? "untouched" : "CHANGED"}`,
  );
  r = await sft("run1", "--max-steps", "1", "--overwrite");
  const ck = fs.existsSync(at("run1/checkpoints")) ? fs.readdirSync(at("run1/checkpoints")) : [];
  row(
    2,
    "the same with --overwrite",
    "sft --out run1 --overwrite",
    "(the new run deleted its own checkpoint)",
    now(r, /model written/),
    r.code === 0 && ck.join() === "step-0000001" && metricSteps(at("run1")).join() === "1",
    `checkpoints: ${ck.join(", ") || "none"}; metrics steps ${metricSteps(at("run1")).join(",")}`,
  );

  // two samplers on one output
  const micro = await microModel("micro", 1);
  const sargs = ["sample", "--model", micro, "--problems", "d.jsonl", "--n", "1000000000", "--max-tokens", "2"];
  sargs.push("--threads", "1", "--out", "two.jsonl");
  const a = start(sargs);
  await until(() => fs.existsSync(at("two.jsonl.lock")) && jsonlLines(at("two.jsonl")).length > 0, a, 60_000);
  const b = await cli(sargs, { timeoutMs: 60_000 });
  a.child.kill("SIGINT");
  const ra = await a.done;
  const lines = jsonlLines(at("two.jsonl"));
  const distinct = new Set(lines.map((l) => `${JSON.parse(l).id}/${JSON.parse(l).sample}`)).size;
  row(
    2,
    "two concurrent samplers on one output",
    "sample --out two.jsonl, twice at once",
    "160 lines with 80 distinct samples",
    now(b, /being written by another process/),
    b.code === 2 && new RegExp(`pid ${a.child.pid}\\b`).test(b.stderr) && lines.length === distinct,
    `the first one's pid is ${a.child.pid}; it then exited ${ra.code} on SIGINT; ${lines.length} lines, ${distinct} distinct`,
  );
  // a stale lock: a dead process's
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  fs.writeFileSync(
    at("stale.jsonl.lock"),
    JSON.stringify({ pid: Number(dead.stdout), host: os.hostname(), command: "stepwise sample", since: "then" }),
  );
  const stale = await cli(
    ["sample", "--model", micro, "--problems", "d.jsonl", "--n", "2", "--max-tokens", "2", "--out", "stale.jsonl"],
    { timeoutMs: 60_000 },
  );
  row(
    2,
    "a stale lock (dead pid)",
    "sample --out stale.jsonl (lock of a dead pid)",
    "(no lock existed)",
    now(stale, /stale lock/),
    stale.code === 0 && /stale lock of pid \d+ \(no longer running\) was taken over/.test(stale.stderr),
    `${jsonlLines(at("stale.jsonl")).length} lines written`,
  );

  // --out mistakes, before any work
  fs.writeFileSync(at("afile"), "x");
  fs.mkdirSync(at("adir"), { recursive: true });
  const rec = { id: "a", question: PROBLEMS[0].question, answer: "#### 7" };
  writeJsonl(at("v.jsonl"), [
    { ...rec, sample: 0, completion: "3 + 4 = <<3+4=7>>7\n#### 7" },
    { ...rec, sample: 1, completion: "3 + 4 = <<3+4=8>>8\n#### 8" },
  ]);
  await cli(["verify", "--task", "gsm8k", "--in", "v.jsonl", "--out", "verified.jsonl"]);
  let sysWritable = true;
  try {
    fs.writeFileSync("/sys/.stepwise-probe", "");
    fs.rmSync("/sys/.stepwise-probe");
  } catch {
    sysWritable = false;
  }
  const commands = {
    "export gguf": (out) => ["export", "gguf", "--model", "micro", "--out", out],
    pairs: (out) => ["pairs", "--kind", "outcome", "--in", "verified.jsonl", "--out", out],
    verify: (out) => ["verify", "--task", "gsm8k", "--in", "v.jsonl", "--out", out],
  };
  const missingBefore = 'today "internal error" with a stack trace';
  const unclear = "no clear error before work (the issue asks for one)";
  const mistakes = [
    ["missing parent folder", "nowhere/x.out", /the folder .*nowhere does not exist/, missingBefore],
    ["an existing folder", "adir", /--out adir is a folder, but a file is expected/, unclear],
    ["a file as the parent", "afile/x.out", /afile is a file, not a folder/, unclear],
  ];
  if (!sysWritable) mistakes.push(["unwritable (/sys)", "/sys/x.out", /cannot write in \/sys/, unclear]);
  for (const [name, make] of Object.entries(commands)) {
    for (const [what, out, want, before] of mistakes) {
      const res = await cli(make(out), { timeoutMs: 60_000 });
      const wrote = out === "adir" ? fs.readdirSync(at("adir")).length > 0 : fs.existsSync(at(out));
      row(
        2,
        `${name}: --out ${what}`,
        `${make(out).slice(0, 2).join(" ")} ... --out ${out}`,
        before,
        now(res, want),
        res.code === 2 && want.test(res.stderr) && !/internal error/.test(res.stderr) && !wrote,
        `${res.ms} ms, nothing written`,
      );
    }
    // an existing file where a file is expected: a file output is replaced whole (atomically), not refused
    fs.writeFileSync(at("exists.out"), "old\n");
    const res = await cli(make("exists.out"), { timeoutMs: 60_000 });
    const after = fs.readFileSync(at("exists.out"), "utf8");
    const whole = after !== "old\n" && !after.includes("old\n");
    row(
      2,
      `${name}: --out an existing file`,
      `${make("exists.out").slice(0, 2).join(" ")} ... --out exists.out`,
      "(listed among the --out mistakes)",
      now(res, /stepwise/),
      res.code === 2 && !/internal error/.test(res.stderr) && after === "old\n"
        ? true
        : res.code === 0 && whole
          ? "?"
          : false,
      res.code === 0
        ? `replaced whole (atomic write), not refused; ${name} has no --overwrite, and the issue's "an existing file" reads either way`
        : `refused, the file ${after === "old\n" ? "untouched" : "CHANGED"}`,
    );
  }
  const sf = await cli(["sft", "--data", "d.jsonl", ...SFT_LONG, "--out", "afile"], { timeoutMs: 60_000 });
  row(
    2,
    "sft: --out an existing file",
    "sft --out afile",
    "a clear error before any work asked for",
    now(sf, /is a file, but a folder is expected/),
    sf.code === 2 && /--out afile is a file, but a folder is expected/.test(sf.stderr),
    `afile ${fs.readFileSync(at("afile"), "utf8") === "x" ? "unchanged" : "CHANGED"}`,
  );

  // a truncated newest checkpoint
  const targs = ["--max-steps", "4", "--epochs", "4", "--save-every", "1", "--keep-checkpoints", "3"];
  await sft("trunc", ...targs);
  fs.rmSync(at("trunc/model.safetensors"));
  const w = at("trunc/checkpoints/step-0000004/weights.safetensors");
  fs.truncateSync(w, Math.floor(fs.statSync(w).size / 2));
  const tr = await sft("trunc", ...targs, "--resume", "--json");
  let resumedFrom = null;
  try {
    resumedFrom = JSON.parse(tr.stdout).resumed_from;
  } catch {
    /* no summary */
  }
  row(
    2,
    "truncated newest checkpoint",
    "sft --resume (step-0000004 cut in half)",
    "(not tried: the fix was asked for)",
    now(tr, /resuming from the newest intact/),
    tr.code === 0 &&
      /resuming from the newest intact checkpoint instead: .*step-0000003/.test(tr.stderr) &&
      resumedFrom === 3 &&
      metricSteps(at("trunc")).join() === "1,2,3,4",
    `before it: "${line(tr.stderr, /is damaged/).replace(/ \(.*\);/, " (...);")}"; resumed_from ${resumedFrom}; metrics ${metricSteps(at("trunc")).join(",")}`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Item 3: the NaN guard

async function item3() {
  writeJsonl(at("d.jsonl"), PROBLEMS);
  const base = ["sft", "--data", "d.jsonl", ...SFT_LONG, "--max-steps", "20", "--epochs", "20"];
  const r = await cli([...base, "--out", "nan0", "--lr", "1e6", "--max-grad-norm", "0", "--save-every", "1"]);
  const files = safetensorsUnder(at("nan0"));
  const bad = files.map((f) => ({ f: path.relative(work, f), ...nonFinite(f) })).filter((x) => x.count > 0);
  row(
    3,
    "--max-grad-norm 0 --lr 1e6: no non-finite weights written",
    "sft --lr 1e6 --max-grad-norm 0 --save-every 1",
    'a checkpoint with 38,864 NaN/Inf weights saved and reported "intact"',
    now(r, /stepwise sft:/),
    r.code !== 0 && files.length > 0 && bad.length === 0 && !/is intact/.test(r.stderr),
    bad.length
      ? `NON-FINITE: ${bad.map((b) => `${b.f} ${b.count} in ${b.first}`).join("; ")}`
      : `${files.length} safetensors files on disk, all finite; the loss guard fired before any weight went NaN`,
  );
  const loss = /exploding loss \(([\d.e+]+)/.exec(r.stderr);
  row(
    3,
    "a finite loss that explodes stops the run",
    "(the same run)",
    "a loss of 4.2e12 passed",
    loss
      ? `stopped: exploding loss ${Number(loss[1]).toExponential(2)} at step ${/at step (\d+)/.exec(r.stderr)?.[1]}`
      : now(r),
    r.code !== 0 && loss !== null,
  );
  const hint = line(r.stderr, /hint:/);
  row(
    3,
    "the message says what exists (a checkpoint)",
    "(the same run)",
    '"the last checkpoint is intact"',
    hint,
    /the newest checkpoint, .*step-0000001 \(step 1\), holds finite weights/.test(r.stderr),
  );
  const r2 = await cli([...base, "--out", "nan1", "--lr", "1e6"]);
  row(
    3,
    "the message says what exists (no checkpoint)",
    "sft --lr 1e6 (no --save-every)",
    'said "the last checkpoint is intact" when none existed',
    now(r2, /stepwise sft:/, line(r2.stderr, /hint:/)),
    r2.code !== 0 && /no checkpoint exists/.test(r2.stderr) && !/is intact/.test(r2.stderr),
  );
  const nan = await microModel("nanmodel", 1);
  poison(nan, "model.norm.weight");
  const s = await cli([
    "sample",
    "--model",
    nan,
    "--problems",
    "d.jsonl",
    "--n",
    "1",
    "--max-tokens",
    "1",
    "--out",
    "nan.jsonl",
  ]);
  row(
    3,
    "loading a model with NaN/Inf weights warns",
    "sample --model nanmodel (Inf, NaN in model.norm.weight)",
    "(loaded silently)",
    now(s, /non-finite/, `then: ${line(s.stderr, /stepwise sample:/)}`),
    /tensor "model\.norm\.weight" holds 2 non-finite values/.test(s.stderr),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Item 4: a faulty endpoint

/** A fake OpenAI /v1/completions server; `answer(n, body)` picks the reply to the n-th completion request. */
async function fakeServer(answer) {
  const s = { requests: [], url: "" };
  const srv = http.createServer((req, res) => {
    if (req.url === "/v1/models") {
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify({ object: "list", data: [{ id: "m" }] }));
    }
    let raw = "";
    req.on("data", (d) => (raw += d));
    req.on("end", () => {
      const body = JSON.parse(raw);
      s.requests.push({ t: Date.now(), prompt: body.prompt, seed: body.seed });
      const json = (status, v, h = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...h });
        res.end(JSON.stringify(v));
      };
      const a = answer(s.requests.length - 1, body);
      if (a === "ok") return json(200, { choices: [{ index: 0, text: ` ${body.seed}`, finish_reason: "length" }] });
      if (a.startsWith("429"))
        return json(429, { error: { message: "slow down" } }, { "retry-after": a.slice(4) || "0" });
      if (a === "500") return json(500, { error: { message: "boom" } });
      if (a === "garbage") return res.writeHead(200, { "content-type": "application/json" }).end('{"choices": [{"te');
      req.socket.destroy(); // "drop"
    });
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  s.url = `http://127.0.0.1:${srv.address().port}`;
  s.close = () =>
    new Promise((r) => {
      srv.close(() => r());
      srv.closeAllConnections();
    });
  return s;
}

async function item4() {
  const problems = Array.from({ length: 12 }, (_, i) => ({ id: `p${i}`, question: `q${i}`, answer: "#### 1" }));
  writeJsonl(at("problems.jsonl"), problems);
  const keys = (file) => jsonlLines(file).map((l) => `${JSON.parse(l).id}/${JSON.parse(l).sample}`);
  const cycle = ["429", "500", "garbage", "drop", "ok", "ok"]; // 4 of every 6 requests fail
  let s = await fakeServer((n) => cycle[n % cycle.length]);
  const args = (url, out, ...extra) => [
    "sample",
    "--endpoint",
    url,
    "--problems",
    "problems.jsonl",
    "--n",
    "3",
    "--out",
    out,
    ...extra,
  ];
  let r = await cli(args(s.url, "flaky.jsonl", "--retries", "6", "--timeout", "10"));
  await s.close();
  const k = keys(at("flaky.jsonl"));
  row(
    4,
    "4 of 6 requests fail (429, 500, garbage, drop)",
    "sample --endpoint FAKE --n 3 (36 samples)",
    "0 of 36 written, exit 1 (gave up after 6 retries, one failure aborted all)",
    now(r, /MaxListeners|stepwise sample/),
    r.code === 0 && k.length === 36 && new Set(k).size === 36 && !/MaxListenersExceededWarning/.test(r.stderr),
    `${k.length} lines, ${new Set(k).size} distinct, ${s.requests.length} requests, ${(r.ms / 1000).toFixed(1)} s; MaxListenersExceededWarning ${/MaxListenersExceededWarning/.test(r.stderr) ? "PRINTED" : "not printed"}`,
  );

  // one problem's requests keep failing: the rest is written, the exit names the missing samples, a rerun completes
  let broken = true;
  s = await fakeServer((_n, body) => (broken && body.prompt.startsWith("q3") ? "500" : "ok"));
  r = await cli(args(s.url, "part.jsonl", "--retries", "1"));
  const partial = keys(at("part.jsonl")).length;
  row(
    4,
    "a problem that keeps failing",
    "sample --endpoint FAKE --retries 1 (q3 always 500)",
    "one failed request aborted everything, 0 written",
    now(r, /samples are missing/),
    r.code === 3 && /"p3": samples 0, 1, 2/.test(r.stderr) && partial === 33,
    `${partial} of 36 written; the list: ${line(r.stderr, /"p3"/).trim()}`,
  );
  broken = false;
  r = await cli(args(s.url, "part.jsonl", "--retries", "1", "--json"));
  await s.close();
  const all = keys(at("part.jsonl"));
  let summary = {};
  try {
    summary = JSON.parse(r.stdout);
  } catch {
    /* none */
  }
  row(
    4,
    "the rerun completes them",
    "the same command again (endpoint healthy)",
    "(nothing to complete)",
    `exit ${r.code}: --json summary present ${summary.present}, written ${summary.written}, missing ${JSON.stringify(summary.missing)}`,
    r.code === 0 && all.length === 36 && new Set(all).size === 36 && summary.written === 3,
    `${all.length} lines, ${new Set(all).size} distinct`,
  );

  // Retry-After
  writeJsonl(at("one.jsonl"), [problems[0]]);
  s = await fakeServer((n) => (n === 0 ? "429 2" : "ok"));
  r = await cli([
    "sample",
    "--endpoint",
    s.url,
    "--problems",
    "one.jsonl",
    "--n",
    "1",
    "--out",
    "ra.jsonl",
    "--retries",
    "3",
  ]);
  await s.close();
  const gap = s.requests.length > 1 ? (s.requests[1].t - s.requests[0].t) / 1000 : Number.NaN;
  row(
    4,
    "429 with Retry-After: 2",
    "sample --endpoint FAKE (first answer 429, Retry-After 2)",
    "(retried without honouring it)",
    now(r, /stepwise sample/),
    r.code === 0 && gap >= 1.9 && gap < 10,
    `the retry came ${gap.toFixed(2)} s after the 429`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Item 5: validation before work

/** The run config of src/cli/run.test.ts's micro run, written as JSON (which is YAML too) into a .yaml file. */
const MICRO_RUN = {
  threads: 1,
  task: { train: 48, test: 6 },
  model: { vocab_size: 400 },
  sft: { epochs: 1, batch_size: 16 },
  eval: { max_tokens: 20, maj: 1 },
  sample: { problems: 4, n: 2, max_tokens: 20 },
  pairs: { scdpo_n: 2, stepdpo_rollouts: 2 },
  dpo: { batch_size: 4 },
  variants: [{ name: "dpo", pairs: ["outcome"] }],
};
const runConfig = (file, patch = {}) => {
  const c = structuredClone(MICRO_RUN);
  for (const [k, v] of Object.entries(patch)) c[k] = Array.isArray(v) ? v : { ...c[k], ...v };
  fs.writeFileSync(at(file), JSON.stringify(c, null, 1));
};

async function item5() {
  writeJsonl(at("d.jsonl"), PROBLEMS);
  runConfig("badloss.yaml", { variants: [{ name: "dpo", pairs: ["outcome"], loss: "sigmoidd" }] });
  let r = await cli(["run", "badloss.yaml", "--out", "badloss"]);
  const sftRan = fs.existsSync(at("badloss/seed-1/sft"));
  row(
    5,
    "invalid variant loss in the run YAML",
    "run badloss.yaml (variants[0].loss: sigmoidd)",
    "caught only after SFT, sampling and pairs, without naming the key",
    now(r, /loss/),
    r.code === 2 && /variants/.test(r.stderr) && /loss/.test(r.stderr) && !sftRan,
    `${(r.ms / 1000).toFixed(1)} s; SFT ${sftRan ? "RAN" : "did not start"}`,
  );
  // config values: each caught when the config is parsed (before any stage), naming section.key
  for (const [key, value] of [
    ["sft.lr", -1],
    ["sft.max_length", -5],
    ["model.vocab_size", 0],
    ["pairs.max_per_problem", 0],
    ["sample.n", 0],
  ]) {
    const name = key.replace(".", "-");
    const [section, field] = key.split(".");
    runConfig(`${name}.yaml`, { [section]: { [field]: value } });
    r = await cli(["run", `${name}.yaml`, "--out", name]);
    const stages = messages(r.stderr)
      .filter((l) => /^stepwise run: [\w/-]+$/.test(l))
      .map((l) => l.slice(14));
    const named = /stepwise run: (?:\S+\.yaml: )?([\w.[\]]+):/.exec(line(r.stderr, /expected/))?.[1];
    row(
      5,
      `a run config value out of range: ${key}`,
      `run ${name}.yaml (${key}: ${value})`,
      "(not tried; the issue asks every config value for a range check that names it, before work)",
      now(r, /expected/),
      r.code === 2 && r.stderr.includes(`${key}:`) && stages.length === 0,
      stages.length
        ? `stages run before it: ${stages.join(", ")}${named === key ? "" : `; it names "${named}", not "${key}"`}`
        : "before any stage",
    );
  }
  runConfig("nopairs.yaml");
  r = await cli(["run", "nopairs.yaml", "--out", "nopairs"]);
  row(
    5,
    "a variant with no pairs",
    "run nopairs.yaml (a micro model: no correct samples, no pairs)",
    "run exits 0",
    now(r, /no .*pairs/),
    r.code !== 0,
    `${(r.ms / 1000).toFixed(1)} s`,
  );
  const sft = ["sft", "--data", "d.jsonl", "--init", "tiny", "--out", "o"];
  for (const [flag, value, want, before] of [
    ["--lr", "", /--lr must be a number > 0, got ""/, "silently meant lr 0"],
    ["--warmup-ratio", "2", /--warmup-ratio must be a number in \[0, 1\]/, "accepted"],
  ]) {
    r = await cli([...sft, flag, value]);
    row(
      5,
      `${flag} ${JSON.stringify(value)}`,
      `sft ... ${flag} ${JSON.stringify(value)}`,
      before,
      now(r, want),
      r.code === 2 && want.test(r.stderr) && !fs.existsSync(at("o")),
    );
  }
  writeJsonl(at("c.jsonl"), [
    {
      id: "a",
      completion: "```js\nfunction f(){return 1}\n```",
      tests: "assert.equal(f(), 1)",
      entry_point: "f",
      language: "js",
    },
  ]);
  r = await cli(["verify", "--task", "code", "--in", "c.jsonl", "--out", "cv.jsonl", "--memory-limit", "1"]);
  row(
    5,
    "--memory-limit 1",
    "verify --task code --memory-limit 1",
    "every program marked wrong without a word (poisons pairs)",
    now(r, /memory-limit/),
    r.code === 2 && /--memory-limit 1/.test(r.stderr) && !fs.existsSync(at("cv.jsonl")),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Item 6: bounded resources

async function item6() {
  writeJsonl(at("d.jsonl"), PROBLEMS);
  // a 60 MB line between two ordinary ones
  const huge = "x".repeat(60 * 1024 * 1024);
  const v = { id: "a", sample: 0, completion: "#### 7", answer: "#### 7" };
  const file = (name, first, big, last) =>
    fs.writeFileSync(at(name), [first, big, last].map((r) => JSON.stringify(r) + "\n").join(""));
  file("big.jsonl", PROBLEMS[0], { question: huge, answer: "#### 1" }, PROBLEMS[1]);
  file("bigv.jsonl", v, { ...v, completion: huge }, v);
  for (const args of [
    ["sft", "--data", "big.jsonl", ...SFT_LONG, "--out", "bigsft", "--max-steps", "1"],
    ["verify", "--task", "gsm8k", "--in", "bigv.jsonl", "--out", "bigv.out.jsonl"],
  ]) {
    const r = await cli(args, { timeoutMs: 150_000 });
    const input = args[0] === "sft" ? "big.jsonl" : "bigv.jsonl";
    row(
      6,
      `a 60 MB JSONL line (${args[0]})`,
      `${args[0]} ... ${input} (line 2: 60 MB)`,
      "ran 120 s at 3.9 GB with no message",
      now(r, /big/),
      r.code === 2 && r.stderr.includes(`${input}:2`) && r.ms < 30_000 && r.peakKb < 1024 * 1024,
      `${(r.ms / 1000).toFixed(1)} s, peak RSS ${mb(r.peakKb)}`,
    );
  }
  fs.rmSync(at("big.jsonl"));
  fs.rmSync(at("bigv.jsonl"));

  // sample --n 1e9 for 10 s
  const micro = await microModel("micro", 1);
  const h = start([
    "sample",
    "--model",
    micro,
    "--problems",
    "d.jsonl",
    "--n",
    "1e9",
    "--max-tokens",
    "2",
    "--threads",
    "1",
    "--out",
    "huge.jsonl",
  ]);
  await until(() => false, h, 10_000);
  h.sample();
  const peak = h.peak;
  const linesAtSignal = jsonlLines(at("huge.jsonl")).length;
  h.child.kill("SIGINT");
  const r = await h.done;
  const lines = jsonlLines(at("huge.jsonl")).length;
  const m = /interrupted by SIGINT: (\d+) of (\d+) samples are in huge\.jsonl/.exec(r.stderr);
  row(
    6,
    "sample --n 1e9: bounded memory, streamed",
    "sample --n 1e9 --max-tokens 2 (10 s, then Ctrl-C)",
    "3.2 GB in 15 s before writing anything",
    `peak RSS ${mb(peak)} after 10 s; ${linesAtSignal} samples on disk by then`,
    peak > 0 && peak < 512 * 1024 && linesAtSignal > 0,
  );
  row(
    1,
    "SIGINT during sample",
    "sample --n 1e9 (Ctrl-C after 10 s, item 6's run)",
    '"the same for every long command"',
    now(r, /interrupted by SIGINT/),
    r.code === 130 && m !== null && Number(m[1]) === lines && /to resume: stepwise sample/.test(r.stderr),
    `${lines} lines in the file`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Item 7: the sandbox's edges, through `verify --task code`

async function item7() {
  const py = spawnSync("python3", ["-c", "print(1)"], { encoding: "utf8" });
  if (py.status !== 0) {
    row(7, "sandbox attacks", "verify --task code", "-", "skipped: no python3 here", false);
    return;
  }
  const net = http.createServer((_req, res) => res.end("pwned"));
  let connections = 0;
  net.on("connection", () => connections++);
  await new Promise((r) => net.listen(0, "127.0.0.1", r));
  const port = net.address().port;
  const token = `adv${process.pid}x${Date.now()}`;
  const daemons = () => {
    const found = [];
    for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        if (fs.readFileSync(`/proc/${pid}/cmdline`, "latin1").includes(token)) found.push(Number(pid));
      } catch {
        /* gone */
      }
    }
    return found;
  };
  const check = "def check(candidate):\n    r = candidate()\n    assert r == 'contained', r\n";
  const attack = (id, body) => ({
    id,
    language: "python",
    entry_point: "f",
    tests: check,
    completion: "```python\nimport os, socket, sys, time\ndef f():\n" + body.map((l) => `    ${l}\n`).join("") + "```",
  });
  // a control: the same daemon started outside any sandbox is found by daemons() (then killed)
  const control = `import os, sys\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', '${token}'])\n    os._exit(0)\n`;
  spawnSync("python3", ["-c", control], { stdio: "ignore" });
  await sleep(300);
  const seen = daemons();
  for (const pid of seen) process.kill(pid, "SIGKILL");
  const detector = seen.length > 0 ? "" : "; the detector's control found nothing, so this proves little";
  for (const mode of ["strongest", "basic"]) {
    const input = at(`attacks-${mode}.jsonl`);
    const outsideFile = path.join(os.tmpdir(), `stepwise-adv-escape-${token}-${mode}.txt`); // /tmp: world-writable
    writeJsonl(input, [
      attack("read-host", [
        "got = []",
        `for p in [${JSON.stringify(input)}, ${JSON.stringify(path.join(ROOT, "package.json"))}]:`,
        "    try:",
        "        got.append('READ %s: %r' % (p, open(p).read()[:30]))",
        "    except OSError:",
        "        pass",
        "return '; '.join(got) or 'contained'",
      ]),
      attack("net", [
        "try:",
        `    socket.create_connection(('127.0.0.1', ${port}), timeout=2).close()`,
        "    return 'CONNECTED'",
        "except OSError:",
        "    return 'contained'",
      ]),
      attack("write-outside", [
        "try:",
        `    open(${JSON.stringify(outsideFile)}, 'w').write('pwned')`,
        "    return 'WROTE'",
        "except OSError:",
        "    return 'contained'",
      ]),
      // the grandchild, in a session of its own, says it runs before the program returns, then sleeps a minute
      attack("daemon", [
        "r, w = os.pipe()",
        "if os.fork() == 0:",
        "    os.setsid()",
        "    if os.fork() == 0:",
        "        null = os.open(os.devnull, os.O_RDWR)",
        "        for fd in (0, 1, 2):",
        "            os.dup2(null, fd)",
        "        os.write(w, b'1')",
        `        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', '${token}'])`,
        "    os._exit(0)",
        "os.close(w)",
        "return 'contained' if os.read(r, 1) == b'1' else 'the daemon did not start'",
      ]),
    ]);
    const before = connections;
    const env = mode === "basic" ? { STEPWISE_SANDBOX: "basic" } : {};
    const out = at(`verified-${mode}.jsonl`);
    const r = await cli(
      ["verify", "--task", "code", "--in", input, "--out", out, "--time-limit", "4000", "--concurrency", "1", "--json"],
      { env, timeoutMs: 120_000 },
    );
    await sleep(500);
    let summary = {};
    try {
      summary = JSON.parse(r.stdout);
    } catch {
      /* none */
    }
    const results = new Map(jsonlLines(out).map((l) => [JSON.parse(l).id, JSON.parse(l).result]));
    const modeName = summary.sandbox?.mode ?? "?";
    const missing = summary.sandbox?.missing ?? [];
    const warned = (p) => missing.includes(p) && new RegExp(`WARNING.*missing protections[\\s\\S]*${p}`).test(r.stderr);
    const status = (id) => {
      const x = results.get(id);
      return x
        ? `${x.status}${x.status === "passed" ? "" : `: ${x.message.split("\n").find((l) => /Error/.test(l)) ?? ""}`}`
        : "no result";
    };
    const left = daemons();
    for (const pid of left) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    const wrote = fs.existsSync(outsideFile);
    fs.rmSync(outsideFile, { force: true });
    const cmd = `verify --task code${mode === "basic" ? " (STEPWISE_SANDBOX=basic)" : ""}`;
    const m = `[${modeName}]`;
    if (r.code !== 0) {
      row(7, `${mode} mode: attacks`, cmd, "-", now(r), false);
      continue;
    }
    if (mode === "basic")
      row(
        7,
        "basic mode says loudly what is missing",
        cmd,
        "fell back without a word",
        line(r.stderr, /WARNING/),
        missing.length > 0 && /WARNING/.test(r.stderr),
        `missing: ${missing.join(", ")}`,
      );
    const readHidden = results.get("read-host")?.status === "passed";
    row(
      7,
      `${mode} mode: read a host file (the input with the tests, package.json)`,
      cmd,
      mode === "basic"
        ? "(readable, as the strongest mode was)"
        : "the whole host filesystem readable, the tests included",
      `${m} ${status("read-host")}`,
      readHidden || (mode === "basic" && warned("host-filesystem-hidden")),
      readHidden
        ? "both hidden"
        : mode === "basic"
          ? "readable where the dropped uid may read (the 0700 temp folder with the input was not); warned: host-filesystem-hidden missing"
          : "",
    );
    const reached = connections > before;
    row(
      7,
      `${mode} mode: reach a 127.0.0.1 listener`,
      cmd,
      mode === "basic" ? "reached a 127.0.0.1 listener" : "(contained)",
      `${m} ${status("net")}; the listener saw ${connections - before} connection(s)`,
      !reached || (mode === "basic" && warned("network-namespace")),
      reached ? "reachable in basic mode; warned: network-namespace missing" : "",
    );
    row(
      7,
      `${mode} mode: write outside the scratch folder (/tmp)`,
      cmd,
      mode === "basic" ? "wrote outside its scratch folder" : "(contained)",
      `${m} ${status("write-outside")}; the file ${wrote ? "EXISTS" : "does not exist"} on the host`,
      !wrote || (mode === "basic" && warned("read-only-filesystem")),
      wrote ? "writable in basic mode; warned: read-only-filesystem missing" : "",
    );
    row(
      7,
      `${mode} mode: a detached child (setsid, double fork)`,
      cmd,
      mode === "basic" ? "outlived the run" : "(contained)",
      `${m} ${status("daemon")} (the daemon was running when the program returned); ${left.length} alive 0.5 s after verify exited${detector}`,
      left.length === 0 && results.get("daemon")?.status === "passed",
    );
  }
  await new Promise((r) => net.close(() => r()));
}

// ---------------------------------------------------------------------------------------------------------------
// Item 8: the server

/** A raw request with our own headers (fetch cannot set Host). */
function request(port, method, pathname, headers = {}, body = undefined) {
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port, method, path: pathname, headers }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode, body: text }));
    });
    req.on("error", (e) => resolve({ status: 0, body: String(e) }));
    if (body !== undefined) req.end(JSON.stringify(body));
    else req.end();
  });
}
const errorOf = (r) => {
  try {
    return JSON.parse(r.body).error?.message ?? r.body;
  } catch {
    return r.body;
  }
};

async function item8() {
  const micro = await microModel("micro", 1);
  const key = "sk-adversarial";
  const h = start(["serve", "--model", micro, "--port", "0", "--api-key", key, "--threads", "1"]);
  await until(() => /http:\/\/127\.0\.0\.1:(\d+)/.test(h.stdout + h.stderr), h, 30_000);
  const port = Number(/http:\/\/127\.0\.0\.1:(\d+)/.exec(h.stdout + h.stderr)?.[1]);
  const auth = { authorization: `Bearer ${key}` };
  const json = { "content-type": "application/json" };
  if (!port) {
    h.child.kill("SIGKILL");
    row(8, "serve", "serve --api-key", "-", now(await h.done), false);
    return;
  }
  const evil = await request(port, "GET", "/v1/models", { ...auth, host: "evil.example:8000" });
  const local = await request(port, "GET", "/v1/models", { ...auth, host: `localhost:${port}` });
  row(
    8,
    "a foreign Host header",
    "GET /v1/models, Host: evil.example:8000",
    "accepted (the dashboard checked it, the server did not)",
    `HTTP ${evil.status}: ${errorOf(evil)}`,
    evil.status === 403 && local.status === 200,
    `Host: localhost gets ${local.status}`,
  );
  const none = await request(port, "GET", "/v1/models", { host: "127.0.0.1" });
  const wrong = await request(port, "GET", "/v1/models", { host: "127.0.0.1", authorization: "Bearer sk-wrong" });
  const done = await request(
    port,
    "POST",
    "/v1/completions",
    { ...auth, ...json, host: "127.0.0.1" },
    { prompt: "1+1=", max_tokens: 2 },
  );
  row(
    8,
    "--api-key",
    "serve --api-key KEY; no key / a wrong key / the key",
    "no API-key option",
    `no key: HTTP ${none.status} (${errorOf(none)}); wrong: HTTP ${wrong.status}; right: HTTP ${done.status}`,
    none.status === 401 && wrong.status === 401 && done.status === 200,
  );
  const top = await request(
    port,
    "POST",
    "/v1/chat/completions",
    { ...auth, ...json, host: "127.0.0.1" },
    { messages: [{ role: "user", content: "hi" }], max_tokens: 2, logprobs: true, top_logprobs: 3 },
  );
  const lp = await request(
    port,
    "POST",
    "/v1/completions",
    { ...auth, ...json, host: "127.0.0.1" },
    { prompt: "x", max_tokens: 2, logprobs: 2 },
  );
  row(
    8,
    "top_logprobs",
    "POST /v1/chat/completions top_logprobs: 3; /v1/completions logprobs: 2",
    "accepted and ignored",
    `HTTP ${top.status}: ${errorOf(top)}`,
    top.status === 400 && /top_logprobs|top alternatives/.test(top.body) && lp.status === 400,
    `/v1/completions logprobs: 2 gets HTTP ${lp.status}`,
  );
  h.child.kill("SIGINT");
  await h.done;
  const small = await microModel("small", 1, { vocab_size: 40 });
  const r = await cli(["serve", "--model", small, "--port", "0", "--threads", "1"], { timeoutMs: 30_000 });
  row(
    8,
    "vocabulary smaller than the tokenizer",
    "serve --model small (vocab_size 40, tokenizer 100)",
    "started serving, then HTTP 500 on every request",
    now(r, /vocabulary/),
    r.code === 2 && /ids 40\.\.99 have no embedding/.test(r.stderr),
  );
}

// ---------------------------------------------------------------------------------------------------------------

const ITEMS = [
  [1, item1],
  [2, item2],
  [3, item3],
  [4, item4],
  [5, item5],
  [6, item6],
  [7, item7],
  [8, item8],
];
for (const [n, fn] of ITEMS) {
  if (ONLY && !ONLY.has(n)) continue;
  log(`item ${n}`);
  try {
    await fn();
  } catch (e) {
    row(n, "(the script failed)", "-", "-", `error: ${e?.stack ?? e}`, false);
  }
}

rows.sort((a, b) => a.item - b.item); // item 6's sample run also gives item 1's sample row
const held = rows.filter((r) => r.held === true).length;
const unclear = rows.filter((r) => r.held === "?").length;
const out = [
  `Issue #15, the adversarial cases again (${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores, Node ${process.versions.node}, ${((Date.now() - t0) / 1000).toFixed(0)} s): ${held} held, ${rows.length - held - unclear} not held${unclear ? `, ${unclear} unclear (a judgement call, see the row)` : ""}.`,
  "",
  "| # | item | case | command (short) | before (as the issue describes) | now (measured) | held? |",
  "| --- | --- | --- | --- | --- | --- | --- |",
  ...rows.map(
    (r, i) =>
      `| ${i + 1} | ${r.item} | ${cell(r.kase)} | \`${cell(r.command, 90).replace(/`/g, "'")}\` | ${cell(r.before)} | ${cell(r.now, 400)} | ${r.held === "?" ? "unclear" : r.held ? "yes" : "**no**"} |`,
  ),
  "",
];
process.stdout.write(out.join("\n"));
if (KEEP) log(`kept ${work}`);
else fs.rmSync(work, { recursive: true, force: true });
