import { Client } from "cassandra-driver";
import type { ChatStore } from "../../services/ports/index.js";
import { createCassandraAccounts } from "./accounts.js";
import { createCassandraConversations } from "./conversations.js";
import { createCassandraMessages } from "./messages.js";
import { createReadMarks } from "./read-marks.js";
import { createCassandraReceipts } from "./receipts.js";
import { assertKeyspaceName, migrate, type Replication } from "./schema.js";
import type { FencedLog } from "./fenced-log.js";
import { createLogSequencer } from "./log-sequencer.js";
import { createSequencer, type SequencerOptions } from "./sequencer.js";
import { createCqlSession, type CassandraConsistency, type CqlSession, type RequestCounter } from "./session.js";
import { createUserIndex } from "./user-index.js";

export interface CassandraStoreOptions {
  /** `host` or `host:port`; the port also applies to the nodes discovered from them. */
  readonly contactPoints: readonly string[];
  readonly localDataCenter?: string;
  /** Created if missing, with `replication`. */
  readonly keyspace: string;
  /** Used only when the keyspace is created. */
  readonly replication?: Replication;
  readonly consistency?: CassandraConsistency;
  readonly sequencer?: SequencerOptions;
  /**
   * Numbers conversations through this ordered log instead of a Paxos round per batch (see
   * log-sequencer.ts). A keyspace is bound to the sequencer it was first used with. Closed with the store.
   */
  readonly log?: FencedLog;
  /** Told of every request the store sends (for metrics). */
  readonly countRequest?: RequestCounter;
}

export interface CassandraStore extends ChatStore {
  readonly keyspace: string;
  /** The driver client, for diagnostics and tests. */
  readonly client: Client;
}

/**
 * Refuses calls once the store is closing, and lets close() wait for the calls already running, so
 * none of them meets a client that has been shut down.
 */
function createGate() {
  const running = new Set<Promise<unknown>>();
  let closed = false;
  return {
    guard<T extends object>(port: T): T {
      const guarded: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(port)) {
        if (typeof value !== "function") {
          guarded[name] = value;
          continue;
        }
        guarded[name] = (...args: unknown[]) => {
          if (closed) return Promise.reject(new Error("the store is closed"));
          const call = Promise.resolve(value.apply(port, args) as unknown);
          const settled = call.then(
            () => undefined,
            () => undefined,
          );
          running.add(settled);
          void settled.then(() => running.delete(settled));
          return call;
        };
      }
      return guarded as T;
    },
    async close() {
      closed = true;
      while (running.size > 0) await Promise.all([...running]);
    },
  };
}

/**
 * Records which sequencer the keyspace uses on first start, and refuses to run another one on it: the
 * log sequencer writes the conversation log's cells with timestamps the Paxos rounds would never win
 * against, so mixing them would silently lose writes.
 */
async function bindSequencer(session: CqlSession, keyspace: string, sequencer: "log" | "paxos"): Promise<void> {
  const rows = await session.conditional(`INSERT INTO ${keyspace}.settings (name, value) VALUES ('sequencer', ?) IF NOT EXISTS`, [sequencer]);
  const bound = rows[0]?.["[applied]"] === false ? (rows[0]!.value as string) : sequencer;
  if (bound !== sequencer) {
    throw new Error(
      `keyspace ${keyspace} is numbered by the ${bound} sequencer; this store was started with the ${sequencer} one. ` +
        `Use ${bound === "log" ? "a fenced log (cluster: a nats:// bus)" : "no fenced log (?sequencer=paxos)"} with it, or a new keyspace`,
    );
  }
}

/** The port shared by every contact point, when they name one. */
function contactPort(contactPoints: readonly string[]): number | undefined {
  const ports = new Set(contactPoints.map((point) => /^[^:\][]+:(\d+)$/.exec(point)?.[1] ?? /^\[.*\]:(\d+)$/.exec(point)?.[1]));
  if (ports.size !== 1) return undefined;
  const [port] = ports;
  return port === undefined ? undefined : Number(port);
}

/**
 * The clustered engine. Connects, brings the keyspace's schema up to date, and returns the store.
 * Several stores (processes, gateways) may use the same keyspace at once: the sequencer keeps seqs
 * gapless and unique across all of them (see sequencer.ts).
 */
export async function createCassandraStore(options: CassandraStoreOptions): Promise<CassandraStore> {
  const { contactPoints, localDataCenter = "datacenter1", keyspace, replication = { class: "SimpleStrategy", replication_factor: 1 } } = options;
  assertKeyspaceName(keyspace);
  if (contactPoints.length === 0) throw new RangeError("contactPoints must name at least one node");
  const port = contactPort(contactPoints);
  const client = new Client({
    contactPoints: [...contactPoints],
    localDataCenter,
    // Nodes discovered through the contact point are reached on this port too.
    ...(port === undefined ? {} : { protocolOptions: { port } }),
    // Seqs are uint64 on the wire: bigint columns come back as bigint, never rounded.
    encoding: { useBigIntAsLong: true, useBigIntAsVarint: true },
  });
  try {
    await client.connect();
    const session = createCqlSession(client, options.consistency, options.countRequest);
    await migrate(session, { keyspace, replication });

    const tables = {
      users: `${keyspace}.users`,
      usersByUsername: `${keyspace}.users_by_username`,
      devices: `${keyspace}.devices`,
      log: `${keyspace}.conversation_log`,
      memberships: `${keyspace}.memberships_by_user`,
      watermarks: `${keyspace}.read_watermarks`,
      moves: `${keyspace}.read_moves`,
      cursors: `${keyspace}.delivery_cursors`,
    };
    await bindSequencer(session, keyspace, options.log ? "log" : "paxos");
    const readMarks = createReadMarks(session, options.log ? tables : { watermarks: tables.watermarks, moves: tables.moves });
    const userIndex = createUserIndex(session, tables, readMarks);
    const sequencer = options.log
      ? createLogSequencer(session, tables, readMarks, userIndex, options.log, options.sequencer)
      : createSequencer(session, tables, readMarks, userIndex, options.sequencer);
    const gate = createGate();
    let closing: Promise<void> | undefined;

    return {
      keyspace,
      client,
      accounts: gate.guard(createCassandraAccounts(session, tables)),
      conversations: gate.guard(createCassandraConversations(session, tables, sequencer, userIndex, readMarks)),
      messages: gate.guard(createCassandraMessages(session, tables, sequencer)),
      receipts: gate.guard(createCassandraReceipts(session, tables, readMarks)),
      close() {
        // Everything already started or queued is written (and acknowledged) before the connections go.
        closing ??= gate
          .close()
          .then(() => sequencer.close())
          .then(() => options.log?.close())
          .then(() => client.shutdown());
        return closing;
      },
    } satisfies CassandraStore;
  } catch (error) {
    await client.shutdown().catch(() => undefined);
    throw error;
  }
}
