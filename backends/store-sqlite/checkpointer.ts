import { createRequire } from "node:module";
import { startEvalWorker } from "./eval-worker.js";

/**
 * Copies the WAL into the database file from a connection of its own on a worker thread. SQLite's
 * automatic checkpoint runs inside whichever commit crosses the threshold, so every few hundred
 * commits one of them held the event loop for the copy and two fsyncs (tens of ms). A PASSIVE
 * checkpoint from another connection blocks neither the writer nor the readers.
 */
export interface Checkpointer {
  /** Stops the worker; the main connection's close then checkpoints what is left. */
  stop(): Promise<void>;
}

export interface CheckpointerOptions {
  readonly path: string;
  readonly intervalMs: number;
  readonly busyTimeoutMs: number;
  /** The worker died: the caller turns SQLite's own checkpoints back on so the WAL stays bounded. */
  readonly onFailure: (error: Error) => void;
}

// Plain CommonJS evaluated in the worker, so it runs the same under tsx, vitest or compiled code.
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma("busy_timeout = " + workerData.busyTimeoutMs);
db.pragma("synchronous = FULL");
const timer = setInterval(() => db.pragma("wal_checkpoint(PASSIVE)"), workerData.intervalMs);
parentPort.on("message", () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export function startCheckpointer(options: CheckpointerOptions): Checkpointer {
  const worker = startEvalWorker(WORKER_SOURCE, {
    driver: createRequire(import.meta.url).resolve("better-sqlite3"),
    path: options.path,
    intervalMs: options.intervalMs,
    busyTimeoutMs: options.busyTimeoutMs,
  });
  let stopping = false;
  worker.unref();
  worker.on("error", (error) => options.onFailure(error));
  const exited = new Promise<void>((resolve) =>
    worker.once("exit", (code) => {
      if (!stopping && code !== 0) options.onFailure(new Error(`the SQLite checkpoint worker exited with code ${code}`));
      resolve();
    }),
  );
  return {
    async stop() {
      stopping = true;
      // Referenced again while it stops: otherwise a process with nothing else to do exits before
      // the worker does, with this promise never settled.
      worker.ref();
      worker.postMessage("stop");
      await exited;
    },
  };
}
