// Loopback names, shared by the two local servers (the OpenAI-compatible server and the dashboard). Bound to a
// loopback address, a server answers only requests whose Host header is a loopback name: a web page on another
// origin then cannot reach it through DNS rebinding (its requests carry the attacker's host name). And how both
// start listening: a port that cannot be opened is bad input.

import { InputError } from "./errors.js";

export const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/** The name part of a Host header ("127.0.0.1:8600" -> "127.0.0.1", "[::1]:80" -> "[::1]"). */
export function hostName(host: string | undefined): string {
  if (!host) return "";
  return host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d+$/, "");
}

/** Whether a Host header names the loopback interface. */
export function isLoopbackHost(host: string | undefined): boolean {
  return LOOPBACK.has(hostName(host).toLowerCase());
}

/** A server that listens and closes (the OpenAI-compatible server, the dashboard). */
export interface Listener {
  listen(port: number, host: string): Promise<string>; // resolves with the URL
  close(): Promise<void>;
}

/** Starts `server` on host:port and resolves with its URL; a port that cannot be opened is an InputError naming both. */
export async function listenOn(server: Listener, port: number, host: string): Promise<string> {
  try {
    return await server.listen(port, host);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
      throw new InputError(`cannot listen on ${host}:${port} (${code})`, undefined, "pick another --port or --host");
    }
    throw e;
  }
}
