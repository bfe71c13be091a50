// Runs untrusted, model-written programs in a child process with the strongest isolation the host offers.
//
// Layers, from strongest host to weakest (detectSandbox() says which are active):
//   "root-ns"   (running as root, util-linux unshare + setpriv): new network, mount and PID namespaces; every mount
//               read-only except a private size-limited tmpfs scratch dir; the program runs as an unused uid (so
//               process limits bind and it can signal nothing of ours); the namespace dies with its init.
//   "bwrap"     (bubblewrap, as a normal user): the same namespaces through bwrap, a tmpfs scratch dir.
//   "userns"    (a normal user with user namespaces, unshare): as root-ns but without the uid change.
//   "basic"     (nothing of the above): a new process group, resource limits, a scratch cwd and a clean environment.
// Always: a clean environment (no variable of ours leaks), wall-time limit, output cap, and the whole process group
// SIGKILLed at the end. With prlimit: CPU, address space, process count, file size. JavaScript additionally runs under
// Node's permission model (no child processes, no workers, reads only its own dir, writes only its scratch dir).

import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  accessSync,
  chmodSync,
  constants,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";

export type SandboxMode = "root-ns" | "bwrap" | "userns" | "basic";
export type Language = "js" | "python";

export interface SandboxInfo {
  mode: SandboxMode;
  /** Names of the active protections, e.g. "network-namespace", "uid-drop", "rlimit-processes". */
  protections: string[];
  /** The protections of PROTECTIONS this host lacks, each with what a program can then do. */
  missing: { protection: string; risk: string }[];
  /** Interpreters found: absolute paths, or null when missing. */
  node: string;
  python: string | null;
}

export interface SandboxLimits {
  /** Wall-clock limit in ms; the process group is killed after it. */
  timeMs: number;
  /** Memory for the program's data in MiB (address-space limit; for Node also the heap limit). */
  memoryMb: number;
  /** stdout + stderr bytes kept; more kills the run. */
  outputBytes: number;
  /** Processes and threads the program may have at once. */
  processes: number;
  /** Size of the scratch dir (tmpfs) and of any one file it writes, in bytes. */
  fileBytes: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  timeMs: 5000,
  memoryMb: 256,
  outputBytes: 64 * 1024,
  processes: 32,
  fileBytes: 8 * 1024 * 1024,
};

