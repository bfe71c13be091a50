// The unit-test verifier: assembles a program from a model's completion and a problem's tests, runs it in the
// sandbox, and classifies the outcome.
//
// Program = code + tests. Code is the completion's fenced code block(s) when it has any, else the completion; if the
// code does not define the entry point, the problem's prompt goes first (HumanEval-style continuation). JavaScript
// tests see `assert` (node:assert); Python tests that define check(candidate) are called with the entry point.

import { runSandboxed, type Language, type RawRun, type SandboxLimits } from "./sandbox.js";

export interface CodeProblem {
  language: Language;
  tests: string;
  entry_point: string;
  prompt?: string;
}

export type TestStatus = "passed" | "failed" | "timeout" | "error";

export interface TestResult {
  status: TestStatus;
  /** What went wrong, from the program's error output (empty when passed). */
  message: string;
  ms: number;
}

/** "js" | "javascript" | "node" -> "js"; "python" | "py" | "python3" -> "python"; otherwise null. */
export function parseLanguage(s: unknown): Language | null {
  const v = String(s ?? "").toLowerCase();
  if (v === "js" || v === "javascript" || v === "node" || v === "nodejs") return "js";
  if (v === "python" || v === "py" || v === "python3") return "python";
  return null;
}

const FENCE = /```([\w+-]*)[^\n]*\n([\s\S]*?)```/g;

/** The code in a completion: its fenced blocks in the right language (the one defining `entry`, if any). */
export function extractCode(completion: string, language: Language, entry: string): string {
  const blocks: string[] = [];
  for (const m of completion.matchAll(FENCE)) {
    const tag = m[1].toLowerCase();
    if (tag === "" || parseLanguage(tag) === language || (language === "js" && /^(ts|typescript|jsx?)$/.test(tag)))
      blocks.push(m[2]);
  }
  if (blocks.length === 0) return completion;
  const defining = blocks.filter((b) => defines(b, language, entry));
  return defining.length > 0 ? defining[defining.length - 1] : blocks.join("\n");
}

function defines(code: string, language: Language, entry: string): boolean {
  const e = entry.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return language === "python"
    ? new RegExp(`^\\s*(?:async\\s+)?def\\s+${e}\\s*\\(|^${e}\\s*=`, "m").test(code)
    : new RegExp(`function\\s*\\*?\\s*${e}\\s*\\(|(?:const|let|var)\\s+${e}\\s*=|^\\s*${e}\\s*=`, "m").test(code);
}

/** The whole program that is run. */
export function buildProgram(problem: CodeProblem, completion: string): string {
  const { language, entry_point: entry } = problem;
  let code = extractCode(completion, language, entry);
  if (!defines(code, language, entry) && problem.prompt) code = problem.prompt + code;
  if (language === "js") {
    code = code.replace(/^export\s+(?:default\s+)?(?=(?:async\s+)?function|class|const|let|var)/gm, "");
    const own = /\b(?:const|let|var)\s+assert\b/.test(problem.tests);
    return `${code}\n;{\n${own ? "" : 'const assert = require("node:assert");\n'}${problem.tests}\n}\n`;
  }
  const callCheck = /^def\s+check\s*\(/m.test(problem.tests) && !/^check\s*\(/m.test(problem.tests);
  return `${code}\n\n${problem.tests}\n${callCheck ? `\ncheck(${entry})\n` : ""}`;
}

/** Runs the completion against the problem's tests in the sandbox. */
export async function runCodeTests(
  problem: CodeProblem,
  completion: string,
  limits: Partial<SandboxLimits> = {},
): Promise<TestResult> {
  const run = await runSandboxed(problem.language, buildProgram(problem, completion), limits);
  return classify(run, problem.language);
}

const COMPILE_ERRORS = /\b(?:SyntaxError|IndentationError|TabError)\b/;
const MEMORY_ERRORS =
  /\bMemoryError\b|heap out of memory|Array buffer allocation failed|RangeError: Invalid (?:typed )?array length|Cannot allocate memory/;

export function classify(run: RawRun, language: Language): TestResult {
  const ms = Math.round(run.ms);
  const msg = (s: string) => ({ message: s, ms });
  if (run.setupFailed) return { status: "error", ...msg(`sandbox: ${lastLines(run.stderr, 3) || "setup failed"}`) };
  if (run.outputExceeded) return { status: "error", ...msg("output limit exceeded") };
  if (run.timedOut) return { status: "timeout", ...msg("wall-time limit exceeded") };
  if (run.signal === "SIGXCPU") return { status: "timeout", ...msg("CPU-time limit exceeded") };
  if (run.exitCode === 0 && run.signal === null) return { status: "passed", message: "", ms };
  const err = run.stderr;
  if (MEMORY_ERRORS.test(err)) return { status: "error", ...msg(`memory limit: ${errorLine(err, language)}`) };
  if (run.signal === "SIGXFSZ") return { status: "error", ...msg("file-size limit exceeded") };
  if (run.signal !== null)
    return {
      status: "error",
      ...msg(`killed by ${run.signal}${run.signal === "SIGKILL" ? " (memory or process limit)" : ""}`),
    };
  if (COMPILE_ERRORS.test(errorLine(err, language))) return { status: "error", ...msg(errorLine(err, language)) };
  return { status: "failed", ...msg(errorLine(err, language) || `exit code ${run.exitCode}`) };
}

/** The line that names the error: Python's last traceback line, Node's first "XxxError" line. */
function errorLine(stderr: string, language: Language): string {
  const lines = stderr
    .split("\n")
    .map((x) => x.trimEnd())
    .filter((x) => x !== "");
  const named = lines.filter((x) => /^[\w.]*(?:Error|Exception|Exit|Interrupt)\b/.test(x) || /^\w+ \[ERR_/.test(x));
  const pick = language === "python" ? named[named.length - 1] : named[0];
  return (pick ?? lines[lines.length - 1] ?? "").slice(0, 500);
}

function lastLines(s: string, n: number): string {
  return s.trim().split("\n").slice(-n).join(" | ").slice(0, 500);
}
