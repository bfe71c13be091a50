// The stage context a command hands the library (src/core/stage.ts): warnings on stderr, progress bars on stderr,
// and the stop signal that Ctrl-C/SIGTERM raise (the boundary in main.ts records them).

import { stopSignal } from "../core/interrupt.js";
import type { StageContext } from "../core/stage.js";
import { Progress } from "../core/progress.js";

export function cliContext(prefix = "stepwise: "): StageContext {
  return {
    log: (m) => process.stderr.write(`${prefix}${m}\n`),
    progress: (label, o) => new Progress(label, o),
    signal: stopSignal(),
  };
}
