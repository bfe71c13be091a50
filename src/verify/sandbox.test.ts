// The sandbox contains hostile programs in every mode this host offers (the strongest first): infinite loops, fork
// bombs, memory bombs, huge output, writes outside its dir, network connections, reading our environment, killing
// its parent (and everything else it can signal), escaping as a daemon. A protection a mode does not claim is not
// asserted for it (a message says so); the strongest mode on a Linux host with util-linux claims them all.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { runCodeTests } from "./code.js";
import { detectSandbox, forceSandboxMode, runSandboxed, type SandboxInfo, type SandboxMode } from "./sandbox.js";

const FAST = { timeMs: 800, memoryMb: 128 };
const SECRET = `stepwise-secret-${process.pid}-${Date.now()}`;
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
let server: net.Server;
let port = 0;
let connections = 0;
let canary: ReturnType<typeof spawn>;

before(async () => {
  process.env.STEPWISE_TEST_SECRET = SECRET;
  server = net.createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  port = (server.address() as net.AddressInfo).port;
  canary = spawn("sleep", ["600"], { stdio: "ignore" }); // a bystander process of ours that must survive
});

after(() => {
  server.close();
  canary.kill("SIGKILL");
  delete process.env.STEPWISE_TEST_SECRET;
  forceSandboxMode(null);
});

/** Processes still running from a sandbox dir of this test process (there must be none after a run). */
async function leftovers(): Promise<string[]> {
  let found: string[] = [];
  for (let i = 0; i < 20; i++) {
    found = [];
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, "latin1").replace(/\0/g, " ");
        if (cmd.includes(`stepwise-sbx-${process.pid}-`)) found.push(`${pid}: ${cmd}`);
      } catch {
        /* gone */
      }
    }
    if (found.length === 0) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  return found;
}

function modes(): SandboxMode[] {
  forceSandboxMode(null);
  const best = detectSandbox().mode;
  const order: SandboxMode[] = ["root-ns", "bwrap", "userns", "basic"];
  const out: SandboxMode[] = [];
  for (const m of order.slice(order.indexOf(best))) {
    forceSandboxMode(m);
    if (detectSandbox().mode === m) out.push(m);
  }
  forceSandboxMode(null);
  return out;
}

const has = (info: SandboxInfo, p: string) => info.protections.includes(p);

test("detection reports the mode and its protections", () => {
  forceSandboxMode(null);
  const info = detectSandbox();
  console.log(`sandbox: ${info.mode}; protections: ${info.protections.join(", ")}; python: ${info.python}`);
  for (const p of ["clean-environment", "process-group-kill", "wall-timeout", "output-cap", "scratch-dir"])
    assert.ok(has(info, p));
  if (
    process.platform === "linux" &&
    process.getuid?.() === 0 &&
    existsSync("/usr/bin/unshare") &&
    existsSync("/usr/bin/setpriv")
  ) {
    assert.equal(info.mode, "root-ns");
  }
});

