// Step-level beam search guided by the implicit reward (Rafailov et al. 2024, "Your language model is secretly a
// Q-function", section on search): a partial solution's score is the sum of beta * log(pi / pi_ref) over the tokens
// generated so far (or, with score "logprob", the policy's own summed log-prob).
//
// Each round, every live beam proposes candidate next steps (one line each: generation stops after a newline, at
// EOS, or when the token budget is spent): the greedy line plus `expand` lines sampled at `temperature`, duplicates
// dropped. The pool of finished beams and every live beam's extensions is ranked by accumulated score and the best
// K are kept (ties: the earlier parent and the greedy candidate first). A beam is finished at EOS, after a
// "#### n" line, or when the token budget is spent; the search stops when every kept beam is finished or after
// maxSteps rounds. The answer is the top beam's.
//
// With K = 1 and expand = 0 every round keeps the greedy line, so the search is greedy decoding one line at a
// time: it gives greedy decoding's text (each round re-reads the prefix in one prefill instead of continuing a KV
// cache, which rounds differently in the last bits; an argmax that close to a tie could in principle differ), cut
// after the "#### n" line (cutAfterAnswer). The candidates of all problems and beams of a round are generated in
// one batched generate() call and scored by each model in one scoreTokens() call.

import { InputError } from "../core/errors.js";
import { promptText, type PromptTemplate } from "../data/format.js";
import { Detokenizer, generate, sequenceSeed } from "../model/generate.js";
import type { Llama } from "../model/llama.js";
import { scoreTokens } from "../model/score.js";
import type { TextTokenizer } from "../model/tokenizer.js";
import { verifySolution, type MathTask } from "../verify/record.js";
import { tokenRewards } from "./credit.js";

export interface StepCandidate {
  tokens: number[]; // the step's new tokens (its newline or EOS included)
  text: string; // the text they add
  done: boolean; // the solution ends with this step
  score: number; // what the step adds to the beam's score
}

export interface Beam {
  tokens: number[]; // every generated token
  text: string;
  score: number; // accumulated over steps
  stepScores: number[];
  done: boolean;
}

/** A live beam of a problem, with its rank among that problem's beams. */
export interface LiveBeam {
  problem: number;
  rank: number;
  beam: Beam;
}

/** Proposes and scores the candidate next steps of live beams. */
export interface StepProposer {
  propose(live: LiveBeam[], round: number): StepCandidate[][];
}

export const EMPTY_BEAM: Beam = { tokens: [], text: "", score: 0, stepScores: [], done: false };

function extend(b: Beam, c: StepCandidate): Beam {
  return {
    tokens: [...b.tokens, ...c.tokens],
    text: b.text + c.text,
    score: b.score + c.score,
    stepScores: [...b.stepScores, c.score],
    done: c.done,
  };
}

