import { createContextKey } from "@connectrpc/connect";
import { isIPv6 } from "node:net";

interface RequestLike {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly socket?: { readonly remoteAddress?: string } | null;
}

/** The client address of a Connect call, for the handlers that throttle by it (logins). */
export const kClientAddress = createContextKey<string>("", { description: "client address" });

/** An IPv6 address's /64: one host usually holds a whole /64, so single addresses would be free to rotate. */
function ipv6Prefix(address: string): string {
  const [head = "", tail] = address.split("::");
  const left = head ? head.split(":") : [];
  const right = tail === undefined ? [] : tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups.slice(0, 4).map((group) => Number.parseInt(group || "0", 16).toString(16)).join(":")}::/64`;
}

/** `::ffff:1.2.3.4` is 1.2.3.4; IPv6 is reduced to its /64. */
export function normalizeAddress(address: string): string {
  const trimmed = address.trim().replace(/^\[|\]$/g, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(trimmed);
  if (mapped) return mapped[1]!;
  return isIPv6(trimmed) ? ipv6Prefix(trimmed.toLowerCase()) : trimmed;
}

/**
 * Who is asking: the socket's peer, or, when the gateway is told it sits behind a reverse proxy, the
 * last `X-Forwarded-For` entry (the one that proxy appended; earlier ones are whatever the client sent).
 */
export function clientAddressOf(request: RequestLike, trustForwardedFor: boolean): string {
  if (trustForwardedFor) {
    const header = request.headers["x-forwarded-for"];
    const value = Array.isArray(header) ? header.join(",") : header;
    const last = value?.split(",").map((entry) => entry.trim()).filter(Boolean).pop();
    if (last) return normalizeAddress(last);
  }
  return normalizeAddress(request.socket?.remoteAddress ?? "");
}
