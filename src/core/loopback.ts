// Loopback names, shared by the two local servers (the OpenAI-compatible server and the dashboard). Bound to a
// loopback address, a server answers only requests whose Host header is a loopback name: a web page on another
// origin then cannot reach it through DNS rebinding (its requests carry the attacker's host name).

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
