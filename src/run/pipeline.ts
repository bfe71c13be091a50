// The whole recipe as cached stages: task -> SFT -> eval -> sample -> verify -> pairs (outcome, SCDPO, Step-DPO)
// -> one DPO variant per config entry, each from the same SFT checkpoint -> eval each -> report.
//
// Every stage is the library function a command wraps (`stepwise sft`, `sample`, `verify`, `pairs`, `dpo`), called
// with the typed config the run config gives it, so the run directory holds exactly what those commands write.
// Stages are keyed by stage.ts's hash chain: a rerun skips what is finished, and after a kill the same command
// picks up where it stopped (training resumes from its last checkpoint, sampling from its last fsynced batch).
//
// Layout of a run directory (per seed s; round r > 1 nests under round-r/):
//   config.json                 the resolved config
//   data/train.jsonl, test.jsonl  problems; data/sft.jsonl, sample.jsonl  what SFT trains on and the SFT model samples on
//   seed-s/sft/                 SFT model folder (+ metrics.jsonl, checkpoints/)
//   seed-s/samples.jsonl, verified.jsonl, sc-samples.jsonl, sc-verified.jsonl
//   seed-s/greedy-samples.jsonl, all-samples.jsonl  with sample.greedy: the greedy solutions, joined to the samples
//   seed-s/pairs/{outcome,scdpo,stepdpo}.jsonl  (a variant's builder options name theirs: outcome.first_error.jsonl,
//                               stepdpo.corrected.jsonl; variant-NAME.jsonl: the sets a variant trains on together)
//   seed-s/<variant>/           DPO model folders         seed-s/eval/<name>.json, .jsonl   evals
//   report.json, report.html    .stages/                  stage records

import { writeFileAtomic, writeJsonAtomic, writeJsonlAtomic } from "../core/atomic.js";
import fs from "node:fs";
import path from "node:path";
import { getBackend } from "../backend/index.js";
import { InputError, InterruptedError } from "../core/errors.js";
import { stopOf, type StageContext } from "../core/stage.js";
import { readJsonl } from "../data/jsonl.js";
import { loadGsm8k, type MathProblem } from "../data/load.js";
import { noisyAnswer } from "../data/noise.js";
import { taskConfig, writeTask } from "../data/task-stage.js";
import { evaluate, type EvalResult } from "../eval/eval.js";
import { resolveModel, type ResolveOptions } from "../model/hubcache.js";
import { pairsConfig, writePairs } from "../pairs/stage.js";
import { LocalCompleter } from "../sample/local.js";
import { sample, sampleConfig, type SampleConfig } from "../sample/stage.js";
import { dpo, dpoConfig, sft, sftConfig } from "../train/stage.js";
import { verifyConfig, verifyFile } from "../verify/stage.js";
import type { RunConfig, VariantConfig } from "./config.js";
import { StageCache, stageKey } from "./stages.js";

export interface EvalSummary extends EvalResult {
  name: string;
  seed: number;
  round: number;
}

/** A variant that had nothing to train on (its model folder holds SKIPPED instead of weights). */
export interface SkippedVariant {
  name: string;
  seed: number;
  round: number;
  reason: string;
}

const SKIPPED = "SKIPPED.json";

export interface PipelineResult {
  evals: EvalSummary[]; // every eval of every seed and round, SFT included
  skipped: SkippedVariant[];
  seconds: number;
}

export interface PipelineOptions extends StageContext {
  /** Stop after this many stages have run (not counting skipped ones): tests use it to simulate a kill. */
  stopAfter?: number;
  /** How a pretrained model named by Hugging Face name is fetched into the local hub cache (a progress bar). */
  resolve?: ResolveOptions;
}

class Stopped extends Error {}

/** One pair set: a kind built with given options; `name` is its file name in pairs/. */
interface PairSpec {
  kind: string;
  chosen: string;
  rejected: string;
  stepChosen: string;
  name: string;
}

export class Pipeline {
  private readonly cache: StageCache;
  private readonly log: (msg: string) => void;
  private ran = 0;
  readonly evals: EvalSummary[] = [];
  readonly skipped: SkippedVariant[] = [];

