// Writes the TensorBoard fixture's event files with stepwise's writer (dist/train/tensorboard.js; run `npm run build`
// first): a run of 4 steps, then a run resumed from step 2 that logs steps 3 and 4 again with other values.
// src/train/tensorboard.test.ts writes the same events and compares the bytes. Usage: node tensorboard_events.mjs DIR
import { EventWriter } from "../dist/train/tensorboard.js";

const dir = process.argv[2];
let t = 1700000000.25;
const clock = () => (t += 0.5);
const first = new EventWriter(dir, clock, "events.out.tfevents.1700000000.fixture.1");
for (let step = 1; step <= 4; step++)
  first.scalars({ step, loss: 1 / step, "rewards/chosen": -0.1 * step, learning_rate: 1e-5 * step, eval_loss: 2 / step });
first.close();
const resumed = new EventWriter(dir, clock, "events.out.tfevents.1700000100.fixture.2");
resumed.sessionStart(3);
for (let step = 3; step <= 4; step++)
  resumed.scalars({ step, loss: 10 + step, "rewards/chosen": 0.5 * step, learning_rate: 3e-5, eval_loss: 20 + step });
resumed.close();
