// Where commands write: checks of --out before any work (an existing file where a folder is expected and the other
// way round, a missing parent folder, a place that cannot be written), a refusal to mix a new run into a folder
// that holds another run's outputs, and one writer per output: a lock file naming the holder's pid.
//
// Locks: OUT.lock beside a file output, DIR/stepwise.lock inside a folder output, created with O_EXCL so that
// two processes cannot both take it. It holds {"pid", "host", "command", "since"}. A lock whose process is gone
// (a kill -9, a crash, a reboot) is stale: the next writer takes it over and says so. The holder removes it when
// it finishes, fails or is interrupted (also on process.exit).

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { InputError } from "./errors.js";

/** Whether `dir` accepts new files: tried for real (a probe file made and removed), since root passes access(). */
function writable(dir: string): string | null {
  const probe = path.join(dir, `.stepwise-probe-${process.pid}-${Date.now()}`);
  try {
    fs.writeFileSync(probe, "");
    fs.rmSync(probe, { force: true });
    return null;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  }
}

/** Checks an output file path before any work: not a folder, its folder exists and can be written in. */
export function checkOutputFile(file: string, flag = "--out"): void {
  const abs = path.resolve(file);
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) {
    throw new InputError(
      `${flag} ${file} is a folder, but a file is expected`,
      undefined,
      "name a file inside it, e.g. " + path.join(file, "out.jsonl"),
    );
  }
  const parent = path.dirname(abs);
  if (!fs.existsSync(parent)) {
    throw new InputError(
      `${flag} ${file}: the folder ${parent} does not exist`,
      undefined,
      "create it first, or pick another path",
    );
  }
  if (!fs.statSync(parent).isDirectory()) throw new InputError(`${flag} ${file}: ${parent} is a file, not a folder`);
  const why = writable(parent);
  if (why)
    throw new InputError(`${flag} ${file}: cannot write in ${parent} (${why})`, undefined, "pick a writable place");
}