  private pretrained: string | null = null; // model.pretrained as a local folder or .gguf file

  private readonly ctx: StageContext;

  constructor(
    readonly dir: string,
    readonly config: RunConfig,
    private readonly opts: PipelineOptions = {},
  ) {
    this.cache = new StageCache(dir);
    this.log = opts.log ?? ((m) => process.stderr.write(`${m}\n`));
    // The stages warn through the run's log, prefixed as the commands would be.
    this.ctx = { log: (m) => this.log(`stepwise: ${m}`), progress: opts.progress, signal: opts.signal };
  }

  private rel(...p: string[]): string {
    return path.join(...p);
  }

  private abs(rel: string): string {
    return path.join(this.dir, rel);
  }

  /** Runs `body` unless the stage is done under `key`; returns the stage's key either way. */
  private async stage(name: string, key: string, outputs: string[], body: () => Promise<unknown>): Promise<string> {
    if (this.cache.done(name, key)) {
      this.log(`stepwise run: ${name}: done (cached)`);
      return key;
    }
    if (this.opts.stopAfter !== undefined && this.ran >= this.opts.stopAfter) throw new Stopped(name);
    const signal = stopOf(this.ctx);
    if (signal) throw new InterruptedError(signal, `stopped before stage ${name}; the finished stages are kept`);
    this.log(`stepwise run: ${name}`);
    this.cache.begin(name, key, outputs);
    for (const o of outputs) fs.mkdirSync(path.dirname(this.abs(o)), { recursive: true });
    const t0 = performance.now();
    const info = await body();
    this.cache.finish(name, key, outputs, (performance.now() - t0) / 1000, info);
    this.ran++;
    return key;
  }

  /** A chat template needs the policy's tokenizer even in the stages that run no model (pairs). */
  private chatTokenizer(policyDir: string): { model?: string } {
    return this.config.model.template === "plain" ? {} : { model: this.abs(policyDir) };
  }

  /**
   * What the SFT stage's key hashes of the model and SFT configs: the knobs added for pretrained models are left out
   * at their defaults, so the stages of a from-scratch run keep the keys they had before those knobs existed.
   */
  private sftKeyParts(): unknown[] {
    const { pretrained, template, ...scratch } = this.config.model;
    // Knobs at their old defaults stay out of the key, so earlier run directories stay cached.
    const { lora, lr_schedule, ...rest } = this.config.sft;
    const sft = lr_schedule === "cosine" ? rest : { ...rest, lr_schedule };
    const model = pretrained === null ? scratch : { pretrained };
    return [template === "plain" ? model : { ...model, template }, lora === null ? sft : { ...sft, lora }];
  }

  async run(): Promise<PipelineResult> {
    const t0 = performance.now();
    fs.mkdirSync(this.dir, { recursive: true });
    writeJsonAtomic(this.abs("config.json"), this.config);
    try {
      const keys = await this.data();
      // A pretrained model by Hugging Face name comes from the local hub cache (downloaded there when missing).
      const p = this.config.model.pretrained;
      if (p !== null) this.pretrained = await resolveModel(p, this.opts.resolve);
      if (this.config.threads !== null) getBackend().setThreads(this.config.threads);
      for (let s = 1; s <= this.config.seeds; s++) await this.seed(s, keys);
    } catch (e) {
      if (e instanceof Stopped) this.log(`stepwise run: stopped before ${e.message}`);
      else throw e;
    }
    return { evals: this.evals, skipped: this.skipped, seconds: (performance.now() - t0) / 1000 };
  }

  /** task as stage keys hash it: a built-in task without the knobs added for files (so its keys stay as they were). */
  private taskKeyPart(): unknown {
    const { source, train_file, test_file, ...builtin } = this.config.task;
    return source === "builtin" ? builtin : this.config.task;
  }

  /** The verifier of the run's problems: the built-in task's calculator, or GSM8K's. */
  private get verifier(): "arith" | "gsm8k" {
    return this.config.task.source === "gsm8k" ? "gsm8k" : "arith";
  }

