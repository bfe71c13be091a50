// Backend selection: without the native addon everything runs on the reference backend, with one warning.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

const entry = new URL("../index.js", import.meta.url).href;

test("a missing native addon falls back to the reference backend and says so once", () => {
  const script = `import(${JSON.stringify(entry)}).then((m) => {
    const a = m.tensor([1, 2]); const b = m.tensor([3, 4]);
    const c = m.add(a, m.mul(a, b));
    console.log(JSON.stringify({ backend: m.getBackend().name, out: Array.from(c.toArray()) }));
  })`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
    env: { ...process.env, STEPWISE_NATIVE_ADDON: "/nonexistent/stepwise_native.node", STEPWISE_BACKEND: "" },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { backend: "reference", out: [4, 10] });
  const warnings = r.stderr.split("\n").filter((l) => l.includes("native CPU backend unavailable"));
  assert.equal(warnings.length, 1, r.stderr);
  assert.match(r.stderr, /npm run build:native/);
});

test("STEPWISE_BACKEND=native without the addon is a clear error", () => {
  const script = `import(${JSON.stringify(entry)}).then((m) => m.tensor([1]))`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
    env: { ...process.env, STEPWISE_NATIVE_ADDON: "/nonexistent/stepwise_native.node", STEPWISE_BACKEND: "native" },
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /the native backend is not available/);
});
