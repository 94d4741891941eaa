/**
 * What one append costs the SQLite engine by batch size, with nothing else running: the log's own
 * statements (idempotency lookup, seq, insert, read mark, each under a savepoint), one transaction per
 * batch, a PASSIVE checkpoint every 20 batches as the checkpoint worker would. Sends go round-robin
 * over 250 conversations, as in the benchmark's 1:1 workload.
 *
 *   npx tsx bench/sqlite-append.ts [batch sizes, default 50,250,1000,2500]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openConnection } from "../backends/store-sqlite/connection.js";
import { createSqliteLog } from "../backends/store-sqlite/log.js";
import { migrate } from "../backends/store-sqlite/schema.js";
import { newId } from "../services/lib/ids.js";
import type { NewMessage } from "../services/ports/index.js";

const CONVERSATIONS = 250;
const WARM_UP = 50_000;
const MEASURED = 50_000;

function measure(batchSize: number): number {
  const dir = mkdtempSync(join(tmpdir(), "sqlite-append-"));
  const db = openConnection(join(dir, "chat.db"), 5_000);
  try {
    migrate(db);
    db.pragma("synchronous = NORMAL");
    db.pragma("wal_autocheckpoint = 0");
    const addConversation = db.prepare("INSERT INTO conversations (conversation_id, kind, created_at) VALUES (?, 'direct', 0)");
    for (let i = 0; i < CONVERSATIONS; i++) addConversation.run(`d_${i}`);
    const log = createSqliteLog(db);
    const appendAlone = db.transaction((message: NewMessage) => log.appendOnce(message));
    const commit = db.transaction((messages: readonly NewMessage[]) => messages.map(appendAlone));
    let sent = 0;
    const run = (count: number) => {
      const started = process.hrtime.bigint();
      for (let batch = 0; batch < count / batchSize; batch++) {
        const messages = Array.from({ length: batchSize }, (): NewMessage => {
          const conversation = ++sent % CONVERSATIONS;
          return {
            messageId: newId("m"),
            conversationId: `d_${conversation}`,
            senderUserId: `u_${conversation * 2 + (sent % 2)}`,
            senderDeviceId: "d",
            clientMsgId: `c${sent}`,
            kind: "text",
            text: "x".repeat(100),
            sentAt: new Date(),
          };
        });
        commit.immediate(messages);
        if (batch % 20 === 0) db.pragma("wal_checkpoint(PASSIVE)");
      }
      return Number(process.hrtime.bigint() - started) / 1_000 / count;
    };
    run(WARM_UP);
    return run(MEASURED);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const sizes = (process.argv[2] ?? "50,250,1000,2500").split(",").map(Number);
for (const size of sizes) {
  console.log(`batch ${String(size).padStart(5)}: ${measure(size).toFixed(1)} µs per append (${MEASURED} appends after ${WARM_UP} to warm up)`);
}