  private async data(): Promise<{ sft: string; sample: string }> {
    const t = this.config.task;
    // A built-in task keeps the key it had before task.source existed; a file's size and time are part of the key.
    const { source, train_file, test_file } = t;
    const stamp = (f: string) => ({ file: path.resolve(f), size: fs.statSync(f).size, mtime: fs.statSync(f).mtimeMs });
    const key =
      source === "builtin"
        ? stageKey("data", this.taskKeyPart())
        : stageKey("data", {
            source,
            train: t.train,
            test: t.test,
            train_file: stamp(train_file!),
            test_file: stamp(test_file!),
          });
    const task = (split: string, n: number) =>
      taskConfig({ preset: t.preset, steps: t.steps, max_value: t.max_value, n, seed: t.seed, split });
    const dataKey = await this.stage("data", key, ["data/train.jsonl", "data/test.jsonl"], async () => {
      if (source === "gsm8k") {
        await this.copyGsm8k(train_file!, t.train, "data/train.jsonl", "task.train");
        await this.copyGsm8k(test_file!, t.test, "data/test.jsonl", "task.test");
        return;
      }
      await writeTask(task("train", t.train), this.abs("data/train.jsonl"), this.ctx);
      await writeTask(task("test", t.test), this.abs("data/test.jsonl"), this.ctx);
    });
    // The problems SFT trains on and those the SFT model samples on: the same set, or disjoint halves of task.train.
    const { problems, split } = this.config.sample;
    const sftCount = split === "shared" ? t.train : t.train - problems;
    const splitKey = await this.stage(
      "split",
      stageKey("split", dataKey, problems, split),
      ["data/sft.jsonl", "data/sample.jsonl"],
      async () => {
        const all: Record<string, unknown>[] = [];
        for await (const { value } of readJsonl(this.abs("data/train.jsonl"))) all.push(value);
        // What SFT trains on may carry flawed reasoning (task.noise); the problems the SFT model samples on stay clean.
        let noisy = 0;
        const sft = all.slice(0, sftCount).map((p) => {
          const answer = noisyAnswer(String(p.answer), String(p.id), t.noise, t.seed);
          if (answer === p.answer) return p;
          noisy++;
          return { ...p, answer, clean_answer: p.answer };
        });
        await writeJsonlAtomic(this.abs("data/sft.jsonl"), sft);
        await writeJsonlAtomic(
          this.abs("data/sample.jsonl"),
          split === "shared" ? all.slice(0, problems) : all.slice(t.train - problems),
        );
        if (t.noise.kind !== "none")
          this.log(`stepwise run: task.noise ${t.noise.kind} changed ${noisy} of ${sft.length} SFT solutions`);
        return { noisy_sft_solutions: noisy };
      },
    );
    // SFT depends on its own problems only, so a change of sample.problems alone does not retrain it.
    return { sft: stageKey("sft-data", dataKey, sftCount), sample: splitKey };
  }

  /** The first n problems of a GSM8K-format file as {id, question, answer, final} records. */
  private async copyGsm8k(file: string, n: number, out: string, knob: string): Promise<void> {
    const problems: MathProblem[] = [];
    for await (const p of loadGsm8k(file)) {
      if (problems.length === n) break;
      problems.push(p);
    }
    if (problems.length < n)
      throw new InputError(`${knob} is ${n}, but the file has ${problems.length} problems`, file);
    await writeJsonlAtomic(this.abs(out), problems);
  }

