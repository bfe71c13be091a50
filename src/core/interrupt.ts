// Ctrl-C and SIGTERM. The CLI boundary installs the handlers (installSignalHandlers); work that can stop at a safe
// point (a training step, a sampled batch) runs inside cooperative(), polls stopRequested() between units of work
// and throws InterruptedError after saving. A signal that arrives outside cooperative() work ends the process at
// once (every output is written atomically, so nothing is left half-written), as Node's default would, but with
// the shell's exit code and a line saying how to go on.
// The event loop must get a turn for a handler to run: long synchronous loops call yieldToEventLoop() per unit.

export type StopSignal = "SIGINT" | "SIGTERM";

let pending: StopSignal | null = null;
let depth = 0;
let controller = new AbortController();

/** An AbortSignal that aborts (reason: the signal's name) when a signal is recorded: what the CLI hands a stage. */
export function stopSignal(): AbortSignal {
  return controller.signal;
}

/** The signal that asked the current work to stop, or null. */
export function stopRequested(): StopSignal | null {
  return pending;
}

/** Runs `fn` as work that stops by itself at a safe point when a signal arrives. */
export async function cooperative<T>(fn: () => Promise<T>): Promise<T> {
  depth++;
  try {
    return await fn();
  } finally {
    depth--;
  }
}

/** Whether a signal now would be handled by the running work (true) or should end the process (false). */
export function insideCooperative(): boolean {
  return depth > 0;
}

/** Records a signal (the CLI's handler calls this); returns whether running work will stop by itself. */
export function requestStop(signal: StopSignal): boolean {
  pending ??= signal;
  if (!controller.signal.aborted) controller.abort(pending);
  return depth > 0;
}

/** Forgets a recorded signal (tests and in-process callers that run several commands). */
export function clearStop(): void {
  pending = null;
  controller = new AbortController();
}

/** One turn of the event loop, so that signal handlers (and timers, sockets) run between synchronous steps. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export const signalExitCode = (s: StopSignal): number => (s === "SIGINT" ? 130 : 143);
