import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { openConnection } from "./connection.js";
import { createSqliteWriter, type SqliteWriter } from "./writer.js";

type FsyncCallback = (error: NodeJS.ErrnoException | null) => void;

/** Every fsync the writer starts is held here until the test lets it finish (or fail). */
const held: { fd: number; finish: FsyncCallback }[] = [];

vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  return {
    ...fs,
    fsync: (fd: number, callback: FsyncCallback) => {
      held.push({ fd, finish: (error) => (error ? callback(error) : fs.fsync(fd, callback)) });
    },
  };
});

/** Lets the event loop run `turns` times: long enough for anything already settled to be seen. */
async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

async function heldFsync(): Promise<{ fd: number; finish: FsyncCallback }> {
  for (let i = 0; i < 100 && held.length === 0; i++) await turns(1);
  const next = held.shift();
  if (!next) throw new Error("the writer committed a batch but never started an fsync of the WAL");
  return next;
}

describe("the SQLite writer acknowledges a write only once it is durable", () => {
  let dir: string;
  let db: Database.Database;
  let writer: SqliteWriter;
  beforeEach(() => {
    held.length = 0;
    dir = mkdtempSync(join(tmpdir(), "writer-durability-"));
    db = openConnection(join(dir, "chat.db"), 5_000);
    db.exec("CREATE TABLE item (id INTEGER PRIMARY KEY, text TEXT NOT NULL)");
    writer = createSqliteWriter(db);
  });
  afterEach(() => {
    for (const fsync of held.splice(0)) fsync.finish(null);
    writer.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const insert = (text: string) => writer.submit(() => db.prepare("INSERT INTO item (text) VALUES (?)").run(text).lastInsertRowid);

  it("resolves after the fsync of the WAL completes, not when it starts", async () => {
    const order: string[] = [];
    const acked = insert("one").then(() => order.push("ack"));
    const fsync = await heldFsync();
    order.push("fsync started");
    // The commit is done and the fsync running: an ack that does not wait for it would land now.
    await turns(5);
    order.push("fsync done");
    fsync.finish(null);
    await acked;
    expect(order).toEqual(["fsync started", "fsync done", "ack"]);
  });

  it("fsyncs the WAL file itself", async () => {
    const acked = insert("one");
    const fsync = await heldFsync();
    fsync.finish(null);
    await acked;
    const { readlinkSync } = await import("node:fs");
    expect(readlinkSync(`/proc/self/fd/${fsync.fd}`)).toBe(join(dir, "chat.db-wal"));
  });

  it("rejects every write of the batch when the fsync fails", async () => {
    const batch = Promise.allSettled([insert("one"), insert("two")]);
    const fsync = await heldFsync();
    fsync.finish(Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" }));
    const settled = await batch;
    expect(settled.map((outcome) => outcome.status)).toEqual(["rejected", "rejected"]);
    expect(String((settled[0] as PromiseRejectedResult).reason)).toMatch(/EIO/);
  });

  it("commits the batch without an fsync of its own and leaves the connection at synchronous = FULL for other writes", async () => {
    const acked = insert("one");
    const fsync = await heldFsync();
    // Between commit and fsync the connection is already back to FULL (2): other writes stay durable on their own.
    expect(db.pragma("synchronous", { simple: true })).toBe(2n);
    fsync.finish(null);
    await acked;
    expect(db.prepare("SELECT text FROM item").pluck().all()).toEqual(["one"]);
  });

  it("acknowledges what arrived during one fsync only after the next fsync", async () => {
    const first = insert("one");
    const firstFsync = await heldFsync();
    const order: string[] = [];
    const second = insert("two").then(() => order.push("second acked"));
    firstFsync.finish(null);
    await first;
    const secondFsync = await heldFsync();
    await turns(5);
    order.push("second fsync done");
    secondFsync.finish(null);
    await second;
    expect(order).toEqual(["second fsync done", "second acked"]);
  });
});
