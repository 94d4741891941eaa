import { ErrorReason, notFound } from "../../services/errors.js";

/**
 * Global ids of the Node interface: base64url of `<Type>:<key>`. A group and its conversation share
 * one id in the services, and a message is found by its conversation and seq, so the raw ids alone
 * could not say which object `node(id:)` should return.
 */
export type NodeTypeName = "User" | "Conversation" | "Group" | "Message";

const NODE_TYPES: ReadonlySet<string> = new Set<NodeTypeName>(["User", "Conversation", "Group", "Message"]);

export const toGlobalId = (type: NodeTypeName, key: string): string => Buffer.from(`${type}:${key}`).toString("base64url");

/** The type and key of a global id, or undefined for anything this server did not issue. */
export function fromGlobalId(id: string): { type: NodeTypeName; key: string } | undefined {
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(id)) return undefined;
  const decoded = Buffer.from(id, "base64url").toString("utf8");
  const colon = decoded.indexOf(":");
  const type = decoded.slice(0, colon);
  const key = decoded.slice(colon + 1);
  return colon > 0 && key !== "" && NODE_TYPES.has(type) ? { type: type as NodeTypeName, key } : undefined;
}

/** A message's key in its global id: its conversation and seq, which is how the store finds it. */
export const messageKey = (conversationId: string, seq: bigint): string => `${conversationId}:${seq}`;

export function parseMessageKey(key: string): { conversationId: string; seq: bigint } | undefined {
  const at = key.lastIndexOf(":");
  const seq = key.slice(at + 1);
  return at > 0 && /^[1-9][0-9]{0,19}$/.test(seq) ? { conversationId: key.slice(0, at), seq: BigInt(seq) } : undefined;
}

export const nodeNotFound = (id: string) => notFound(ErrorReason.INVALID_ARGUMENT, `"${id}" is not the id of anything you can see`, "id");