export interface RawRun {
  exitCode: number | null;
  /** The signal that ended the program, as seen through any wrapper ("SIGKILL", "SIGXCPU"). */
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  outputExceeded: boolean;
  /** The sandbox itself could not be set up (not the program's fault). */
  setupFailed: boolean;
  ms: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Detection

let detected: SandboxInfo | null = null;
let forced: SandboxMode | null = null;

/** For tests and `STEPWISE_SANDBOX=basic`: use a weaker mode than detected (a stronger one is refused). */
export function forceSandboxMode(mode: SandboxMode | null): void {
  forced = mode;
  detected = null;
}

function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    const p = path.join(dir || ".", cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

/** Executable by "others" along its whole path: usable after dropping to an unused uid. */
function worldExecutable(p: string): boolean {
  for (let cur = p; ; cur = path.dirname(cur)) {
    try {
      if ((statSync(cur).mode & 0o001) === 0) return false;
    } catch {
      return false;
    }
    if (path.dirname(cur) === cur) return true;
  }
}

/** The first candidate interpreter that runs (and, after a uid change, that any user may run). */
function findInterpreter(
  candidates: (string | null | undefined)[],
  askPath: string[],
  needWorld: boolean,
): string | null {
  for (const c of candidates) {
    if (!c) continue;
    let real: string;
    try {
      real = realpathSync(c);
    } catch {
      continue;
    }
    // pyenv-style shims are scripts: ask the interpreter where it really lives
    const r = spawnSync(real, askPath, { encoding: "utf8", timeout: 5000 });
    if (r.status !== 0) continue;
    const exe = r.stdout.trim() || real;
    if (!needWorld || worldExecutable(exe)) return exe;
  }
  return null;
}

const PSEUDO_FS = new Set([
  "proc",
  "sysfs",
  "cgroup",
  "cgroup2",
  "devpts",
  "mqueue",
  "securityfs",
  "debugfs",
  "tracefs",
  "pstore",
  "bpf",
  "configfs",
  "fusectl",
  "hugetlbfs",
  "binfmt_misc",
  "autofs",
  "efivarfs",
  "nsfs",
  "rpc_pipefs",
]);

/** Mount points that might hold a writable directory: every real or tmpfs mount not already read-only. */
function writableMounts(): string[] {
  const out = new Set<string>();
  for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
    const [, where, type, opts] = line.split(" ");
    if (!where || PSEUDO_FS.has(type) || opts.split(",").includes("ro")) continue;
    const p = where.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (p === "/proc" || p.startsWith("/proc/")) continue;
    out.add(p);
  }
  return [...out].sort((a, b) => a.length - b.length);
}

function probe(file: string, args: string[]): boolean {
  const r = spawnSync(file, args, { stdio: "ignore", timeout: 10000 });
  return r.status === 0;
}

interface Tools {
  unshare: string | null;
  setpriv: string | null;
  bwrap: string | null;
  prlimit: string | null;
  mount: string | null;
  pivotRoot: string | null;
  isRoot: boolean;
}

let toolPaths: Tools = {
  unshare: null,
  setpriv: null,
  bwrap: null,
  prlimit: null,
  mount: null,
  pivotRoot: null,
  isRoot: false,
};

const MODES: SandboxMode[] = ["root-ns", "bwrap", "userns", "basic"];

/** What this host offers, probed once (a few child processes, some tens of ms). */
export function detectSandbox(): SandboxInfo {
  if (detected) return detected;
  const env = process.env.STEPWISE_SANDBOX as SandboxMode | undefined;
  const want = forced ?? (env && MODES.includes(env) ? env : null);
  const isRoot = process.getuid?.() === 0;
  toolPaths = {
    unshare: which("unshare"),
    setpriv: which("setpriv"),
    bwrap: which("bwrap"),
    prlimit: which("prlimit"),
    mount: which("mount"),
    pivotRoot: which("pivot_root") ?? ["/usr/sbin/pivot_root", "/sbin/pivot_root"].find((p) => lexists(p)) ?? null,
    isRoot,
  };
  const mode = MODES.slice(want ? MODES.indexOf(want) : 0).find((m) => m === "basic" || modeWorks(m)) ?? "basic";
  const dropsUid = isRoot && toolPaths.setpriv !== null;
  // after a uid change the interpreters must be usable by any user (not, say, under /root)
  const node =
    findInterpreter(
      [process.execPath, "/usr/bin/node", "/usr/local/bin/node", which("node")],
      ["-p", "process.execPath"],
      dropsUid,
    ) ?? process.execPath;
  const python = findInterpreter(
    [process.env.STEPWISE_PYTHON, "/usr/bin/python3", "/usr/local/bin/python3", which("python3")],
    ["-c", "import sys; print(sys.executable)"],
    dropsUid,
  );
  const protections = ["clean-environment", "process-group-kill", "wall-timeout", "output-cap", "scratch-dir"];
  if (mode !== "basic") {
    protections.push(
      "network-namespace",
      "pid-namespace",
      "mount-namespace",
      "read-only-filesystem",
      "host-filesystem-hidden",
      "tmpfs-scratch",
    );
  }
  if (dropsUid) protections.push("uid-drop");
  if (toolPaths.prlimit) protections.push("rlimit-cpu", "rlimit-memory", "rlimit-processes", "rlimit-file-size");
  const perm = nodePermissionFlag(node);
  nodePerm = probe(node, [perm, "--allow-fs-read=*", "-e", "0"]) ? perm : null;
  if (nodePerm) protections.push("node-permission");
  const missing = Object.entries(PROTECTIONS)
    .filter(([p]) => !protections.includes(p))
    .map(([protection, risk]) => ({ protection, risk }));
  detected = { mode, protections, missing, node, python };
  return detected;
}

/** The protections a fully equipped host gives, and what a program can do without each. */
export const PROTECTIONS: Record<string, string> = {
  "network-namespace": "programs can open network connections, to 127.0.0.1 and beyond",
  "pid-namespace": "programs see the host's processes",
  "mount-namespace": "programs see the host's mounts",
  "read-only-filesystem": "programs can write wherever their user may, outside their scratch folder",
  "host-filesystem-hidden": "programs can read every file their user may, the problems' tests included",
  "tmpfs-scratch": "the scratch folder is on the host's disk",
  "uid-drop": "programs run as this user: they can signal its processes, and process limits bind loosely",
  "rlimit-cpu": "no CPU-time limit (the wall-time limit still holds)",
  "rlimit-memory": "no memory limit beyond Node's heap limit for JavaScript",
  "rlimit-processes": "no limit on processes: a fork bomb is stopped only by the wall-time kill",
  "rlimit-file-size": "no limit on the size of files written",
  "node-permission": "JavaScript programs may start processes and write files outside their scratch folder",
};

/** Node's permission-model flag when the sandbox's node has one. */
let nodePerm: string | null = null;

/** Node 20 calls it --experimental-permission, Node 22 and later --permission. */
function nodePermissionFlag(node: string): string {
  const v =
    node === process.execPath
      ? process.versions.node
      : spawnSync(node, ["-p", "process.versions.node"], { encoding: "utf8" }).stdout.trim();
  return Number(v.split(".")[0]) >= 22 ? "--permission" : "--experimental-permission";
}

/** Whether the tools of a mode are there and a trial run can write its scratch dir and nothing beside it. */
function modeWorks(mode: SandboxMode): boolean {
  const t = toolPaths;
  const tools =
    mode === "root-ns"
      ? t.isRoot && t.unshare && t.setpriv && t.mount && t.pivotRoot
      : mode === "bwrap"
        ? t.bwrap
        : mode === "userns"
          ? t.unshare && t.mount && t.pivotRoot
          : true;
  if (!tools) return false;
  const dir = mkdtempSync(path.join(os.tmpdir(), "stepwise-probe-"));
  try {
    chmodSync(dir, 0o755);
    const work = path.join(dir, "work");
    mkdirSync(work);
    chmodSync(work, 0o777);
    mkdirSync(path.join(dir, "root")); // the new root's mount point
    const trial = ["/bin/sh", "-c", "touch ./ok && ! touch ../blocked 2>/dev/null"];
    const [file, ...args] = wrap(mode, work, probeUid(), trial, DEFAULT_LIMITS);
    return probe(file, args);
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Command lines

/**
 * A fresh unused uid for each run, cycling through 1000 per process: process limits count every process of a uid,
 * and the processes of a killed run can take a moment to be reaped, so a uid is not reused right away.
 */
const UID_BASE = 200000 + (process.pid % 1000) * 1000;
let uidSeq = 0;
function nextUid(): number {
  return UID_BASE + (uidSeq++ % 999);
}
function probeUid(): number {
  return UID_BASE + 999;
}

/**
 * Inside the new namespaces, as root of them: a private tmpfs scratch dir W inside the program's folder D; every
 * host mount read-only; then a new root R (a tmpfs at D/root) that holds only what the interpreter needs (the
 * paths given, read-only), D itself read-only with W inside it, a few /dev nodes and a /proc of the new PID
 * namespace; pivot_root into it, so that the rest of the host filesystem (inputs, tests, home folders) is gone.
 */
const NS_SETUP = [
  'W=$1; U=$2; S=$3; D=$4; PR=$5; shift 5; R="$D/root"',
  "mount --make-rprivate / || exit 125",
  'if [ -n "$U" ]; then O="uid=$U,gid=$U,"; else O=""; fi',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a template
  'mount -t tmpfs -o "${O}size=$S,nr_inodes=4096,mode=0700,nosuid,nodev" tmpfs "$W" || exit 125',
  'mount -t tmpfs -o size=1m,mode=0755,nosuid,nodev tmpfs "$R" || exit 125',
  'while [ "$1" != "--" ]; do mount -o remount,bind,ro "$1" 2>/dev/null; shift; done; shift',
  'while [ "$1" != "--" ]; do', // the paths the interpreter needs
  '  P=$1; shift; mkdir -p "$R$(dirname "$P")" || exit 125',
  '  if [ -L "$P" ]; then ln -s "$(readlink "$P")" "$R$P" || exit 125',
  '  elif [ -d "$P" ]; then mkdir -p "$R$P" && mount --rbind "$P" "$R$P" && mount -o remount,bind,ro "$R$P" || exit 125',
  '  elif [ -e "$P" ]; then touch "$R$P" && mount --bind "$P" "$R$P" && mount -o remount,bind,ro "$R$P" || exit 125; fi',
  "done; shift",
  'mkdir -p "$R$D" && mount --bind "$D" "$R$D" && mount -o remount,bind,ro "$R$D" && mount --bind "$W" "$R$W" || exit 125',
  'mkdir -p "$R/dev" "$R/proc" && for N in null zero random urandom; do touch "$R/dev/$N" && mount --bind "/dev/$N" "$R/dev/$N" || exit 125; done',
  'mount -t proc -o nosuid,nodev,noexec proc "$R/proc" || exit 125',
  'cd "$R" && mkdir .old && "$PR" . .old && umount -l /.old && rmdir /.old && mount -o remount,bind,ro / || exit 125',
  'cd "$W" || exit 125',
  '"$@"',
  "exit $?", // not exec: this shell stays the namespace's init, and the namespace dies with it
].join("\n");

/** Host paths the new root exposes (read-only, where they exist): the system's programs and libraries. */
const SYSTEM_PATHS = [
  "/usr",
  "/bin",
  "/sbin",
  "/lib",
  "/lib32",
  "/lib64",
  "/libx32",
  "/etc/ld.so.cache",
  "/etc/ld.so.conf",
  "/etc/ld.so.conf.d",
  "/etc/alternatives",
  "/etc/localtime",
  "/etc/passwd",
  "/etc/group",
  "/etc/nsswitch.conf",
];

/** What a program's interpreter needs of the host: SYSTEM_PATHS, /etc/python3*, and an interpreter's own prefix. */
function exposedPaths(interpreters: (string | null)[]): string[] {
  const out = SYSTEM_PATHS.filter((p) => lexists(p));
  try {
    for (const f of readdirSync("/etc")) if (/^python3/.test(f)) out.push(`/etc/${f}`);
  } catch {
    /* no /etc */
  }
  for (const exe of interpreters) {
    if (!exe || out.some((p) => exe.startsWith(`${p}/`))) continue;
    out.push(path.dirname(path.dirname(exe))); // e.g. /opt/node-v20 for /opt/node-v20/bin/node
  }
  return out;
}

function lexists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function rlimitPrefix(l: SandboxLimits, lang: "js" | "python" | "none", extraProcesses = 0): string[] {
  if (!toolPaths.prlimit) return [];
  const cpu = Math.max(1, Math.ceil(l.timeMs / 1000));
  // Node reserves large virtual ranges: its data budget sits on top of about 1.5 GiB of reservations.
  const asMb = lang === "js" ? l.memoryMb + 1536 : l.memoryMb + 128;
  return [
    toolPaths.prlimit,
    `--cpu=${cpu}:${cpu + 1}`,
    `--as=${asMb * 1024 * 1024}`,
    `--nproc=${l.processes + extraProcesses}`,
    `--fsize=${l.fileBytes}`,
    "--core=0",
    "--nofile=256",
    "--",
  ];
}

/** Processes and threads the current (non-root) user already has: the process limit counts them all. */
function userTaskCount(): number {
  const uid = process.getuid?.();
  let n = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (statSync(`/proc/${pid}`).uid === uid) n += readdirSync(`/proc/${pid}/task`).length;
    } catch {
      /* gone */
    }
  }
  return n;
}

/** The full argv that runs `cmd` in mode `mode` with scratch dir `work`, as `uid` when we are root. */
function wrap(
  mode: SandboxMode,
  work: string,
  uid: number,
  cmd: string[],
  l: SandboxLimits,
  lang: "js" | "python" | "none" = "none",
): string[] {
  const t = toolPaths;
  // As root, every mode first becomes an unused uid: process limits do not bind root, and root may signal anything.
  const dropRoot = t.isRoot && t.setpriv;
  const drop = (extra: string[] = []) =>
    dropRoot
      ? [t.setpriv!, `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--no-new-privs", ...extra, "--"]
      : [];
  const limits = dropRoot ? rlimitPrefix(l, lang) : rlimitPrefix(l, lang, userTaskCount());
  const nsFlags = ["-n", "-m", "-p", "-f", "--kill-child", "--mount-proc", "--", "/bin/sh", "-c", NS_SETUP, "sh", work];
  const dir = path.dirname(work); // the program's folder: its source beside the scratch dir, and the new root's mount point
  const exposed = exposedPaths([detected?.node ?? null, detected?.python ?? null]);
  switch (mode) {
    case "root-ns": // namespaces as root, then the uid change inside them
      return [
        t.unshare!,
        ...nsFlags,
        String(uid),
        String(l.fileBytes),
        dir,
        t.pivotRoot!,
        ...writableMounts(),
        "--",
        ...exposed,
        "--",
        ...drop(["--inh-caps=-all", "--bounding-set=-all"]),
        ...limits,
        ...cmd,
      ];
    case "userns":
      return [
        ...drop(),
        t.unshare!,
        "-U",
        "-r",
        ...nsFlags,
        "",
        String(l.fileBytes),
        dir,
        t.pivotRoot!,
        ...writableMounts(),
        "--",
        ...exposed,
        "--",
        ...limits,
        ...cmd,
      ];
    case "bwrap": // the same new root, built by bwrap
      return [
        ...drop(),
        t.bwrap!,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        ...exposed.flatMap((p) =>
          lstatSync(p).isSymbolicLink() ? ["--symlink", readlinkSync(p), p] : ["--ro-bind", p, p],
        ),
        "--ro-bind",
        dir,
        dir,
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--size",
        String(l.fileBytes),
        "--tmpfs",
        work,
        "--chdir",
        work,
        "--",
        ...limits,
        ...cmd,
      ];
    case "basic":
      return [...drop(), ...limits, ...cmd];
    default:
      return mode satisfies never;
  }
}

function interpreter(
  info: SandboxInfo,
  lang: Language,
  dir: string,
  work: string,
  file: string,
  l: SandboxLimits,
): string[] {
  if (lang === "js") {
    const perm = nodePerm ? [nodePerm, `--allow-fs-read=${dir}/`, `--allow-fs-write=${work}/`] : [];
    return [info.node, "--no-warnings", `--max-old-space-size=${l.memoryMb}`, ...perm, file];
  }
  if (!info.python) throw new Error("python3 not found");
  return [info.python, "-I", "-B", file];
}

// ---------------------------------------------------------------------------------------------------------------
// Running

const SIGNALS: Record<number, string> = {
  6: "SIGABRT",
  9: "SIGKILL",
  11: "SIGSEGV",
  15: "SIGTERM",
  24: "SIGXCPU",
  25: "SIGXFSZ",
};

/**
 * Runs one program (`source`, in `lang`) in the sandbox and returns what happened. Never throws for anything the
 * program does; throws only if the host cannot start a process at all.
 */
export async function runSandboxed(
  lang: Language,
  source: string,
  limits: Partial<SandboxLimits> = {},
): Promise<RawRun> {
  const info = detectSandbox();
  const l = { ...DEFAULT_LIMITS, ...limits };
  const dir = mkdtempSync(path.join(os.tmpdir(), `stepwise-sbx-${process.pid}-`));
  try {
    chmodSync(dir, 0o755);
    const work = path.join(dir, "work");
    mkdirSync(work, { mode: 0o777 });
    chmodSync(work, 0o777);
    mkdirSync(path.join(dir, "root")); // the new root's mount point (namespace modes)
    const file = path.join(dir, lang === "js" ? "main.cjs" : "main.py");
    writeFileSync(file, source, { mode: 0o644 });
    if (lang === "python" && !info.python) {
      return {
        exitCode: null,
        signal: null,
        stdout: "",
        stderr: "python3 not found",
        timedOut: false,
        outputExceeded: false,
        setupFailed: true,
        ms: 0,
      };
    }
    const uid = nextUid();
    const argv = wrap(info.mode, work, uid, interpreter(info, lang, dir, work, file, l), l, lang);
    const run = { uid: toolPaths.isRoot && toolPaths.setpriv ? uid : null, token: randomBytes(12).toString("hex") };
    return await spawnLimited(argv, work, l, info.mode !== "basic", run);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The run's environment: nothing of ours, plus a token that marks its processes (see killRun). */
function cleanEnv(work: string, token: string): NodeJS.ProcessEnv {
  return {
    PATH: "/usr/local/bin:/usr/bin:/bin",
    HOME: work,
    TMPDIR: work,
    LANG: "C.UTF-8",
    PYTHONHASHSEED: "0",
    STEPWISE_RUN: token,
  };
}

/**
 * Kills every process of a run, in every mode, also those that left its process group (setsid, double fork): the
 * run's own uid when we dropped to one (a process cannot leave it), else the token in its environment (a program
 * that starts children with a cleared environment escapes this in the basic mode; namespace modes need none of it:
 * their PID namespace dies with its init).
 */
function killRun(run: { uid: number | null; token: string }): void {
  const mark = `STEPWISE_RUN=${run.token}`;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const ours =
        run.uid !== null
          ? statSync(`/proc/${pid}`).uid === run.uid
          : readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(mark);
      if (ours) process.kill(Number(pid), "SIGKILL");
    } catch {
      /* gone, or not ours to read */
    }
  }
}

function spawnLimited(
  argv: string[],
  work: string,
  l: SandboxLimits,
  viaShell: boolean,
  run: { uid: number | null; token: string },
): Promise<RawRun> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), {
      cwd: work,
      env: cleanEnv(work, run.token),
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let bytes = 0;
    let timedOut = false;
    let outputExceeded = false;
    let settled = false;
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    };
    const onData = (sink: Buffer[]) => (b: Buffer) => {
      if (outputExceeded) return;
      const room = l.outputBytes - bytes;
      sink.push(room >= b.length ? b : b.subarray(0, Math.max(0, room)));
      bytes += b.length;
      if (bytes > l.outputBytes) {
        outputExceeded = true;
        killGroup();
      }
    };
    child.stdout!.on("data", onData(out));
    child.stderr!.on("data", onData(err));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, l.timeMs);
    const finish = (code: number | null, sig: NodeJS.Signals | null, setupError?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      killGroup();
      killRun(run);
      killRun(run); // again: one may have forked while the first pass ran
      let signal: string | null = sig;
      let exitCode = code;
      if (viaShell && code !== null && code > 128 && code < 160) {
        signal = SIGNALS[code - 128] ?? `signal ${code - 128}`;
        exitCode = null;
      }
      resolve({
        exitCode,
        signal,
        timedOut,
        outputExceeded,
        ms: performance.now() - t0,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: setupError ?? Buffer.concat(err).toString("utf8"),
        setupFailed: setupError !== undefined || (viaShell && code === 125),
      });
    };
    child.on("error", (e) => finish(null, null, `cannot start sandbox: ${e.message}`));
    child.on("exit", (code, sig) => {
      killGroup();
      // stdio may stay open in an escaped grandchild (basic mode): wait for it briefly, never forever
      const grace = setTimeout(() => {
        child.stdout!.destroy();
        child.stderr!.destroy();
        finish(code, sig);
      }, 200);
      child.on("close", () => {
        clearTimeout(grace);
        finish(code, sig);
      });
    });
  });
}

/**
 * Why a trivial program in `lang` fails under `limits` (limits too tight for the interpreter itself, so that every
 * program would be marked wrong), or null when it runs. A sandbox that cannot start at all is not the limits' fault.
 */
export async function limitsProblem(lang: Language, limits: Partial<SandboxLimits>): Promise<string | null> {
  const r = await runSandboxed(lang, lang === "js" ? 'console.log("ok")' : 'print("ok")', limits);
  if (r.setupFailed || (r.exitCode === 0 && r.stdout.trim() === "ok")) return null;
  if (r.timedOut) return "it timed out";
  const said = r.stderr
    .trim()
    .split("\n")
    .find((l) => l.trim() !== "")
    ?.slice(0, 160);
  return `${r.signal ? `it was killed by ${r.signal}` : `it exited with ${r.exitCode}`}${said ? `: ${said}` : ""}`;
}
