#!/usr/bin/env node
import { main } from "../dist/cli/main.js";

// A reader that stops early (`stepwise task | head`) closes stdout: that ends the output, not with a crash.
process.stdout.on("error", (e) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
