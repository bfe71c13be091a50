// Builds the native CPU backend (native/*.cc) with node-gyp. A failed build is not an install failure:
// stepwise then runs on its reference backend and says so once at run time.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const root = path.dirname(path.dirname(new URL(import.meta.url).pathname));

function nodeGypCommand() {
  const fromNpm = process.env.npm_config_node_gyp; // set by npm when it runs lifecycle scripts
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, [fromNpm]];
  try {
    const req = createRequire(import.meta.url);
    return [process.execPath, [req.resolve("node-gyp/bin/node-gyp.js")]];
  } catch {
    const npmDir = path.resolve(
      path.dirname(process.execPath),
      "../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
    );
    if (existsSync(npmDir)) return [process.execPath, [npmDir]];
  }
  return ["node-gyp", []];
}

const [cmd, pre] = nodeGypCommand();
const env = { ...process.env };
// Use the local Node headers when they are installed, so that node-gyp does not try to download them.
if (!env.npm_config_nodedir && existsSync("/usr/include/node/node_api.h")) env.npm_config_nodedir = "/usr";
const res = spawnSync(cmd, [...pre, "rebuild"], { cwd: root, stdio: "inherit", env });
if (res.status !== 0) {
  console.warn(
    "\nstepwise: the native CPU backend could not be built (see the node-gyp output above).\n" +
      "stepwise still works, on its plain-TypeScript reference backend, which is much slower.\n" +
      "To get the fast backend install a C++ compiler and Python 3, then run `npm run build:native`.\n",
  );
}
process.exit(0);