  private async seed(seed: number, data: { sft: string; sample: string }): Promise<void> {
    const c = this.config;
    const base = `seed-${seed}`;
    const sftDir = this.rel(base, "sft");
    const start =
      this.pretrained !== null
        ? { model: path.resolve(this.pretrained) }
        : { init: c.model.init, tokenizer: c.model.tokenizer, vocab_size: c.model.vocab_size };
    const lora = c.sft.lora === null ? {} : { lora: c.sft.lora, merge: true };
    const sftKey = await this.stage(
      `${base}/sft`,
      stageKey("sft", data.sft, ...this.sftKeyParts(), seed),
      [sftDir],
      () =>
        sft(
          sftConfig({
            ...start,
            ...lora,
            template: c.model.template,
            data: this.abs("data/sft.jsonl"),
            out: this.abs(sftDir),
            epochs: c.sft.epochs,
            batch_size: c.sft.batch_size,
            lr: c.sft.lr,
            max_length: c.sft.max_length,
            seed,
            save_every: 100,
            resume: true,
            bucket: c.sft.bucket,
            lr_schedule: c.sft.lr_schedule,
          }),
          this.ctx,
        ),
    );
    await this.evaluate(`${base}/eval-sft`, sftKey, sftDir, this.rel(base, "eval", "sft"), "sft", seed, 1);
    // Each variant's chain: round 1 starts from SFT; round r samples with, and is referenced to, its round r-1 model.
    let policies = new Map<string, { dir: string; key: string }>(
      c.variants.map((v) => [v.name, { dir: sftDir, key: sftKey }]),
    );
    for (let round = 1; round <= c.rounds; round++) {
      const next = new Map<string, { dir: string; key: string }>();
      // In round 1 every variant shares the SFT model, so the data stages run once.
      // A chain whose variant had nothing to train on (skipped) ends there.
      const groups = round === 1 ? [c.variants] : c.variants.filter((v) => policies.has(v.name)).map((v) => [v]);
      for (const group of groups) {
        const policy = policies.get(group[0].name)!;
        const roundDir = round === 1 ? base : this.rel(base, `round-${round}`, group[0].name);
        const pairs = await this.pairStages(roundDir, policy, seed, group, data.sample);
        for (const v of group) {
          const outDir = round === 1 ? this.rel(base, v.name) : this.rel(roundDir, v.name);
          const key = await this.train(v, outDir, policy, pairs, seed, data.sft);
          const evalName = round === 1 ? v.name : `${v.name}-round${round}`;
          await this.evaluate(`${outDir}/eval`, key, outDir, this.rel(base, "eval", evalName), v.name, seed, round);
          if (!fs.existsSync(this.abs(path.join(outDir, SKIPPED)))) next.set(v.name, { dir: outDir, key });
        }
      }
      policies = next;
    }
  }

  /** The pair set a variant trains on for one kind: the kind and the builder options the variant overrides. */
  private spec(v: VariantConfig, kind: string): PairSpec {
    const p = this.config.pairs;
    const chosen = v.chosen ?? p.chosen;
    const rejected = v.rejected ?? p.rejected;
    const stepChosen = v.stepdpo_chosen ?? p.stepdpo_chosen;
    // Only the options the kind's builder reads name its file: outcome.first_error.jsonl, stepdpo.corrected.jsonl.
    const opts =
      kind === "outcome"
        ? [chosen === "sound" ? "" : chosen, rejected === "full" ? "" : rejected]
        : kind === "scdpo"
          ? [rejected === "full" ? "" : rejected]
          : [stepChosen === "rollout" ? "" : stepChosen];
    return { kind, chosen, rejected, stepChosen, name: [kind, ...opts.filter(Boolean)].join(".") };
  }

