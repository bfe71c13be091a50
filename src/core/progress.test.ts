// The progress bar's ETA (issue #15, item 1): a resumed run counts its rate from the step it resumed at.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Progress } from "./progress.js";

const sink = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

test("after a resume at step 100 of 1500, one step a second leaves an ETA of 1399 s, not 14 s", () => {
  let ms = 0;
  const bar = new Progress("sft", { total: 1500, start: 100, stream: sink, tty: false, now: () => ms });
  ms = 1000;
  bar.set(101);
  assert.match(bar.line(), /101\/1500 1\.00\/s ETA 23:19$/);
});

test("a fresh run's ETA is the remaining items over the rate", () => {
  let ms = 0;
  const bar = new Progress("x", { total: 10, stream: sink, tty: false, now: () => ms });
  ms = 2000;
  bar.set(4);
  assert.match(bar.line(), /4\/10 2\.00\/s ETA 0:03$/);
});
