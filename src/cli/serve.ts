// `stepwise serve`: flags -> ServeConfig -> the server (src/serve/stage.ts), served until SIGINT or SIGTERM.

import { asFlags } from "../core/config.js";
import { openCompletionServer, serveConfig } from "../serve/stage.js";
import type { Command } from "./command.js";
import { serveUntilSignal } from "./options.js";

export const serveCommand: Command = {
  name: "serve",
  ownsSignals: true,
  summary: "serve a model on an OpenAI-compatible API (/v1/completions, /v1/chat/completions, /v1/models)",
  usage:
    "stepwise serve --model DIR --port P [--host 127.0.0.1] [--api-key KEY] [--max-tokens-limit N] [--max-body-bytes N]",
  help: [
    "Endpoints: GET /v1/models, POST /v1/completions, POST /v1/chat/completions (the tokenizer's chat template),",
    'GET /health. Streaming ("stream": true) sends server-sent events ending with `data: [DONE]`. Concurrent requests',
    "with the same sampling options are decoded in one batch. Parameters: n, max_tokens, temperature, top_p, top_k,",
    "stop, seed, logprobs, stream_options.include_usage, ignore_eos; unsupported ones are refused with a 400.",
    "options:",
    "  --model DIR              model folder (config.json, safetensors, tokenizer.json), a PEFT adapter folder (its base",
    "                           from base_model_name_or_path), a .gguf file or a Hugging Face name",
    "  --port P                 port to listen on (0 picks a free one; the address is printed)",
    "  --host H                 address to bind, default 127.0.0.1 (0.0.0.0 exposes the server to the network);",
    "                           on a loopback address only requests whose Host is localhost are answered",
    '  --api-key KEY            require "Authorization: Bearer KEY" (what OpenAI clients send as api_key) on /v1/*;',
    "                           default: $STEPWISE_API_KEY if set, else no key",
    "  --served-model-name S    the model id of /v1/models, which requests may name or leave out",
    "                           (default: the Hugging Face name, else the folder's name)",
    "  --max-tokens-limit N     largest max_tokens a request may ask for (default 2048)",
    "  --max-body-bytes N       largest request body (default 1048576)",
    "  --max-batch N            sequences decoded together in one batch (default 32)",
    "  --backend B              native (default when built) or reference",
    "  --threads N              worker threads of the native backend",
  ].join("\n"),
  async run(values) {
    const c = serveConfig(values, asFlags);
    const { server, dispose } = openCompletionServer(c);
    try {
      const banner = (url: string) => `stepwise serve: ${server.limits.modelName} on ${url}/v1 (Ctrl-C stops)`;
      await serveUntilSignal(server, c.port, c.host, banner);
    } finally {
      dispose();
    }
    return 0;
  },
};