  /** Samples, verifies and builds the pair sets the group needs; returns each set's file and key, by spec name. */
  private async pairStages(
    dir: string,
    policy: { dir: string; key: string },
    seed: number,
    group: VariantConfig[],
    sampleKey: string,
  ) {
    const c = this.config;
    // A variant that replays the outcome pairs' chosen sides needs those pairs even when it does not train on them.
    const needed = (v: VariantConfig) => [...v.pairs, ...(v.replay === "chosen" ? ["outcome"] : [])];
    const specs = new Map(group.flatMap((v) => needed(v).map((k) => this.spec(v, k))).map((s) => [s.name, s]));
    const kinds = new Set([...specs.values()].map((s) => s.kind));
    const out = new Map<string, { file: string; key: string }>();
    const problems = "data/sample.jsonl";
    const probKey = stageKey("problems", policy.key, sampleKey);
    const sampling = {
      model: this.abs(policy.dir),
      problems: this.abs(problems),
      max_tokens: c.sample.max_tokens,
      seed,
      template: c.model.template,
    };
    if (kinds.has("outcome") || kinds.has("stepdpo")) {
      const vKey = await this.sampleAndVerify(dir, probKey, sampling, seed);
      for (const spec of specs.values()) {
        if (spec.kind === "scdpo") continue;
        const file = this.rel(dir, "pairs", `${spec.name}.jsonl`);
        // Step-DPO's rollouts sample with the policy; the other kinds read its tokenizer for a chat template.
        const extra =
          spec.kind === "stepdpo"
            ? { model: this.abs(policy.dir), rollouts: c.pairs.stepdpo_rollouts, seed, max_tokens: c.sample.max_tokens }
            : this.chatTokenizer(policy.dir);
        const key = await this.stage(
          `${dir}/pairs-${spec.name}`,
          stageKey("pairs", spec, vKey, c.pairs.max_per_problem, c.pairs.stepdpo_rollouts, seed),
          [file],
          () => this.pairs(spec, { ...extra, in: this.abs(this.rel(dir, "verified.jsonl")), out: this.abs(file) }),
        );
        out.set(spec.name, { file, key });
      }
    }
    if (kinds.has("scdpo")) {
      const samples = this.rel(dir, "sc-samples.jsonl");
      const verified = this.rel(dir, "sc-verified.jsonl");
      const sKey = await this.stage(
        `${dir}/sample-sc`,
        stageKey("sample-sc", probKey, c.sample.max_tokens, c.pairs.scdpo_n, c.pairs.scdpo_schedule, seed),
        [samples, `${samples}.config.json`],
        () =>
          this.sample({
            ...sampling,
            n: c.pairs.scdpo_n,
            step_temperature: c.pairs.scdpo_schedule,
            cut: "random",
            out: this.abs(samples),
          }),
      );
      const vKey = await this.stage(`${dir}/verify-sc`, stageKey("verify", sKey), [verified], () =>
        verifyFile(verifyConfig({ task: this.verifier, in: this.abs(samples), out: this.abs(verified) }), this.ctx),
      );
      for (const spec of specs.values()) {
        if (spec.kind !== "scdpo") continue;
        const file = this.rel(dir, "pairs", `${spec.name}.jsonl`);
        const key = await this.stage(
          `${dir}/pairs-${spec.name}`,
          stageKey("pairs", spec, vKey, c.pairs.max_per_problem),
          [file],
          () => this.pairs(spec, { ...this.chatTokenizer(policy.dir), in: this.abs(verified), out: this.abs(file) }),
        );
        out.set(spec.name, { file, key });
      }
    }
    return out;
  }

  /** One pair set of the built-in task: the spec's builder options plus `rest` (in, out, the policy for rollouts). */
  private pairs(spec: PairSpec, rest: Record<string, unknown>) {
    return writePairs(
      pairsConfig({
        ...rest,
        template: this.config.model.template,
        kind: spec.kind,
        task: this.verifier,
        max_pairs_per_problem: this.config.pairs.max_per_problem,
        chosen: spec.chosen,
        rejected: spec.rejected,
        stepdpo_chosen: spec.stepChosen,
      }),
      this.ctx,
    );
  }

  /** A sample stage; a sample that could not be made (only an endpoint fails so) fails the stage. */
  private async sample(c: Partial<SampleConfig>): Promise<void> {
    const s = await sample(sampleConfig(c), this.ctx);
    const missing = s.missing.length + (s.unattempted ?? 0);
    if (missing > 0)
      throw new InputError(`stage sample: ${missing} of ${s.samples} samples are missing (${s.last_error})`, s.out);
  }

