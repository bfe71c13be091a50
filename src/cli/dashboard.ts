// `stepwise dashboard`: a local web app over run directories (charts that follow training, evals, pairs, credit).

import { backendByName, getBackend } from "../backend/index.js";
import { InputError } from "../core/errors.js";
import { DashboardServer } from "../dashboard/server.js";
import type { Command } from "./command.js";
import { intOption, serveUntilSignal } from "./options.js";

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
    if (typeof values.runs !== "string") throw new InputError("--runs DIR is required");
    const port = intOption(values, "port", 8600, 0);
    if (port > 65535) throw new InputError(`--port must be at most 65535, got ${port}`);
    const host = typeof values.host === "string" ? values.host : "127.0.0.1";
    const be = values.backend ? backendByName(String(values.backend)) : getBackend();
    if (values.threads !== undefined) be.setThreads(intOption(values, "threads", 1));
    const server = new DashboardServer({ root: values.runs, backend: be });
    await serveUntilSignal(server, port, host, (url) => `stepwise dashboard: ${server.root} on ${url}/ (Ctrl-C stops)`);
    return 0;
  },
};
