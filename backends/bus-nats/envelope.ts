import type { BusEvent } from "../../services/ports/index.js";

/**
 * What travels on a gateway's subject: an event with the recipients it has on that gateway, or the
 * notice that events for some of its users were lost on the way (see outbox.ts).
 */
export type Envelope =
  | { readonly kind: "event"; readonly to: readonly string[]; readonly event: BusEvent }
  | { readonly kind: "lost"; readonly to: readonly string[] | "all" };

/** Raised when a message on the bus does not decode; it is terminated rather than redelivered forever. */
export class EnvelopeError extends Error {
  override readonly name = "EnvelopeError";
}

const VERSION = 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * JSON with bigint as {"$bigint":"<decimal>"} and Date as {"$date":<epoch ms>}. Tagging the values,
 * rather than naming the fields that hold them, keeps the codec exact for every event shape, including
 * fields added later. `this[key]` is the raw value: JSON.stringify has already turned a Date into a
 * string by the time the replacer sees `value`.
 */
export function encodeEvent(event: BusEvent): string {
  return JSON.stringify(event, function (this: Record<string, unknown>, key: string, value: unknown) {
    const raw = this[key];
    if (typeof raw === "bigint") return { $bigint: raw.toString() };
    if (raw instanceof Date) return { $date: raw.getTime() };
    return value;
  });
}

function revive(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length !== 1) return value;
  if (typeof record.$bigint === "string") return BigInt(record.$bigint);
  // An invalid Date serialises its time as null; it comes back invalid rather than as the epoch.
  if (typeof record.$date === "number" || record.$date === null) return new Date(record.$date ?? Number.NaN);
  return value;
}

/** `eventJson` comes from encodeEvent, once per publish however many gateways it goes to. */
export function encodeEventEnvelope(to: readonly string[], eventJson: string): Uint8Array {
  return encoder.encode(`{"v":${VERSION},"to":${JSON.stringify(to)},"event":${eventJson}}`);
}

export function encodeLostEnvelope(to: readonly string[] | "all"): Uint8Array {
  return encoder.encode(JSON.stringify({ v: VERSION, lost: to }));
}

const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === "string");

export function decodeEnvelope(data: Uint8Array): Envelope {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data), revive);
  } catch (error) {
    throw new EnvelopeError(`not JSON: ${(error as Error).message}`);
  }
  const record = (parsed ?? {}) as Record<string, unknown>;
  if (record.v !== VERSION) throw new EnvelopeError(`unknown envelope version ${JSON.stringify(record.v)}`);
  if ("lost" in record) {
    if (record.lost === "all" || isStringArray(record.lost)) return { kind: "lost", to: record.lost };
    throw new EnvelopeError("malformed lost notice");
  }
  const event = record.event as { kind?: unknown } | undefined;
  if (!isStringArray(record.to) || typeof event?.kind !== "string") throw new EnvelopeError("malformed event envelope");
  return { kind: "event", to: record.to, event: event as BusEvent };
}