  /**
   * The policy's samples of the sampling problems (plus its greedy solution of each with sample.greedy), verified;
   * returns the verify stage's key.
   */
  private async sampleAndVerify(
    dir: string,
    probKey: string,
    sampling: Partial<SampleConfig>,
    seed: number,
  ): Promise<string> {
    const c = this.config;
    const samples = this.rel(dir, "samples.jsonl");
    const verified = this.rel(dir, "verified.jsonl");
    const { greedy, ...sampleConfig } = c.sample; // a default greedy: false keeps earlier runs' keys
    const sKey = await this.stage(
      `${dir}/sample`,
      stageKey("sample", probKey, sampleConfig, seed),
      [samples, `${samples}.config.json`],
      () => this.sample({ ...sampling, n: c.sample.n, temperature: c.sample.temperature, out: this.abs(samples) }),
    );
    const inputs = [samples];
    let gKey: string | null = null;
    if (greedy) {
      const g = this.rel(dir, "greedy-samples.jsonl");
      gKey = await this.stage(
        `${dir}/sample-greedy`,
        stageKey("sample-greedy", probKey, c.sample.max_tokens),
        [g, `${g}.config.json`],
        () => this.sample({ ...sampling, n: 1, temperature: 0, out: this.abs(g) }),
      );
      inputs.push(g);
    }
    return this.stage(`${dir}/verify`, stageKey("verify", sKey, ...(gKey ? [gKey] : [])), [verified], async () => {
      let input = this.abs(samples);
      if (gKey) {
        // The greedy solution joins each problem's samples as sample n (after the n sampled ones).
        const all: Record<string, unknown>[] = [];
        for await (const { value } of readJsonl(this.abs(samples))) all.push(value);
        for await (const { value } of readJsonl(this.abs(inputs[1])))
          all.push({ ...value, sample: c.sample.n, greedy: true });
        input = this.abs(this.rel(dir, "all-samples.jsonl"));
        await writeJsonlAtomic(input, all);
      }
      await verifyFile(verifyConfig({ task: this.verifier, in: input, out: this.abs(verified) }), this.ctx);
    });
  }

  private async train(
    v: VariantConfig,
    outDir: string,
    policy: { dir: string; key: string },
    pairs: Map<string, { file: string; key: string }>,
    seed: number,
    sftDataKey: string,
  ): Promise<string> {
    const c = this.config;
    const sources = v.pairs.map((k) => pairs.get(this.spec(v, k).name)!);
    const pairFile =
      sources.length === 1 ? sources[0].file : this.rel(path.dirname(outDir), "pairs", `variant-${v.name}.jsonl`);
    const replay = this.replaySource(v, outDir, pairs, sftDataKey);
    // A variant without replay keys as it did before replay existed (earlier run directories stay cached).
    const { replay: _r, replay_weight: _w, ...plain } = v;
    const key = stageKey(
      "dpo",
      policy.key,
      sources.map((s) => s.key),
      replay ? { ...v, replay: replay.key } : plain,
      c.dpo,
      seed,
    );
    const written = [...(sources.length > 1 ? [pairFile] : []), ...(replay?.derived ? [replay.file] : [])];
    return this.stage(outDir, key, [outDir, ...written], async () => {
      if (sources.length > 1) {
        const parts = sources
          .map((s) => fs.readFileSync(this.abs(s.file), "utf8"))
          .map((t) => (t === "" || t.endsWith("\n") ? t : `${t}\n`));
        await writeFileAtomic(this.abs(pairFile), parts.join(""));
      }
      let rows = 0;
      if (replay?.derived) {
        // The outcome pairs' chosen sides as SFT records: {prompt, completion} tokenizes as the pair's chosen side.
        const chosen: Record<string, unknown>[] = [];
        for await (const { value } of readJsonl(this.abs(replay.derived)))
          chosen.push({ prompt: value.prompt, completion: value.chosen });
        await writeJsonlAtomic(this.abs(replay.file), chosen);
        rows = chosen.length;
      }
      const none = fs.readFileSync(this.abs(pairFile), "utf8").trim() === "";
      if (none || (replay?.derived && rows === 0)) {
        // Nothing to train on (or to replay): the variant is reported as skipped, the other variants go on.
        const what = none ? `${v.pairs.join("+")} pairs` : "outcome pairs to replay";
        this.log(
          `stepwise run: variant ${v.name}: no ${what} were built (${none ? pairFile : replay!.derived}); skipped. ` +
            "More sample.problems or sample.n, or a task the SFT model gets sometimes right and sometimes wrong, gives pairs.",
        );
        fs.mkdirSync(this.abs(outDir), { recursive: true });
        writeJsonAtomic(this.abs(path.join(outDir, SKIPPED)), { reason: `no ${what}`, pairs: pairFile });
        return;
      }
      await dpo(
        dpoConfig({
          template: c.model.template,
          model: this.abs(policy.dir),
          pairs: this.abs(pairFile),
          out: this.abs(outDir),
          loss: v.loss,
          loss_weights: v.loss_weights,
          beta: v.beta ?? c.dpo.beta,
          lr: v.lr ?? c.dpo.lr,
          epochs: v.epochs ?? c.dpo.epochs,
          label_smoothing: v.label_smoothing,
          dpop_lambda: v.dpop_lambda,
          batch_size: c.dpo.batch_size,
          seed,
          save_every: 50,
          resume: true,
          max_length: c.sft.max_length,
          ...(replay ? { replay: this.abs(replay.file), replay_weight: v.replay_weight ?? 1 } : {}),
        }),
        this.ctx,
      );
    });
  }