for (const mode of modes()) {
  test(`[${mode}] verdicts: passed, failed, error, timeout`, async () => {
    forceSandboxMode(mode);
    const expectStatus = async (p: Parameters<typeof runCodeTests>[0], code: string, want: string) => {
      const r = await runCodeTests(p, code, FAST);
      assert.equal(r.status, want, `${JSON.stringify(code)}: ${r.status} (${r.message})`);
    };
    const js = { language: "js" as const, tests: "assert.strictEqual(add(2, 3), 5);", entry_point: "add" };
    await expectStatus(js, "function add(a, b) { return a + b; }", "passed");
    await expectStatus(js, "```js\nfunction add(a, b) { return a + b; }\n```", "passed");
    const failed = await runCodeTests(js, "function add(a, b) { return a - b; }", FAST);
    assert.equal(failed.status, "failed");
    assert.match(failed.message, /AssertionError/);
    await expectStatus(js, "function add(a, b) { return a + ; }", "error");
    await expectStatus(js, "function add() { for (;;) {} }", "timeout");
    if (detectSandbox().python) {
      const py = {
        language: "python" as const,
        tests: "def check(candidate):\n    assert candidate(2, 3) == 5\n",
        entry_point: "add",
        prompt: "def add(a, b):\n",
      };
      await expectStatus(py, "    return a + b\n", "passed"); // HumanEval-style continuation
      await expectStatus(py, "def add(a, b):\n    return a * b\n", "failed");
      await expectStatus(py, "def add(a, b)\n    return 1\n", "error");
      await expectStatus(py, "def add(a, b):\n    while True:\n        pass\n", "timeout");
    }
    assert.deepEqual(await leftovers(), []);
  });

  test(`[${mode}] infinite loops, fork bombs, memory bombs, huge output and disk filling are contained`, async () => {
    forceSandboxMode(mode);
    const info = detectSandbox();
    const cases: [string, "js" | "python", string][] = [
      ["js loop", "js", "for (;;) {}"],
      [
        "js fork bomb",
        "js",
        "const cp = require('child_process'); for (;;) cp.spawn(process.execPath, ['-e', 'for(;;){}']);",
      ],
      ["js heap bomb", "js", "const a = []; for (;;) a.push(new Array(1e6).fill(1.5));"],
      ["js buffer bomb", "js", "const a = []; for (;;) a.push(Buffer.alloc(64 << 20, 1));"],
      ["js output", "js", "for (;;) process.stdout.write('x'.repeat(65536));"],
      [
        "js disk",
        "js",
        "const fs = require('fs'); for (let i = 0; ; i++) fs.writeFileSync('f' + i, Buffer.alloc(1 << 20));",
      ],
    ];
    if (info.python) {
      cases.push(
        ["py loop", "python", "while True:\n    pass\n"],
        [
          "py fork bomb",
          "python",
          "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        ],
        ["py memory bomb", "python", "a = []\nwhile True:\n    a.append(bytearray(32 << 20))\n"],
        ["py output", "python", "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n"],
        ["py disk", "python", "i = 0\nwhile True:\n    open('f%d' % i, 'wb').write(b'x' * (1 << 20))\n    i += 1\n"],
      );
    }
    for (const [name, lang, source] of cases) {
      const t0 = performance.now();
      const r = await runSandboxed(lang, source, FAST);
      const ms = performance.now() - t0;
      assert.ok(r.exitCode !== 0 || r.signal !== null || r.timedOut, `${name}: should not succeed`);
      assert.ok(ms < FAST.timeMs + 1500, `${name}: took ${ms.toFixed(0)} ms`);
      assert.ok(r.stdout.length + r.stderr.length <= 64 * 1024, `${name}: output capped`);
      if (name.includes("output")) assert.ok(r.outputExceeded, name);
      assert.deepEqual(await leftovers(), [], `${name}: processes left behind`);
    }
    assert.equal(canary.exitCode, null, "a bystander process was killed");
  });

  test(`[${mode}] writes outside, network, our environment, signals to us: contained`, async () => {
    forceSandboxMode(mode);
    const info = detectSandbox();
    const contained = has(info, "pid-namespace") || has(info, "uid-drop"); // else signals to us would land
    if (!contained) console.log(`[${mode}] no PID namespace and no uid change: signal attempts are not run`);
    const outside = [
      path.join(os.tmpdir(), `stepwise-escape-${process.pid}`),
      path.join(ROOT, `escape-${process.pid}.txt`),
    ];
    const js = [
      `const fs = require("fs");`,
      `fs.writeFileSync("inside.txt", "ok"); console.log("INSIDE", fs.readFileSync("inside.txt", "utf8"));`,
      ...outside.map(
        (p) =>
          `try { fs.writeFileSync(${JSON.stringify(p)}, "pwned"); console.log("WROTE"); } catch (e) { console.log("write", e.code); }`,
      ),
      `console.log("ENV", JSON.stringify(process.env));`,
      `for (const p of ["/proc/" + process.ppid + "/environ", "/proc/${process.pid}/environ"]) {`,
      `  try { console.log("PROC", fs.readFileSync(p, "latin1")); } catch (e) { console.log("proc", e.code); } }`,
      contained
        ? `for (const p of [process.ppid, ${process.pid}, ${canary.pid}]) try { process.kill(p, "SIGKILL"); console.log("KILLED", p); } catch (e) { console.log("kill", e.code); }`
        : "",
      `require("net").connect(${port}, "127.0.0.1").on("connect", () => { console.log("CONNECTED"); process.exit(0); })`,
      `  .on("error", (e) => { console.log("net", e.code); process.exit(0); });`,
    ].join("\n");
    const r = await runSandboxed("js", js, FAST);
    assert.match(r.stdout, /INSIDE ok/, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(SECRET));
    assert.doesNotMatch(r.stdout, /WROTE/); // node-permission or a read-only filesystem
    if (has(info, "network-namespace")) assert.doesNotMatch(r.stdout, /CONNECTED/);
    else console.log(`[${mode}] javascript may open network connections (no network namespace in this mode)`);
    if (info.python) {
      const py = [
        "import os, socket, signal",
        "open('inside.txt', 'w').write('ok'); print('INSIDE', open('inside.txt').read())",
        ...outside.map(
          (p) =>
            `try:\n    open(${JSON.stringify(p)}, 'w').write('pwned'); print('WROTE')\nexcept OSError as e:\n    print('write', e)`,
        ),
        "print('ENV', dict(os.environ))",
        `for p in ['/proc/%d/environ' % os.getppid(), '/proc/${process.pid}/environ']:`,
        "    try:\n        print('PROC', open(p, 'rb').read())\n    except OSError as e:\n        print('proc', e)",
        ...(contained
          ? [
              `for p in [os.getppid(), ${process.pid}, ${canary.pid}]:`,
              "    try:\n        os.kill(p, signal.SIGKILL); print('KILLED', p)\n    except OSError as e:\n        print('kill', e)",
              "try:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError as e:\n    print('killall', e)",
            ]
          : []),
        `try:\n    socket.create_connection(('127.0.0.1', ${port}), timeout=1); print('CONNECTED')\nexcept OSError as e:\n    print('net', e)`,
      ].join("\n");
      const p = await runSandboxed("python", py, FAST);
      assert.doesNotMatch(p.stdout + p.stderr, new RegExp(SECRET));
      const sandboxed = has(info, "read-only-filesystem");
      if (sandboxed) assert.match(p.stdout, /INSIDE ok/, p.stderr);
      if (sandboxed) assert.doesNotMatch(p.stdout, /WROTE/);
      else console.log(`[${mode}] python may write where its user may (no read-only filesystem in this mode)`);
      if (has(info, "network-namespace")) assert.doesNotMatch(p.stdout, /CONNECTED/);
      else console.log(`[${mode}] python may open network connections (no network namespace in this mode)`);
    }
    for (const p of outside) {
      const escaped = existsSync(p);
      rmSync(p, { force: true });
      if (has(info, "read-only-filesystem") || !info.python) assert.ok(!escaped, `wrote ${p}`);
    }
    if (has(info, "network-namespace")) assert.equal(connections, 0);
    assert.equal(canary.exitCode, null, "the bystander process was killed");
    assert.equal(canary.signalCode, null);
  });

  test(`[${mode}] a daemon that escapes into its own session dies with the sandbox`, {
    skip: !detectSandbox().python,
  }, async () => {
    forceSandboxMode(mode);
    const info = detectSandbox();
    const src =
      "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n    os._exit(0)\nprint('parent done')\n";
    const r = await runSandboxed("python", src, FAST);
    assert.match(r.stdout, /parent done/, r.stderr);
    const left = await leftovers();
    for (const l of left)
      try {
        process.kill(Number(l.split(":")[0]), "SIGKILL");
      } catch {
        /* gone */
      }
    // Every mode (issue #15): the PID namespace, else the run's own uid or its environment token, finds the daemon.
    assert.deepEqual(left, [], `[${mode}] an escaped daemon outlived the run (${info.protections.join(", ")})`);
  });

  test(`[${mode}] the host filesystem is hidden where namespaces allow: the problems' tests cannot be read`, {
    skip: !detectSandbox().python,
  }, async () => {
    forceSandboxMode(mode);
    const info = detectSandbox();
    const secretFile = path.join(os.tmpdir(), `stepwise-tests-${process.pid}.jsonl`);
    writeFileSync(secretFile, "assert answer == 42\n", { mode: 0o644 }); // world-readable, like an input file
    try {
      const src = [
        "import os",
        `for p in [${JSON.stringify(secretFile)}, ${JSON.stringify(path.join(ROOT, "package.json"))}, "/etc/hostname"]:`,
        "    try:\n        print('READ', p, open(p).read()[:20])\n    except OSError as e:\n        print('hidden', p, e.errno)",
        "print('ROOT', sorted(os.listdir('/')))",
        "print('RUNS', 1 + 1)",
      ].join("\n");
      const r = await runSandboxed("python", src, FAST);
      assert.match(r.stdout, /RUNS 2/, r.stderr);
      if (has(info, "host-filesystem-hidden")) {
        assert.doesNotMatch(r.stdout, /READ/, r.stdout);
        assert.doesNotMatch(r.stdout, /'(root|home|work|var)'/, "only what the interpreter needs is in the new root");
      } else {
        assert.ok(
          info.missing.some((m) => m.protection === "host-filesystem-hidden"),
          "the missing protection is reported",
        );
        console.log(
          `[${mode}] the host filesystem is readable: ${r.stdout
            .split("\n")
            .filter((l) => l.startsWith("READ"))
            .join("; ")}`,
        );
      }
    } finally {
      rmSync(secretFile, { force: true });
    }
  });
}
