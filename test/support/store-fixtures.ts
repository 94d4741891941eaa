import { randomBytes } from "node:crypto";
import { Client } from "cassandra-driver";
import type { NewMessage, StoredMessage } from "../../services/ports/index.js";

/**
 * What the Cassandra store's own tests build messages from. Ids carry a per-run tag, so files share a
 * keyspace's tables across tests without a reset in between.
 */
export function messageFixtures() {
  let n = 0;
  const tag = randomBytes(3).toString("hex");
  const id = (prefix: string) => `${prefix}_${tag}_${(++n).toString().padStart(6, "0")}`;
  const T0 = Date.UTC(2025, 5, 1);
  function message(conversationId: string, senderUserId: string, extra: Partial<NewMessage> = {}): NewMessage {
    return {
      messageId: id("m"),
      conversationId,
      senderUserId,
      senderDeviceId: `${senderUserId}_dev`,
      clientMsgId: id("c"),
      kind: "text",
      text: `hello ${n}`,
      sentAt: new Date(T0 + n),
      ...extra,
    };
  }
  return { id, message, T0 };
}

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => BigInt(from + i));
export const ascending = (list: readonly bigint[]) => [...list].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
export const seqsOf = (list: readonly StoredMessage[]) => list.map((m) => m.seq);

/** Drops a test's keyspace through a client of its own (the stores under test may be closed). */
export async function dropKeyspace(contactPoint: string, keyspace: string): Promise<void> {
  const admin = new Client({ contactPoints: [contactPoint], localDataCenter: "datacenter1", protocolOptions: { port: Number(contactPoint.split(":")[1]) } });
  await admin.connect();
  await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
  await admin.shutdown();
}
