// Shared by the hub cache tests (src/model/hubcache.test.ts, src/cli/hubcache.test.ts): a model folder laid out as
// the Hugging Face cache stores it, and a local HTTP server that answers the few hub API calls a download makes
// (model info, file tree, paths-info, resolve with ranges), so the download path runs without the network.

import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { repoFolder } from "./hubcache.js";

const sha256 = (bytes: Buffer) => crypto.createHash("sha256").update(bytes).digest("hex");

/** A commit hash made from a word, for tests that need several. */
export function fakeCommit(word: string): string {
  return crypto.createHash("sha1").update(word).digest("hex");
}

/**
 * Lays the files of folder `src` out as commit `commit` of `repo` in hub cache `cache`: contents in blobs/SHA256,
 * snapshot entries as relative symlinks into blobs/ (or plain copies), and refs/REF naming the commit (none if null).
 * Returns the snapshot folder.
 */
export function cacheModel(
  cache: string,
  repo: string,
  src: string,
  o: { commit: string; ref?: string | null; copies?: boolean },
): string {
  const repoDir = repoFolder(cache, repo);
  const snap = path.join(repoDir, "snapshots", o.commit);
  fs.mkdirSync(path.join(repoDir, "blobs"), { recursive: true });
  fs.mkdirSync(snap, { recursive: true });
  for (const f of fs.readdirSync(src)) {
    const bytes = fs.readFileSync(path.join(src, f));
    const blob = path.join(repoDir, "blobs", sha256(bytes));
    fs.writeFileSync(blob, bytes);
    if (o.copies) fs.copyFileSync(blob, path.join(snap, f));
    else fs.symlinkSync(path.relative(snap, blob), path.join(snap, f));
  }
  const ref = o.ref === undefined ? "main" : o.ref;
  if (ref !== null) {
    fs.mkdirSync(path.dirname(path.join(repoDir, "refs", ref)), { recursive: true });
    fs.writeFileSync(path.join(repoDir, "refs", ref), o.commit);
  }
  return snap;
}

export interface FakeHub {
  url: string;
  /** "METHOD /path" of every request, in order. */
  requests: string[];
  close(): Promise<void>;
}

/**
 * Serves folder `src` (plus `extra` files, e.g. ones a download must skip) as revision main = `commit` of `repo`,
 * answering as the hub's API does for modelInfo, listFiles, pathsInfo and resolve (Range: bytes=a-b).
 */
export async function fakeHub(
  repo: string,
  commit: string,
  src: string,
  extra: Record<string, string> = {},
): Promise<FakeHub> {
  const files = new Map<string, Buffer>();
  for (const f of fs.readdirSync(src)) files.set(f, fs.readFileSync(path.join(src, f)));
  for (const [f, text] of Object.entries(extra)) files.set(f, Buffer.from(text));
  const entry = (f: string) => ({ type: "file", path: f, size: files.get(f)!.length, oid: sha256(files.get(f)!) });
  const requests: string[] = [];
  const api = `/api/models/${repo}`;
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://hub");
    requests.push(`${req.method} ${u.pathname}`);
    const json = (v: unknown) => res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(v));
    if (u.pathname === `${api}/revision/main`) return json({ _id: "0", id: repo, sha: commit });
    if (u.pathname === `${api}/tree/${commit}`) {
      const top = [...files.keys()].filter((f) => !f.includes("/"));
      const dirs = [...new Set([...files.keys()].filter((f) => f.includes("/")).map((f) => f.split("/")[0]))];
      const dirEntry = (d: string) => ({ type: "directory", path: d, size: 0, oid: sha256(Buffer.from(d)) });
      return json([...dirs.map(dirEntry), ...top.map(entry)]);
    }
    if (req.method === "POST" && u.pathname === `${api}/paths-info/${commit}`) {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () =>
        json(
          (JSON.parse(body).paths as string[])
            .filter((f) => files.has(f))
            .map((f) => ({ ...entry(f), lastCommit: { id: commit, title: "upload", date: "2025-01-01T00:00:00Z" } })),
        ),
      );
      return;
    }
    const resolve = `/${repo}/resolve/${commit}/`;
    const file = u.pathname.startsWith(resolve) ? files.get(u.pathname.slice(resolve.length)) : undefined;
    if (!file) return res.writeHead(404, { "X-Error-Code": "EntryNotFound" }).end("not found");
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    const headers = { ETag: `"${sha256(file)}"`, "Content-Type": "application/octet-stream" };
    if (!range) return res.writeHead(200, headers).end(file);
    const [a, b] = [Number(range[1]), Math.min(Number(range[2]), file.length - 1)];
    res.writeHead(206, { ...headers, "Content-Range": `bytes ${a}-${b}/${file.length}` }).end(file.subarray(a, b + 1));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
