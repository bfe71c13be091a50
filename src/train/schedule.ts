// Learning-rate schedules: linear warmup, then cosine or linear decay (to 0 at the last step), or constant.

import { InputError } from "../core/errors.js";

export type ScheduleKind = "cosine" | "linear" | "constant";

export interface Schedule {
  kind: ScheduleKind;
  peak: number; // learning rate after warmup
  warmupSteps: number;
  totalSteps: number;
}

/** The learning rate for optimizer step `step` (0-based); warmup starts above 0, so no step is wasted. */
export function learningRate(s: Schedule, step: number): number {
  if (step < s.warmupSteps) return (s.peak * (step + 1)) / (s.warmupSteps + 1);
  const decaySteps = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / decaySteps);
  switch (s.kind) {
    case "constant":
      return s.peak;
    case "linear":
      return s.peak * (1 - progress);
    case "cosine":
      return s.peak * 0.5 * (1 + Math.cos(Math.PI * progress));
    default:
      return s.kind satisfies never;
  }
}

export function parseSchedule(kind: string): ScheduleKind {
  if (kind === "cosine" || kind === "linear" || kind === "constant") return kind;
  throw new InputError(`unknown --lr-schedule "${kind}"`, undefined, "use cosine, linear or constant");
}
