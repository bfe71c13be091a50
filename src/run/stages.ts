// Stage caching for `stepwise run`. A stage's key is a hash of its own config and the keys of the stages it reads
// (a Merkle chain), so a change anywhere upstream reaches every stage below it and nothing else. A finished stage
// writes `.stages/NAME.json` = {"format", "key", "outputs", "seconds", "finished_at"} last, atomically: a rerun
// skips a stage whose record has the same key and whose outputs all exist. A stage interrupted before its record
// is written runs again (training and sampling stages resume from what they wrote); a stage whose key changed has
// its old outputs removed first, so results of different configs never mix.

import { writeJsonAtomic } from "../core/atomic.js";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

const FORMAT = 1;

export interface StageRecord {
  format: number;
  key: string;
  outputs: string[]; // paths relative to the run directory
  seconds: number;
  finished_at: string;
  info?: unknown; // what the stage wants to remember (e.g. its summary)
}

/** A short stable hash of JSON-able values (object keys sorted). */
export function stageKey(...parts: unknown[]): string {
  const canon = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canon);
    if (v && typeof v === "object")
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, canon((v as Record<string, unknown>)[k])]),
      );
    return v;
  };
  return createHash("sha256")
    .update(JSON.stringify(canon(parts)))
    .digest("hex")
    .slice(0, 16);
}

export class StageCache {
  constructor(readonly runDir: string) {}

  private recordFile(name: string): string {
    return path.join(this.runDir, ".stages", `${name.replace(/\//g, "__")}.json`);
  }

  read(name: string): StageRecord | null {
    try {
      const r = JSON.parse(fs.readFileSync(this.recordFile(name), "utf8")) as StageRecord;
      return r.format === FORMAT ? r : null;
    } catch {
      return null;
    }
  }

  /** True when the stage finished with this key and its outputs are still there. */
  done(name: string, key: string): boolean {
    const r = this.read(name);
    return r !== null && r.key === key && r.outputs.every((o) => fs.existsSync(path.join(this.runDir, o)));
  }

  /**
   * Prepares a stage about to run: when it last ran (finished or not) under another key, its outputs are removed
   * so a resumable stage does not continue another config's work. The key is noted before the stage starts.
   */
  begin(name: string, key: string, outputs: string[]): void {
    const pending = path.join(this.runDir, ".stages", `${name.replace(/\//g, "__")}.pending`);
    let previous: string | null = this.read(name)?.key ?? null;
    try {
      previous = fs.readFileSync(pending, "utf8").trim() || previous;
    } catch {
      // no pending marker: the stage never started, or finished
    }
    if (previous !== null && previous !== key) {
      for (const o of outputs) fs.rmSync(path.join(this.runDir, o), { recursive: true, force: true });
    }
    fs.mkdirSync(path.dirname(pending), { recursive: true });
    fs.writeFileSync(pending, key);
    fs.rmSync(this.recordFile(name), { force: true });
  }

  /** Every finished stage's record, with its name, in file-name order. */
  all(): (StageRecord & { name: string })[] {
    const dir = path.join(this.runDir, ".stages");
    if (!fs.existsSync(dir)) return [];
    return fs
      .readdirSync(dir)
      .filter((f) => f.endsWith(".json"))
      .sort()
      .flatMap((f) => {
        const name = f.slice(0, -5).replace(/__/g, "/");
        const r = this.read(name);
        return r ? [{ ...r, name }] : [];
      });
  }

  finish(name: string, key: string, outputs: string[], seconds: number, info?: unknown): void {
    writeJsonAtomic(this.recordFile(name), {
      format: FORMAT,
      key,
      outputs,
      seconds,
      finished_at: new Date().toISOString(),
      ...(info === undefined ? {} : { info }),
    });
    fs.rmSync(path.join(this.runDir, ".stages", `${name.replace(/\//g, "__")}.pending`), { force: true });
  }
}
