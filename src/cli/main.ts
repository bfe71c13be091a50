// The command-line boundary: parses arguments, runs a command, maps errors to messages and exit codes.
// Nothing below this file calls process.exit.

import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { StepwiseError, InputError, InterruptedError } from "../core/errors.js";
import { requestStop, signalExitCode, type StopSignal } from "../core/interrupt.js";
import { benchCommand } from "./bench.js";
import { type Command, optionsOf } from "./command.js";
import { taskCommand } from "./task.js";
import { verifyCommand } from "./verify.js";
import { sftCommand, dpoCommand } from "./train.js";
import { scoreCommand } from "./score.js";
import { creditCommand } from "./credit.js";
import { searchCommand } from "./search.js";
import { exportCommand } from "./export.js";
import { importCommand } from "./import.js";
import { sampleCommand } from "./sample.js";
import { pairsCommand } from "./pairs.js";
import { serveCommand } from "./serve.js";
import { dashboardCommand } from "./dashboard.js";
import { evalCommand } from "./eval.js";
import { runCommand } from "./run.js";
import { resolveModelFlags } from "./options.js";

export const COMMANDS: Command[] = [
  runCommand,
  benchCommand,
  taskCommand,
  sampleCommand,
  verifyCommand,
  pairsCommand,
  sftCommand,
  dpoCommand,
  evalCommand,
  scoreCommand,
  creditCommand,
  searchCommand,
  exportCommand,
  importCommand,
  serveCommand,
  dashboardCommand,
];

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "stepwise: train reasoning language models cheaply with DPO, Step-DPO and Step-Controlled DPO",
    "",
    "usage: stepwise <command> [options]      stepwise <command> --help",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "models: --model and --ref take a Hugging Face folder, a .gguf file or a name owner/name[@revision], read from the",
    "  local hub cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub) and downloaded into it when",
    "  missing (never with HF_HUB_OFFLINE=1)",
    "environment: STEPWISE_BACKEND=native|reference picks the compute backend (default: native when built)",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(topHelp());
    return name ? 0 : 2;
  }
  if (name === "--version" || name === "-v") {
    console.log(version());
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    console.error(`stepwise: unknown command "${name}"\n\n${topHelp()}`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { ...optionsOf(cmd), help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      console.log(`usage: ${cmd.usage}\n\n${cmd.summary}\n\n${cmd.help}`);
      return 0;
    }
    await resolveModelFlags(values);
    const release = cmd.cooperative && !cmd.ownsSignals ? installSignalHandlers(cmd, argv) : () => {};
    try {
      return await cmd.run(values as Record<string, string | boolean | undefined>, positionals);
    } finally {
      release();
    }
  } catch (e) {
    return report(e, cmd, argv);
  }
}

/** The command line that continues interrupted work: the same one, plus the command's resume flag. */
function resumeLine(cmd: Command, argv: string[]): string {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`);
  const flag = cmd.resumeFlag && !argv.includes(cmd.resumeFlag) ? ` ${cmd.resumeFlag}` : "";
  return `stepwise ${argv.map(quote).join(" ")}${flag}`;
}

/**
 * Ctrl-C and SIGTERM while a command runs. Cooperative work (training, sampling) stops by itself at its next safe
 * point and throws InterruptedError; anything else ends here at once with 128 + the signal number (outputs are
 * written atomically, so nothing half-written stays). A second signal always ends the process at once.
 */
function installSignalHandlers(cmd: Command, argv: string[]): () => void {
  let seen = 0;
  const on = (signal: StopSignal) => {
    seen++;
    if (seen === 1 && requestStop(signal)) {
      process.stderr.write(
        `\nstepwise ${cmd.name}: ${signal}: stopping after the current step (again to quit at once)\n`,
      );
      return;
    }
    process.stderr.write(
      `\nstepwise ${cmd.name}: interrupted by ${signal}; finished outputs are kept, partial ones ` +
        `were never renamed into place\n  to go on: ${resumeLine(cmd, argv)}\n`,
    );
    process.exit(signalExitCode(signal));
  };
  const onInt = () => on("SIGINT");
  const onTerm = () => on("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  return () => {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  };
}

function report(e: unknown, cmd: Command, argv: string[]): number {
  if (e instanceof InterruptedError) {
    console.error(`stepwise ${cmd.name}: ${e.message}\n  to resume: ${resumeLine(cmd, argv)}`);
    return e.exitCode;
  }
  if (e instanceof StepwiseError) {
    console.error(`stepwise ${cmd.name}: ${e.message}`);
    return e instanceof InputError ? 2 : 1;
  }
  const code = (e as { code?: string }).code;
  if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
    console.error(`stepwise ${cmd.name}: ${(e as Error).message}\nusage: ${cmd.usage}`);
    return 2;
  }
  console.error(`stepwise ${cmd.name}: internal error: ${(e as Error).stack ?? e}`);
  return 1;
}
