import type { MessagePort } from "node:worker_threads";
import type { AppendResult } from "../../services/ports/index.js";
import type { AppendThreadSettings, FromAppendThread, ToAppendThread, WireError } from "./append-thread.js";
import { openConnection } from "./connection.js";
import { createSqliteLog } from "./log.js";
import { createSqliteWriter } from "./writer.js";

type Reply = Extract<FromAppendThread, { kind: "replies" }>["replies"][number];

/**
 * The append thread's side (started by append-thread.ts): its own connection and group-commit writer,
 * so the inserts, commits and fsyncs of users' sends never hold the gateway's event loop. The main
 * connection still takes the rarer seq-taking writes (group changes); SQLite's write lock orders the
 * two, and each takes the next seq inside its own IMMEDIATE transaction.
 */
export function serveAppends(port: MessagePort, settings: AppendThreadSettings): void {
  const db = openConnection(settings.path, settings.busyTimeoutMs);
  if (!settings.autoCheckpoint) db.pragma("wal_autocheckpoint = 0");
  const log = createSqliteLog(db);
  const writer = createSqliteWriter(db, settings.maxBatch);
  let unsettled = 0;
  let onSettled: (() => void) | undefined;

  // A batch settles together after its fsync: one message back for all of it.
  let replies: Reply[] = [];
  function reply(entry: Reply): void {
    if (replies.push(entry) === 1) {
      queueMicrotask(() => {
        const batch = replies;
        replies = [];
        port.postMessage({ kind: "replies", replies: batch } satisfies FromAppendThread);
      });
    }
    if (--unsettled === 0) onSettled?.();
  }
  function settled(id: number, result: AppendResult): void {
    reply([id, result, undefined]);
  }
  function failed(id: number, error: unknown): void {
    reply([id, undefined, wireErrorOf(error)]);
  }

  port.on("message", (message: ToAppendThread) => {
    switch (message.kind) {
      case "append":
        for (const [id, newMessage] of message.appends) {
          unsettled++;
          writer.submit(() => log.appendOnce(newMessage)).then(
            (result) => settled(id, result),
            (error: unknown) => failed(id, error),
          );
        }
        return;
      case "auto-checkpoint":
        db.pragma(`wal_autocheckpoint = ${Math.trunc(message.pages)}`);
        return;
      case "close":
        writer.close();
        void new Promise<void>((resolve) => (unsettled === 0 ? resolve() : (onSettled = resolve))).then(() =>
          // The last replies go out in a microtask: after them, then.
          queueMicrotask(() => {
            db.close();
            port.postMessage({ kind: "closed" } satisfies FromAppendThread);
            port.close();
          }),
        );
    }
  });
}

function wireErrorOf(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const code = (error as { code?: unknown }).code;
  const conversationId = (error as { conversationId?: unknown }).conversationId;
  return {
    name: error.name,
    message: error.message,
    ...(typeof code === "string" ? { code } : {}),
    ...(typeof conversationId === "string" ? { conversationId } : {}),
  };
}
