// What a command is: its flags, help and run function; main.ts holds the table of them and the process boundary.

import type { ParseArgsConfig } from "node:util";

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Flags beyond those its help declares (see flagsOf): a repeatable flag, an alias. */
  options?: NonNullable<ParseArgsConfig["options"]>;
  /** Extra help text: each option's meaning. */
  help: string;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number>;
  /** The flag a rerun needs to continue interrupted work ("--resume"); absent: the same command line resumes. */
  resumeFlag?: string;
  /** The command waits for SIGINT/SIGTERM itself (a server): the boundary installs no handler. */
  ownsSignals?: boolean;
  /**
   * Long work that stops at a safe point on SIGINT/SIGTERM (training steps, sampled batches): the boundary installs
   * the handlers below. Other commands keep Node's default (the signal ends the process at once; outputs are atomic).
   */
  cooperative?: boolean;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * The flags a command's help declares, one a line: `  --name ARG   text` takes a value, `  --name      text` is a
 * switch. A flag is declared once, where it is documented; `options` adds only what help cannot say (a repeatable
 * flag, an undocumented alias).
 */
export function flagsOf(help: string): Options {
  const flags: Options = {};
  for (const line of help.split("\n")) {
    const m = /^ {2,4}--([a-z0-9][a-z0-9-]*)( [^\s]|\s{2,}|$)/.exec(line);
    if (m) flags[m[1]] = { type: m[2].startsWith(" ") && m[2].trim() !== "" ? "string" : "boolean" };
  }
  return flags;
}

/** Every flag a command accepts: those its help declares, and its own `options` over them. */
export function optionsOf(cmd: Command): Options {
  return { ...flagsOf(cmd.help), ...(cmd.options ?? {}) };
}
