// Flags are declared once, in each command's help: `--name ARG  text` takes a value, `--name  text` is a switch.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { flagsOf, optionsOf } from "./command.js";
import { COMMANDS } from "./main.js";
import { BIN } from "./testkit.js";

test("flagsOf: a value flag, a switch, the column layout; a flag in running text is not a declaration", () => {
  const help = [
    "options:",
    "  --out DIR        where",
    "  --resume         go on",
    "  --lr X",
    "see --seed for",
    "  --json",
  ].join("\n");
  assert.deepEqual(flagsOf(help), {
    out: { type: "string" },
    resume: { type: "boolean" },
    lr: { type: "string" },
    json: { type: "boolean" },
  });
});

test("every command's flags: declared once with one type, the training and sampling flags all documented", () => {
  for (const cmd of COMMANDS) {
    const seen = new Map<string, string>();
    for (const line of cmd.help.split("\n")) {
      const one = flagsOf(line);
      for (const [name, o] of Object.entries(one)) {
        const before = seen.get(name);
        assert.ok(
          before === undefined || before === o.type,
          `${cmd.name}: --${name} declared as ${before} and ${o.type}`,
        );
        seen.set(name, o.type);
      }
    }
  }
  const byName = new Map(COMMANDS.map((c) => [c.name, optionsOf(c)]));
  const sft = byName.get("sft")!;
  assert.equal(sft.lr.type, "string");
  assert.equal(sft.resume.type, "boolean");
  assert.equal(sft["lora-targets"].type, "string");
  assert.deepEqual(byName.get("sample")!.stop, { type: "string", multiple: true });
  for (const flag of ["model", "endpoint", "endpoint-model", "retries", "timeout", "threads", "backend"]) {
    for (const c of ["sample", "pairs", "eval"]) assert.equal(byName.get(c)![flag]?.type, "string", `${c} --${flag}`);
  }
});

test("a reader that closes stdout early (stepwise task | head) ends the command quietly, exit 0", async () => {
  const child = spawn(process.execPath, [BIN, "task", "--preset", "easy", "--n", "200000"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  child.stdout.once("data", () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
  assert.equal(code, 0, stderr);
  assert.doesNotMatch(stderr, /EPIPE|Unhandled/);
});
