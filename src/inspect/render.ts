// Pictures of a Credit (credit.ts): a self-contained HTML heatmap, terminal colours, and a plain table; and the
// table of a SequenceScore (`stepwise score`).
//
// Colour: a token's reward r on the scale s = the largest |reward| of the text: white at 0, blending to red for
// r = -s and to green for r = +s (linear in |r| / s). Each step is one line, ended by its summed reward. Newline
// tokens are drawn as a visible "↵" so that their reward shows too.

import type { CompletionToken, Credit, SequenceScore, StepCredit } from "./credit.js";

export type Rgb = [number, number, number];

const WHITE: Rgb = [255, 255, 255];
const RED: Rgb = [220, 38, 38];
const GREEN: Rgb = [22, 163, 74];

/** The heatmap colour of a reward on a scale of +-maxAbs. */
export function rewardColor(reward: number, maxAbs: number): Rgb {
  const x = maxAbs > 0 ? Math.max(-1, Math.min(1, reward / maxAbs)) : 0;
  const end = x < 0 ? RED : GREEN;
  const a = Math.abs(x);
  return [0, 1, 2].map((i) => Math.round(WHITE[i] * (1 - a) + end[i] * a)) as Rgb;
}

const signed = (x: number, digits = 4) => (x >= 0 ? "+" : "") + x.toFixed(digits);

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL_CHARS = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

/** A token's text as drawn: newlines as "↵", other control characters escaped. */
export function visibleText(text: string): string {
  return text
    .replace(/\r?\n/g, "↵")
    .replace(CONTROL_CHARS, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** The tokens of each step, in order. */
function tokensByStep(c: Credit): CompletionToken[][] {
  const out: CompletionToken[][] = c.steps.map(() => []);
  for (const t of c.tokens) out[t.step].push(t);
  return out;
}

// --- HTML ---

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]!);
}

const CSS = `
body { font-family: system-ui, sans-serif; margin: 2em; color: #111; }
.heat { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 15px; line-height: 1.9; }
.prompt { color: #777; white-space: pre-wrap; margin-bottom: .6em; }
.step { display: flex; align-items: baseline; gap: 1em; border-bottom: 1px solid #eee; }
.toks { flex: 1; white-space: pre-wrap; }
.toks span { border-radius: 3px; }
.sum { font-size: 13px; padding: 0 .5em; border-radius: 3px; white-space: nowrap; }
.legend { display: flex; align-items: center; gap: .5em; margin: 1em 0; font-size: 13px; }
.bar { width: 240px; height: 14px; border: 1px solid #ccc;
  background: linear-gradient(to right, rgb(${RED}), rgb(${WHITE}), rgb(${GREEN})); }
.meta { color: #555; font-size: 13px; }`;

function rgbCss([r, g, b]: Rgb): string {
  return `rgb(${r},${g},${b})`;
}

function tokenSpan(t: CompletionToken, scale: number): string {
  const tip =
    `reward ${signed(t.reward, 5)}  log pi ${t.logprob.toFixed(4)}  log pi_ref ${t.ref_logprob.toFixed(4)}  ` +
    `token ${t.id} ${JSON.stringify(t.text)}`;
  return (
    `<span style="background:${rgbCss(rewardColor(t.reward, scale))}" title="${escapeHtml(tip)}">` +
    `${escapeHtml(visibleText(t.text))}</span>`
  );
}

/** A step's line: its tokens, then its sum coloured on the scale of the largest |step sum| (stepScale). */
function stepRow(s: StepCredit, tokens: CompletionToken[], scale: number, stepScale: number): string {
  const tip =
    `step ${s.index + 1}: reward ${signed(s.reward, 5)} over ${s.tokens} tokens, ` +
    `log pi ${s.logprob.toFixed(3)}, log pi_ref ${s.ref_logprob.toFixed(3)}`;
  return (
    `<div class="step"><div class="toks">${tokens.map((t) => tokenSpan(t, scale)).join("")}</div>` +
    `<span class="sum" style="background:${rgbCss(rewardColor(s.reward, stepScale))}" ` +
    `title="${escapeHtml(tip)}">step ${s.index + 1}: ${signed(s.reward)}</span></div>`
  );
}

/** A self-contained HTML page: the prompt in grey, one line per step with its summed reward, a legend. */
export function creditHtml(c: Credit, opts: { title?: string; model?: string; ref?: string } = {}): string {
  const scale = c.max_abs_reward;
  const byStep = tokensByStep(c);
  const stepScale = Math.max(0, ...c.steps.map((s) => Math.abs(s.reward)));
  const title = opts.title ?? "stepwise credit: implicit reward per token";
  const who = opts.model
    ? `policy ${escapeHtml(opts.model)}${opts.ref ? ` vs reference ${escapeHtml(opts.ref)}` : ""}, `
    : "";
  return [
    "<!DOCTYPE html>",
    `<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${CSS}</style></head><body>`,
    `<h2>${escapeHtml(title)}</h2>`,
    `<p class="meta">${who}reward = &beta; &middot; log(&pi;/&pi;<sub>ref</sub>) per token, &beta; = ${c.beta}; ` +
      `total ${signed(c.total_reward)} over ${c.tokens.length} tokens and ${c.steps.length} steps. ` +
      "Hover a token for its values.</p>",
    `<div class="legend"><span>${signed(-scale)}</span><div class="bar"></div><span>${signed(scale)}</span>` +
      "<span>(red: the policy likes the token less than the reference; green: more)</span></div>",
    '<div class="heat">',
    c.prompt ? `<div class="prompt">${escapeHtml(c.prompt)}</div>` : "",
    ...c.steps.map((s, k) => stepRow(s, byStep[k], scale, stepScale)),
    "</div>",
    `<p class="meta">step sums: ${c.steps.map((s) => `${s.index + 1}: ${signed(s.reward)}`).join(", ")}</p>`,
    "</body></html>",
    "",
  ].join("\n");
}