  /**
   * The SFT file a variant replays in its DPO batches and its key: the SFT data, or the outcome pairs' chosen sides
   * (`derived`: the pair file they are written from, beside it); null without replay.
   */
  private replaySource(
    v: VariantConfig,
    outDir: string,
    pairs: Map<string, { file: string; key: string }>,
    sftDataKey: string,
  ): { file: string; key: string; derived?: string } | null {
    if (v.replay === null) return null;
    if (v.replay === "sft") return { file: "data/sft.jsonl", key: sftDataKey };
    const outcome = pairs.get(this.spec(v, "outcome").name)!;
    const file = this.rel(path.dirname(outDir), "pairs", `replay-${v.name}.jsonl`);
    return { file, key: stageKey("replay-chosen", outcome.key), derived: outcome.file };
  }

  private async evaluate(
    stage: string,
    modelKey: string,
    modelDir: string,
    out: string,
    name: string,
    seed: number,
    round: number,
  ): Promise<void> {
    const c = this.config;
    const label = round > 1 ? `${name}-round${round}` : name;
    if (fs.existsSync(this.abs(path.join(modelDir, SKIPPED)))) {
      this.skipped.push({
        name: label,
        seed,
        round,
        reason: (JSON.parse(fs.readFileSync(this.abs(path.join(modelDir, SKIPPED)), "utf8")) as { reason: string })
          .reason,
      });
      return;
    }
    const key = stageKey("eval", modelKey, c.eval, this.taskKeyPart());
    await this.stage(stage, key, [`${out}.json`, `${out}.jsonl`], async () => {
      const problems: MathProblem[] = [];
      for await (const { value } of readJsonl(this.abs("data/test.jsonl")))
        problems.push(value as unknown as MathProblem);
      const completer = LocalCompleter.load(this.abs(modelDir));
      try {
        const { result, records } = await evaluate(completer, problems, {
          task: this.verifier,
          maxTokens: c.eval.max_tokens,
          maj: c.eval.maj > 0 ? c.eval.maj : undefined,
          template: c.model.template,
          temperature: c.eval.temperature,
          seed,
        });
        await writeJsonlAtomic(this.abs(`${out}.jsonl`), records);
        writeJsonAtomic(this.abs(`${out}.json`), result);
        this.log(
          `stepwise run: ${name} (seed ${seed}${round > 1 ? `, round ${round}` : ""}): accuracy ${(100 * result.accuracy).toFixed(1)}%`,
        );
      } finally {
        completer.model.dispose();
      }
    });
    const result = JSON.parse(fs.readFileSync(this.abs(`${out}.json`), "utf8")) as EvalResult;
    this.evals.push({ ...result, name: label, seed, round });
  }
}