/** Writes an output file atomically with `write`; a path that cannot be written is bad input, named. */
export async function writeOutput(file: string, write: (f: string) => Promise<unknown>): Promise<void> {
  try {
    await write(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (typeof err.code === "string") throw new InputError(`cannot write (${err.code}: ${err.message})`, file);
    throw e;
  }
}

/** For commands that make their output's folders (sample, eval): creates them, then checks as checkOutputFile. */
export function prepareOutputFile(file: string, flag = "--out"): void {
  const parent = path.dirname(path.resolve(file));
  if (!fs.existsSync(parent)) {
    checkOutputDir(parent, `${flag}'s folder`);
    fs.mkdirSync(parent, { recursive: true });
  }
  checkOutputFile(file, flag);
}

/** Checks an output folder before any work: not an existing file; it (or the nearest folder above it) writable. */
export function checkOutputDir(dir: string, flag = "--out"): void {
  const abs = path.resolve(dir);
  if (fs.existsSync(abs) && !fs.statSync(abs).isDirectory()) {
    throw new InputError(
      `${flag} ${dir} is a file, but a folder is expected`,
      undefined,
      "pick a folder name (it is created)",
    );
  }
  let above = abs;
  while (!fs.existsSync(above)) above = path.dirname(above);
  if (!fs.statSync(above).isDirectory()) throw new InputError(`${flag} ${dir}: ${above} is a file, not a folder`);
  const why = writable(above);
  if (why)
    throw new InputError(`${flag} ${dir}: cannot write in ${above} (${why})`, undefined, "pick a writable place");
}

/** A training folder's own outputs: what a new run would overwrite or mix with. */
const RUN_OUTPUTS = [
  "train_config.json",
  "metrics.jsonl",
  "checkpoints",
  "ref_logps.json",
  "ref_logps_eval.json",
  "model.safetensors",
  "model.safetensors.index.json",
  "adapter_model.safetensors",
  "adapter_config.json",
  "trainer_state.json", // Hugging Face's TrainerState, rebuilt from metrics.jsonl
  "runs", // TensorBoard event files (report_to tensorboard)
];

/**
 * A training --out folder: refused when it holds another run's outputs, unless `resume` (continue that run) or
 * `overwrite` (those outputs are removed first; nothing else in the folder is touched).
 */
export function claimRunDir(dir: string, o: { resume: boolean; overwrite: boolean; command: string }): void {
  if (!fs.existsSync(dir)) return;
  const found = [
    ...RUN_OUTPUTS.filter((f) => fs.existsSync(path.join(dir, f))),
    ...fs.readdirSync(dir).filter((f) => /^model-\d+-of-\d+\.safetensors$/.test(f)),
  ];
  if (found.length === 0 || o.resume) return;
  if (!o.overwrite) {
    throw new InputError(
      `--out ${dir} holds the outputs of an earlier run (${found.join(", ")})`,
      undefined,
      `--resume continues that run, --overwrite replaces it, or pick another --out`,
    );
  }
  for (const f of found) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
}

/** The same folder given as input and output would be overwritten while it is read. */
export function checkNotInput(out: string, inputs: Record<string, unknown>): void {
  for (const [flag, v] of Object.entries(inputs)) {
    if (typeof v === "string" && fs.existsSync(v) && path.resolve(v) === path.resolve(out)) {
      throw new InputError(
        `--out ${out} is also ${flag}: the input would be overwritten`,
        undefined,
        "pick another --out",
      );
    }
  }
}

interface LockInfo {
  pid: number;
  host: string;
  command: string;
  since: string;
}

/** Whether process `pid` on this host still runs (EPERM: it runs, as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The lock file of an output: OUT.lock beside a file, DIR/stepwise.lock inside a folder. */
export function lockPath(target: string, kind: "file" | "dir"): string {
  return kind === "dir" ? path.join(target, "stepwise.lock") : `${target}.lock`;
}

/**
 * Takes the one-writer lock of `target` (a file or a folder, which must exist for "dir"); returns the release.
 * Held by a live process: an InputError naming its pid. Left by a dead one: taken over, with a warning.
 */
export function lockOutput(
  target: string,
  kind: "file" | "dir",
  command: string,
  warn: (m: string) => void = (m) => process.stderr.write(`${m}\n`),
): () => void {
  const file = lockPath(target, kind);
  const info: LockInfo = { pid: process.pid, host: os.hostname(), command, since: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(file, "wx");
      fs.writeSync(fd, JSON.stringify(info) + "\n");
      fs.closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw e;
    }
    const holder = readLock(file);
    if (holder && holder.host === info.host && alive(holder.pid) && holder.pid !== process.pid) {
      throw new InputError(
        `${target} is being written by another process: pid ${holder.pid} (${holder.command}, since ${holder.since})`,
        file,
        "wait for it to finish or stop it; one output has one writer at a time",
      );
    }
    if (holder && holder.host !== info.host) {
      throw new InputError(
        `${target} is locked by pid ${holder.pid} on host ${holder.host} (${holder.command}, since ${holder.since})`,
        file,
        "if that process is gone, delete the lock file",
      );
    }
    const age = fs.existsSync(file) ? Date.now() - fs.statSync(file).mtimeMs : Infinity;
    if (!holder && age < 5000) {
      throw new InputError(
        `${target} is being locked by another process right now`,
        file,
        "one output has one writer at a time",
      );
    }
    warn(
      `stepwise: ${file}: a stale lock ${holder ? `of pid ${holder.pid} (no longer running)` : "(unreadable)"} was taken over`,
    );
    fs.rmSync(file, { force: true });
  }
  const release = () => {
    process.off("exit", release);
    const holder = readLock(file);
    if (holder?.pid === process.pid) fs.rmSync(file, { force: true });
  };
  process.on("exit", release);
  return release;
}

function readLock(file: string): LockInfo | null {
  try {
    const v = JSON.parse(fs.readFileSync(file, "utf8")) as LockInfo;
    return typeof v.pid === "number" && typeof v.host === "string" ? v : null;
  } catch {
    return null;
  }
}

/** Runs `fn` holding the lock of `target`. */
export async function withOutputLock<T>(
  target: string,
  kind: "file" | "dir",
  command: string,
  fn: () => Promise<T>,
): Promise<T> {
  const release = lockOutput(target, kind, command);
  try {
    return await fn();
  } finally {
    release();
  }
}
