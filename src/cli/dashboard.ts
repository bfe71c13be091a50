// `stepwise dashboard`: a local web app over run directories (charts that follow training, evals, pairs, credit).

import { backendFor } from "../backend/index.js";
import { asFlags, KnobReader } from "../core/config.js";
import { DashboardServer } from "../dashboard/server.js";
import type { Command } from "./command.js";
import { serveUntilSignal } from "./options.js";

export const dashboardCommand: Command = {
  name: "dashboard",
  ownsSignals: true,
  summary: "local web dashboard over run directories: metrics charts, evals, pair browser, credit heatmaps",
  usage: "stepwise dashboard --runs DIR [--port 8600] [--host 127.0.0.1]",
  help: [
    "Serves a dashboard over every run found under --runs (up to 4 levels deep): training runs (folders with",
    "metrics.jsonl, as sft/dpo write them) and pipeline runs (folders with report.json, as `stepwise run` writes them,",
    "with their seed-N/<variant>/ training runs nested). Charts follow metrics.jsonl while a run trains; the eval tab",
    "shows report.json and eval/*.json; the pair browser marks the first step where chosen and rejected differ; the",
    "credit tab colours each token by its implicit reward beta*log(pi/pi_ref), computed here on request.",
    "Everything (uPlot included) is served locally: no internet needed. Nothing outside --runs is read.",
    "options:",
    "  --runs DIR      directory holding run directories (or one run directory)",
    "  --port P        port to listen on (default 8600; 0 picks a free one; the address is printed)",
    "  --host H        address to bind, default 127.0.0.1 (0.0.0.0 exposes the runs to the network)",
    "  --backend B     native (default when built) or reference, for credit scoring",
    "  --threads N     worker threads of the native backend",
  ].join("\n"),
  async run(values) {
    const r = new KnobReader(values, asFlags);
    const root = r.need("runs", "DIR");
    const port = r.port("port", 8600);
    const host = r.str("host", "127.0.0.1");
    const server = new DashboardServer({ root, backend: backendFor(r.str("backend", null), r.int("threads", null)) });
    await serveUntilSignal(server, port, host, (url) => `stepwise dashboard: ${server.root} on ${url}/ (Ctrl-C stops)`);
    return 0;
  },
};
