import { Client, types } from "cassandra-driver";

/** Consistency levels the engine runs with (cassandra-driver's `types.consistencies`). */
export interface CassandraConsistency {
  /** Plain reads. */
  readonly read?: types.consistencies;
  /** Plain writes, and the commit of every lightweight transaction. */
  readonly write?: types.consistencies;
  /** The Paxos phase of lightweight transactions, and reads that must see the latest one. */
  readonly serial?: types.consistencies;
}

export interface Statement {
  readonly query: string;
  readonly params: readonly unknown[];
}

export type Row = types.Row;

/**
 * The engine's only way to Cassandra: every statement prepared, and each kind of access at the
 * consistency it needs, so no call site picks a level by itself.
 */
export interface CqlSession {
  readonly client: Client;
  /** A single page (or the first `limit` rows) of a read. */
  read(query: string, params: readonly unknown[], options?: { serial?: boolean }): Promise<Row[]>;
  /** Every row of a read, following page states (a page may be empty yet not the last). */
  readAll(query: string, params: readonly unknown[], options?: { limit?: number; pageSize?: number }): Promise<Row[]>;
  write(query: string, params: readonly unknown[]): Promise<void>;
  /** Statements on one partition, applied together without the batch log (they cannot be half-applied on a replica). */
  writePartition(statements: readonly Statement[]): Promise<void>;
  /** A lightweight transaction; the rows hold `[applied]` and, when not applied, the current values. */
  conditional(query: string, params: readonly unknown[]): Promise<Row[]>;
  /** A conditional batch on one partition: one Paxos round, all or nothing. */
  conditionalBatch(statements: readonly Statement[]): Promise<Row[]>;
  /** DDL: unprepared, and the driver waits for schema agreement. */
  ddl(query: string): Promise<void>;
}

/**
 * Told of every request sent to Cassandra: its kind, and whether it runs a Paxos round (lightweight
 * transactions and SERIAL reads), the costly part of the sequencer.
 */
export type RequestCounter = (operation: RequestOperation, paxos: boolean) => void;
export type RequestOperation = "read" | "serial_read" | "write" | "partition_batch" | "conditional" | "conditional_batch" | "ddl";

export const DEFAULT_CONSISTENCY: Required<CassandraConsistency> = {
  // LOCAL_QUORUM everywhere: with RF 3 a write acked at quorum is read back by any quorum read, and
  // on RF 1 it is the same as ONE.
  read: types.consistencies.localQuorum,
  write: types.consistencies.localQuorum,
  serial: types.consistencies.localSerial,
};

const DEFAULT_PAGE_SIZE = 1_000;

export function createCqlSession(client: Client, consistency: CassandraConsistency = {}, count: RequestCounter = () => undefined): CqlSession {
  const levels = { ...DEFAULT_CONSISTENCY, ...consistency };
  // Nothing the engine sends is retried by the driver on a timeout (isIdempotent is false by
  // default): the callers know which writes may be repeated and do it themselves.
  const readOptions = { prepare: true, consistency: levels.read };
  const serialReadOptions = { prepare: true, consistency: levels.serial };
  const writeOptions = { prepare: true, consistency: levels.write };
  const conditionalOptions = { prepare: true, consistency: levels.write, serialConsistency: levels.serial };

  return {
    client,
    async read(query, params, options = {}) {
      count(options.serial ? "serial_read" : "read", options.serial === true);
      const result = await client.execute(query, params as unknown[], options.serial ? serialReadOptions : readOptions);
      return result.rows;
    },
    async readAll(query, params, options = {}) {
      const limit = options.limit ?? Number.POSITIVE_INFINITY;
      const rows: Row[] = [];
      let pageState: string | undefined;
      for (;;) {
        const fetchSize = Math.max(1, Math.min(options.pageSize ?? DEFAULT_PAGE_SIZE, limit - rows.length));
        count("read", false);
        const result = await client.execute(query, params as unknown[], { ...readOptions, fetchSize, pageState });
        rows.push(...result.rows);
        pageState = result.pageState ?? undefined;
        if (!pageState || rows.length >= limit) return rows.length > limit ? rows.slice(0, limit) : rows;
      }
    },
    async write(query, params) {
      count("write", false);
      await client.execute(query, params as unknown[], writeOptions);
    },
    async writePartition(statements) {
      if (statements.length === 0) return;
      if (statements.length === 1) {
        count("write", false);
        await client.execute(statements[0].query, statements[0].params as unknown[], writeOptions);
        return;
      }
      count("partition_batch", false);
      await client.batch(statements.map(toBatchQuery), { ...writeOptions, logged: false });
    },
    async conditional(query, params) {
      count("conditional", true);
      const result = await client.execute(query, params as unknown[], conditionalOptions);
      return result.rows;
    },
    async conditionalBatch(statements) {
      count("conditional_batch", true);
      const result = await client.batch(statements.map(toBatchQuery), conditionalOptions);
      return result.rows;
    },
    async ddl(query) {
      count("ddl", false);
      await client.execute(query, [], { consistency: levels.write });
    },
  };
}

function toBatchQuery(statement: Statement): { query: string; params: unknown[] } {
  return { query: statement.query, params: statement.params as unknown[] };
}

/** Whether a lightweight transaction's result says it was applied. */
export function wasApplied(rows: readonly Row[]): boolean {
  const first = rows[0];
  return first === undefined || first["[applied]"] !== false;
}
