// Batches concurrent requests together. Each request becomes a job of rows (one row = one prompt's sample); rows
// whose sampling options are equal (SamplingKey) run in one BatchDecoder, FIFO across jobs, a job's rows split over
// batches when they do not fit. A BatchDecoder's rows are fixed when it starts, so requests that arrive while a
// batch runs form the next batch; up to maxActiveBatches batches run at once, stepped in turn, so a long request
// does not hold every later one back. Generation is synchronous: the loop yields to the event loop after every
// round of decode steps, which is when HTTP requests are read and partial results are streamed.

import { BatchDecoder, type GenTokenizer, type Generation } from "../model/generate.js";
import type { Llama } from "../model/llama.js";
import { RequestError, type SamplingKey } from "./protocol.js";

export interface SchedulerOptions {
  maxBatchRows?: number; // rows in one BatchDecoder, default 32
  maxActiveBatches?: number; // batches stepped in turn, default 2
  /**
   * Queued rows start a batch once they fill one, or once the oldest has waited this long and as long has passed
   * since a batch last ended (default 10 ms): clients answered by that batch send their next requests within it,
   * and they join the same batch instead of splitting into small batches that alternate.
   */
  batchWindowMs?: number;
  /**
   * While a batch runs, queued rows wait for it if it will end within this long (default 250 ms, estimated from its
   * tokens left and the recent time of a decode step), so that they form one large batch afterwards; otherwise
   * (a long request is running) they start a batch beside it.
   */
  joinWaitMs?: number;
}

export interface RowSpec {
  ids: number[]; // prompt token ids
  seed: number; // the row's own seed
}

export interface Job {
  key: SamplingKey;
  rows: RowSpec[];
  /**
   * Called after each decode step that touched this job's rows with each row's live result (null until its batch
   * starts) and whether it is finished: partial results, for streaming.
   */
  onStep?: (gens: readonly (Generation | null)[], done: readonly boolean[]) => void;
}

export interface SchedulerStats {
  batches: number; // BatchDecoders started
  rows: number; // rows generated
  maxRows: number; // largest batch
  steps: number; // decode steps
}

/** A job being served: where each of its rows is and how they are doing. */
class Ticket {
  readonly gens: (Generation | null)[]; // each row's live result once its batch has started
  readonly done: boolean[];
  next = 0; // rows [0, next) have been given to a batch
  remaining: number;
  cancelled = false;
  readonly queuedAt = performance.now();
  readonly keyString: string;
  resolve!: (gens: Generation[]) => void;
  reject!: (e: unknown) => void;
  readonly promise: Promise<Generation[]>;

  constructor(readonly job: Job) {
    this.gens = job.rows.map(() => null);
    this.done = job.rows.map(() => false);
    this.remaining = job.rows.length;
    this.keyString = JSON.stringify(job.key);
    this.promise = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
  }
}

interface Batch {
  dec: BatchDecoder;
  slots: { ticket: Ticket; row: number }[]; // decoder row -> (job, row)
  maxTokens: number;
  steps: number; // steps taken, the prefill included
}

const shuttingDown = () => new RequestError(503, "the server is shutting down");

/** A row is finished once it has a reason other than "length" (set only when it ends) or maxTokens tokens. */
function rowDone(g: Generation, maxTokens: number): boolean {
  return g.finishReason !== "length" || g.tokens.length >= maxTokens;
}

export class Scheduler {
  private readonly queue: Ticket[] = []; // jobs with rows not yet given to a batch, oldest first
  private readonly active: Batch[] = [];
  private readonly tickets = new Map<Job, Ticket>();
  private running = false;
  private closed = false;
  private readonly maxRows: number;
  private readonly maxActive: number;
  private readonly joinWaitMs: number;
  private readonly batchWindowMs: number;
  private lastEndAt = -Infinity; // when a batch last ended
  private stepMs = 1; // recent wall time of one decode step (an exponential moving average)
  private readonly counts: SchedulerStats = { batches: 0, rows: 0, maxRows: 0, steps: 0 };

  constructor(
    private readonly model: Llama,
    private readonly tokenizer: GenTokenizer,
    opts: SchedulerOptions = {},
  ) {
    this.maxRows = opts.maxBatchRows ?? 32;
    this.maxActive = opts.maxActiveBatches ?? 2;
    this.joinWaitMs = opts.joinWaitMs ?? 250;
    this.batchWindowMs = opts.batchWindowMs ?? 10;
  }

  /** Generates every row of the job; results in row order. Rejects if the job is cancelled or the server closes. */
  submit(job: Job): Promise<Generation[]> {
    if (this.closed) return Promise.reject(shuttingDown());
    const t = new Ticket(job);
    if (job.rows.length === 0) t.resolve([]);
    else {
      this.tickets.set(job, t);
      this.queue.push(t);
      this.kick();
    }
    return t.promise;
  }

  /** Stops a job (its client went away): its queued rows are dropped, and a batch of only cancelled jobs ends. */
  cancel(job: Job): void {
    const t = this.tickets.get(job);
    if (!t) return;
    t.cancelled = true;
    this.settle(t, new Error("cancelled"));
  }

