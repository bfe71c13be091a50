// Verifiers: pure functions of text (plus the sandbox for code). Nothing here imports the engine.

import { InputError } from "../core/errors.js";
import { parseLanguage, runCodeTests, type TestResult } from "./code.js";
import { verifySolution, type MathTask, type Task, type Verdict } from "./record.js";
import type { SandboxLimits } from "./sandbox.js";

export * from "./answer.js";
export * from "./calculator.js";
export * from "./code.js";
export * from "./record.js";
export { checkMathAnswer, mathAnswersEqual, type MathCheckOptions, type MathVerdict } from "./math.js";
export {
  extractFinal,
  DEFAULT_TARGETS,
  type ExtractionTarget,
  type ExtractOptions,
  type Extracted,
} from "./extract.js";
export { Rational } from "./rational.js";
export { evalString } from "./expr.js";
export { splitSteps, hasStepMarkers, type StepSpan } from "./steps.js";
export {
  detectSandbox,
  runSandboxed,
  DEFAULT_LIMITS,
  type SandboxInfo,
  type SandboxLimits,
  type SandboxMode,
} from "./sandbox.js";

export const TASKS: readonly Task[] = ["arith", "gsm8k", "math", "code"];

/** A record after verification: the input's fields plus the verdict (and, for code, the test result). */
export type VerifiedRecord = Record<string, unknown> & Verdict & { result?: TestResult };

function field(rec: Record<string, unknown>, key: string, where: string | undefined): string {
  const v = rec[key];
  if (typeof v === "string") return v;
  if (typeof v === "number" && key === "answer") return String(v);
  throw new InputError(
    v === undefined ? `missing field "${key}"` : `field "${key}" must be a string`,
    where,
    key === "completion" ? 'verify reads sample records: {"completion", "answer", ...}' : undefined,
  );
}

/** Verifies a math record ({completion, answer}); throws InputError (naming `where`) for missing fields. */
export function verifyMathRecord(rec: Record<string, unknown>, task: MathTask, where?: string): VerifiedRecord {
  const v = verifySolution(field(rec, "completion", where), field(rec, "answer", where), task);
  return { ...rec, ...v };
}

/** Verifies a code record ({completion, tests, entry_point, language, prompt?}) in the sandbox. */
export async function verifyCodeRecord(
  rec: Record<string, unknown>,
  limits: Partial<SandboxLimits> = {},
  where?: string,
): Promise<VerifiedRecord> {
  const completion = field(rec, "completion", where);
  const tests = field(rec, "tests", where);
  const entry = field(rec, "entry_point", where);
  const language = parseLanguage(rec.language);
  if (!language) throw new InputError(`language must be "js" or "python", got ${JSON.stringify(rec.language)}`, where);
  const prompt = typeof rec.prompt === "string" ? rec.prompt : undefined;
  const result = await runCodeTests({ language, tests, entry_point: entry, prompt }, completion, limits);
  const correct = result.status === "passed" ? true : result.message.startsWith("sandbox:") ? null : false;
  return { ...rec, correct, pred: null, steps: [], first_error_step: null, result };
}

export async function verifyRecord(
  rec: Record<string, unknown>,
  task: Task,
  limits: Partial<SandboxLimits> = {},
  where?: string,
): Promise<VerifiedRecord> {
  return task === "code" ? verifyCodeRecord(rec, limits, where) : verifyMathRecord(rec, task, where);
}