/** The best k beams by score, duplicates (same tokens) dropped; ties keep pool order. */
export function selectBeams(pool: Beam[], k: number): Beam[] {
  const seen = new Set<string>();
  const unique = pool.filter((b) => {
    const key = b.tokens.join(",");
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return unique
    .map((b, i) => ({ b, i }))
    .sort((x, y) => y.b.score - x.b.score || x.i - y.i)
    .slice(0, k)
    .map((x) => x.b);
}

export interface BeamSearchOptions {
  beams: number; // K kept per problem
  maxSteps: number; // rounds at most; beams still live after them end there
  onRound?: (round: number, live: number) => void;
}

/** Beam search over steps for `problems` problems; each problem's final beams, best first. */
export function beamSearch(problems: number, proposer: StepProposer, opts: BeamSearchOptions): Beam[][] {
  if (!Number.isInteger(opts.beams) || opts.beams < 1)
    throw new InputError(`beams must be an integer >= 1, got ${opts.beams}`);
  let beams: Beam[][] = Array.from({ length: problems }, () => [EMPTY_BEAM]);
  for (let round = 0; round < opts.maxSteps; round++) {
    const live: LiveBeam[] = beams.flatMap((bs, problem) =>
      bs.flatMap((beam, rank) => (beam.done ? [] : [{ problem, rank, beam }])),
    );
    if (live.length === 0) break;
    opts.onRound?.(round, live.length);
    const cands = proposer.propose(live, round);
    const next = new Map(live.map((l, i) => [`${l.problem}:${l.rank}`, cands[i]]));
    beams = beams.map((bs, p) =>
      selectBeams(
        bs.flatMap((b, r) => (b.done ? [b] : next.get(`${p}:${r}`)!.map((c) => extend(b, c)))),
        opts.beams,
      ),
    );
  }
  return beams.map((bs) => bs.map((b) => ({ ...b, done: true })));
}

/** The text up to and including the first "#### n" line (its newline too); the whole text when there is none. */
export function cutAfterAnswer(text: string): string {
  const m = /^[ \t]*####[^\n]*\n?/m.exec(text);
  return m ? text.slice(0, m.index + m[0].length) : text;
}

const isAnswerLine = (stepText: string) => /^\s*####/.test(stepText);

export type SearchScore = "reward" | "logprob";

export interface LmProposerOptions {
  expand: number; // sampled candidates per beam, besides the greedy one
  temperature: number; // of the sampled candidates
  score: SearchScore;
  beta: number;
  maxTokens: number; // generated tokens per solution at most
  seed: number;
  batchSize: number; // rows generate() and scoreTokens() run together
}

/** Candidates from the policy's KV-cache generation, scored by policy and reference (one batch each per round). */
export class LmStepProposer implements StepProposer {
  constructor(
    private readonly policy: Llama,
    private readonly ref: Llama | null,
    private readonly tokenizer: TextTokenizer,
    private readonly prompts: number[][],
    private readonly o: LmProposerOptions,
  ) {
    if (o.score === "reward" && !ref) throw new InputError("scoring by implicit reward needs a reference model");
  }

  propose(live: LiveBeam[], round: number): StepCandidate[][] {
    const per = this.o.expand + 1; // row j = 0 of a beam is greedy
    const rows = live.flatMap((l) =>
      Array.from({ length: per }, (_, j) => ({
        prompt: [...this.prompts[l.problem], ...l.beam.tokens],
        seed: sequenceSeed(sequenceSeed(sequenceSeed(this.o.seed, l.problem), round), l.rank * per + j),
      })),
    );
    const maxNew = Math.max(...live.map((l) => this.o.maxTokens - l.beam.tokens.length));
    const gens = generate(this.policy, this.tokenizer, rows, {
      maxTokens: maxNew,
      maxSteps: 1,
      batchSize: this.o.batchSize,
      stepTemperature: (_step, seq) => (seq % per === 0 ? 0 : this.o.temperature),
    });
    const cands = live.map((l, i) => {
      const seen = new Set<string>();
      const out: StepCandidate[] = [];
      for (const g of gens.slice(i * per, (i + 1) * per)) {
        const c = this.candidate(l.beam, this.prompts[l.problem], g.tokens, g.text, g.finishReason);
        const key = c.tokens.join(",");
        if (!seen.has(key)) out.push(c);
        seen.add(key);
      }
      return out;
    });
    this.score(live, cands);
    return cands;
  }

  /** A generated step cut to the beam's token budget, with its finish state. */
  private candidate(beam: Beam, prompt: number[], tokens: number[], text: string, finish: string): StepCandidate {
    const budget = this.o.maxTokens - beam.tokens.length;
    if (tokens.length > budget) {
      tokens = tokens.slice(0, budget); // the same tokens a generation stopped at the budget would have made
      const detok = new Detokenizer(this.tokenizer, [...prompt, ...beam.tokens]);
      text = tokens.map((id) => detok.push(id)).join("") + detok.flush();
    }
    const done = finish !== "stop" || tokens.length >= budget || isAnswerLine(text);
    return { tokens, text, done, score: 0 };
  }

  /** Sets each candidate's score: the summed reward (or policy log-prob) of its tokens given the beam's prefix. */
  private score(live: LiveBeam[], cands: StepCandidate[][]): void {
    const flat = live.flatMap((l, i) => cands[i].map((c) => ({ l, c })));
    const seqs = flat.map(({ l, c }) => [...this.prompts[l.problem], ...l.beam.tokens, ...c.tokens]);
    const opts = { batchSize: this.o.batchSize };
    const lps = scoreTokens(this.policy, seqs, opts);
    const refLps = this.o.score === "reward" ? scoreTokens(this.ref!, seqs, opts) : null;
    flat.forEach(({ c }, i) => {
      const from = lps[i].length - c.tokens.length; // the candidate's own tokens
      const lp = lps[i].subarray(from);
      const perToken = refLps ? tokenRewards(lp, refLps[i].subarray(from), this.o.beta) : lp;
      let s = 0;
      for (const x of perToken) s += x;
      c.score = s;
    });
  }
}

export interface SearchProblem {
  id: string;
  question: string;
  answer: string; // reference solution or final answer
}

export interface SearchOptions extends LmProposerOptions {
  beams: number;
  maxSteps: number;
  template: PromptTemplate;
  task: MathTask;
  chunk?: number; // problems searched together, default 16
  onProgress?: (done: number, total: number) => void;
}

export interface SearchRecord {
  id: string;
  greedy: string; // greedy completion, cut after the answer line
  beam: string; // the top beam's completion
  beam_score: number;
  greedy_correct: boolean | null;
  beam_correct: boolean | null;
  greedy_pred: string | null;
  beam_pred: string | null;
}

export interface SearchResult {
  n: number;
  greedy_accuracy: number;
  beam_accuracy: number;
  beams: number;
  expand: number;
  temperature: number;
  score: SearchScore;
  beta: number;
  max_steps: number;
  both_correct: number; // problems both got right
  beam_only: number; // beam search right, greedy wrong
  greedy_only: number;
  records: SearchRecord[];
}

/** Greedy decoding of whole solutions (the baseline): at most maxSteps lines and maxTokens tokens, cut after "####". */
export function greedyDecode(
  policy: Llama,
  tokenizer: TextTokenizer,
  prompts: number[][],
  opts: { maxTokens: number; maxSteps: number; batchSize: number },
): string[] {
  const { maxTokens, maxSteps, batchSize } = opts;
  return generate(policy, tokenizer, prompts, { temperature: 0, maxTokens, maxSteps, batchSize }).map((g) =>
    cutAfterAnswer(g.text),
  );
}

/** Greedy decoding and beam search on every problem, each verified against its reference answer. */
export function searchProblems(
  policy: Llama,
  ref: Llama | null,
  tokenizer: TextTokenizer,
  problems: SearchProblem[],
  o: SearchOptions,
): SearchResult {
  const records: SearchRecord[] = [];
  const chunk = o.chunk ?? 16;
  for (let a = 0; a < problems.length; a += chunk) {
    const ps = problems.slice(a, a + chunk);
    const prompts = ps.map((p) => tokenizer.encode(promptText(p.question, o.template, tokenizer)));
    const greedy = greedyDecode(policy, tokenizer, prompts, o);
    const proposer = new LmStepProposer(policy, ref, tokenizer, prompts, o);
    const beams = beamSearch(ps.length, proposer, o);
    ps.forEach((p, i) => {
      const best = beams[i][0];
      const g = verifySolution(greedy[i], p.answer, o.task);
      const b = verifySolution(cutAfterAnswer(best.text), p.answer, o.task);
      records.push({
        id: p.id,
        greedy: greedy[i],
        beam: cutAfterAnswer(best.text),
        beam_score: best.score,
        greedy_correct: g.correct,
        beam_correct: b.correct,
        greedy_pred: g.pred,
        beam_pred: b.pred,
      });
    });
    o.onProgress?.(a + ps.length, problems.length);
  }
  const n = records.length;
  const count = (f: (r: SearchRecord) => boolean) => records.filter(f).length;
  return {
    n,
    greedy_accuracy: n ? count((r) => r.greedy_correct === true) / n : 0,
    beam_accuracy: n ? count((r) => r.beam_correct === true) / n : 0,
    beams: o.beams,
    expand: o.expand,
    temperature: o.temperature,
    score: o.score,
    beta: o.beta,
    max_steps: o.maxSteps,
    both_correct: count((r) => r.greedy_correct === true && r.beam_correct === true),
    beam_only: count((r) => r.beam_correct === true && r.greedy_correct !== true),
    greedy_only: count((r) => r.greedy_correct === true && r.beam_correct !== true),
    records,
  };
}