  stats(): SchedulerStats {
    return { ...this.counts };
  }

  /** Fails every job not finished and frees the batches' caches. */
  close(): void {
    this.closed = true;
    for (const t of [...this.tickets.values()]) this.settle(t, shuttingDown());
    for (const b of this.active.splice(0)) b.dec.dispose();
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      while (!this.closed && (this.active.length > 0 || this.queue.length > 0)) {
        const waitMs = this.admit();
        if (this.active.length === 0) {
          await new Promise<void>((r) => setTimeout(r, waitMs)); // nothing to step until the window closes
          continue;
        }
        for (const b of [...this.active]) this.stepBatch(b);
        await new Promise<void>((r) => setImmediate(r)); // HTTP requests are read and chunks written here
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * Starts batches from the queue while there is room and a reason to (see SchedulerOptions); returns how long
   * until the oldest queued job's window closes (0 if the queue is empty).
   */
  private admit(): number {
    while (this.active.length < this.maxActive && this.queue.length > 0) {
      const pending = this.queue.reduce((s, t) => s + t.job.rows.length - t.next, 0);
      const now = performance.now();
      const left = this.batchWindowMs - Math.min(now - this.queue[0].queuedAt, now - this.lastEndAt);
      if (pending < this.maxRows && left > 0) return left;
      if (pending < this.maxRows && this.active.length > 0) {
        const soonest = Math.min(
          ...this.active.map((b) => (b.maxTokens - b.steps + 1) * this.stepMs * this.active.length),
        );
        if (soonest <= this.joinWaitMs) return 0; // the running batch ends soon: wait and form one batch after it
      }
      this.startBatch();
    }
    return 0;
  }

  /** Takes up to maxRows rows with the oldest job's key, FIFO, and starts a BatchDecoder on them. */
  private startBatch(): void {
    const keyString = this.queue[0].keyString;
    const key = this.queue[0].job.key;
    const slots: Batch["slots"] = [];
    for (const t of this.queue) {
      if (t.keyString !== keyString) continue;
      while (t.next < t.job.rows.length && slots.length < this.maxRows) slots.push({ ticket: t, row: t.next++ });
      if (slots.length === this.maxRows) break;
    }
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i].next === this.queue[i].job.rows.length) this.queue.splice(i, 1);
    }
    let dec: BatchDecoder;
    try {
      dec = new BatchDecoder(
        this.model,
        this.tokenizer,
        slots.map((s, i) => ({ ...s.ticket.job.rows[s.row], index: i })),
        {
          maxTokens: key.maxTokens,
          temperature: key.temperature,
          topP: key.topP,
          topK: key.topK,
          stop: key.stop,
          ...(key.ignoreEos ? { eosIds: [] } : {}),
        },
      );
    } catch (e) {
      for (const s of slots) this.settle(s.ticket, e);
      return;
    }
    const gens = dec.results();
    slots.forEach((s, i) => (s.ticket.gens[s.row] = gens[i]));
    this.active.push({ dec, slots, maxTokens: key.maxTokens, steps: 0 });
    this.counts.batches++;
    this.counts.rows += slots.length;
    this.counts.maxRows = Math.max(this.counts.maxRows, slots.length);
  }

  /** One decode step of a batch; finished rows complete their jobs; a batch of only cancelled jobs ends early. */
  private stepBatch(b: Batch): void {
    const live = b.slots.filter((s) => !s.ticket.cancelled && this.tickets.has(s.ticket.job));
    if (live.length === 0) {
      this.endBatch(b);
      return;
    }
    try {
      const t0 = performance.now();
      if (!b.dec.done) b.dec.step(); // a batch of max_tokens 0 is done before its first step
      if (b.steps++ > 0) this.stepMs = 0.9 * this.stepMs + 0.1 * (performance.now() - t0); // decode steps only
      this.counts.steps++;
    } catch (e) {
      for (const s of live) this.settle(s.ticket, e);
      this.endBatch(b);
      return;
    }
    const touched = new Set<Ticket>();
    for (const s of live) {
      const g = s.ticket.gens[s.row]!;
      touched.add(s.ticket);
      if (!s.ticket.done[s.row] && rowDone(g, b.maxTokens)) {
        s.ticket.done[s.row] = true;
        s.ticket.remaining--;
      }
    }
    for (const t of touched) {
      t.job.onStep?.(t.gens, t.done);
      if (t.remaining === 0) this.settle(t, null);
    }
    if (b.dec.done) this.endBatch(b);
  }

  private endBatch(b: Batch): void {
    const i = this.active.indexOf(b);
    if (i >= 0) this.active.splice(i, 1);
    b.dec.dispose();
    this.lastEndAt = performance.now();
  }

  /** Resolves (error null) or rejects a job once, and forgets it. */
  private settle(t: Ticket, error: unknown): void {
    if (!this.tickets.delete(t.job)) return;
    const q = this.queue.indexOf(t);
    if (q >= 0) this.queue.splice(q, 1);
    if (error === null) t.resolve(t.gens as Generation[]);
    else t.reject(error);
  }
}