// --- terminal ---

export type ColorMode = "truecolor" | "256";

/**
 * The colours for a terminal: none with "never", or with "auto" when the output is no terminal or NO_COLOR is set;
 * else 24-bit where COLORTERM says so (truecolor, 24bit), 256 colours otherwise.
 */
export function terminalColors(
  when: "auto" | "always" | "never",
  isTTY: boolean,
  env: NodeJS.ProcessEnv = process.env,
): ColorMode | null {
  if (when === "never") return null;
  if (when === "auto" && (!isTTY || (env.NO_COLOR ?? "") !== "")) return null;
  const ct = (env.COLORTERM ?? "").toLowerCase();
  return ct === "truecolor" || ct === "24bit" ? "truecolor" : "256";
}

/** The nearest colour of xterm's 6x6x6 cube (indices 16-231). */
export function ansi256([r, g, b]: Rgb): number {
  const q = (v: number) => (v < 48 ? 0 : v < 115 ? 1 : Math.min(5, Math.floor((v - 35) / 40)));
  return 16 + 36 * q(r) + 6 * q(g) + q(b);
}

function background(rgb: Rgb, mode: ColorMode): string {
  const bg = mode === "truecolor" ? `48;2;${rgb.join(";")}` : `48;5;${ansi256(rgb)}`;
  return `\x1b[30;${bg}m`; // black text: readable on every shade between white and the endpoints
}

const RESET = "\x1b[0m";
const DIM = "\x1b[2m";

/** Coloured text for a terminal: one line per step, its summed reward at the end, a legend below. */
export function creditAnsi(c: Credit, mode: ColorMode = "truecolor"): string {
  const scale = c.max_abs_reward;
  const byStep = tokensByStep(c);
  const lines: string[] = [];
  if (c.prompt) lines.push(DIM + c.prompt.replace(/\n$/, "") + RESET);
  c.steps.forEach((s, k) => {
    const toks = byStep[k]
      .map((t) => background(rewardColor(t.reward, scale), mode) + visibleText(t.text) + RESET)
      .join("");
    lines.push(`${toks}  ${DIM}[step ${s.index + 1}: ${signed(s.reward)}]${RESET}`);
  });
  const ramp = [-1, -0.66, -0.33, 0, 0.33, 0.66, 1]
    .map((x) => background(rewardColor(x, 1), mode) + "  " + RESET)
    .join("");
  lines.push(
    `${DIM}reward ${signed(-scale)}${RESET} ${ramp} ${DIM}${signed(scale)}   total ${signed(c.total_reward)} ` +
      `(beta ${c.beta}, ${c.tokens.length} tokens)${RESET}`,
  );
  return lines.join("\n");
}

/** A plain table (no colour): every token with its step, reward and both log-probs, then the step sums. */
export function creditTable(c: Credit): string {
  const lines = ["  pos  step     reward    logprob  ref_logprob  text"];
  c.tokens.forEach((t, i) => {
    lines.push(
      `${String(i).padStart(5)} ${String(t.step + 1).padStart(5)}  ${signed(t.reward).padStart(9)}  ` +
        `${t.logprob.toFixed(4).padStart(9)}  ${t.ref_logprob.toFixed(4).padStart(11)}  ${JSON.stringify(t.text)}`,
    );
  });
  lines.push("", " step     reward  tokens  text");
  for (const s of c.steps) {
    lines.push(
      `${String(s.index + 1).padStart(5)}  ${signed(s.reward).padStart(9)}  ${String(s.tokens).padStart(6)}  ${JSON.stringify(s.text)}`,
    );
  }
  lines.push(`total reward ${signed(c.total_reward)} (beta ${c.beta})`);
  return lines.join("\n");
}

/** A sequence's scores as a table: every token with its log-prob (and reward against a reference), then the sums. */
export function scoreTable(r: SequenceScore): string {
  const lines = ["  pos      id  logprob     reward  text"];
  const num = (x: number | null | undefined) => (x === null || x === undefined ? "" : x.toFixed(4));
  r.tokens.forEach((t, i) => {
    lines.push(
      `${String(i).padStart(5)} ${String(t.id).padStart(7)}  ${num(t.logprob).padStart(8)}  ` +
        `${num(t.reward).padStart(9)}  ${JSON.stringify(t.text)}`,
    );
  });
  lines.push(
    `total logprob ${r.total_logprob.toFixed(4)}` +
      (r.total_reward !== undefined ? `, total reward ${r.total_reward.toFixed(4)}` : ""),
  );
  return lines.join("\n");
}
