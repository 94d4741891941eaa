import { createRequire } from "node:module";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import type { AppendResult, NewMessage } from "../../services/ports/index.js";
import { startEvalWorker } from "./eval-worker.js";
import { UnknownConversationError } from "./log.js";

export interface AppendThreadSettings {
  readonly path: string;
  readonly busyTimeoutMs: number;
  readonly maxBatch: number;
  /** False while the checkpoint worker copies the WAL, as for the main connection. */
  readonly autoCheckpoint: boolean;
}

export type ToAppendThread =
  | { readonly kind: "append"; readonly appends: readonly (readonly [id: number, message: NewMessage])[] }
  | { readonly kind: "auto-checkpoint"; readonly pages: number }
  | { readonly kind: "close" };

export type FromAppendThread =
  | { readonly kind: "replies"; readonly replies: readonly (readonly [id: number, result: AppendResult | undefined, error: WireError | undefined])[] }
  | { readonly kind: "closed" };

/** An error crossing from the thread: enough to rebuild the classes callers tell apart. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly conversationId?: string;
}

export interface AppendThread {
  append(message: NewMessage): Promise<AppendResult>;
  /** The checkpoint worker died: SQLite's own checkpoints come back on the thread's connection too. */
  enableAutoCheckpoint(pages: number): void;
  /** Commits what was sent to the thread, then stops it. Later appends go to the fallback. */
  close(): Promise<void>;
}

export interface AppendThreadOptions {
  readonly settings: AppendThreadSettings;
  /** Where appends go once the thread is gone (it died, or the store is closing): the in-thread writer. */
  readonly fallback: (message: NewMessage) => Promise<AppendResult>;
  /** Told once if the thread stops by itself; appends then run on the main thread. */
  readonly onStopped: (error: Error) => void;
}

// Plain CommonJS evaluated in the worker. The worker module is TypeScript when the gateway runs under
// tsx or vitest, loaded through tsx's require hook; compiled, it is plain JavaScript.
const BOOTSTRAP = `
const { workerData, parentPort } = require("node:worker_threads");
const { entry, tsxApi, settings } = workerData;
const loaded = tsxApi
  ? Promise.resolve().then(() => require(tsxApi).require(entry, entry))
  : import(require("node:url").pathToFileURL(entry).href);
loaded.then((module) => module.serveAppends(parentPort, settings));
`;

interface Pending {
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Users' sends, committed on a thread of their own (append-worker.ts). At a few thousand sends a
 * second the inserts and commits were about half of the event loop's time; here they overlap with
 * the stream work instead. An append still resolves only after its batch's fsync.
 */
export function startAppendThread(options: AppendThreadOptions): AppendThread {
  const here = fileURLToPath(import.meta.url);
  const entry = join(dirname(here), `append-worker${extname(here)}`);
  const tsxApi = entry.endsWith(".ts") ? createRequire(import.meta.url).resolve("tsx/cjs/api") : undefined;
  const worker = startEvalWorker(BOOTSTRAP, { entry, tsxApi, settings: options.settings });
  // Referenced only while appends wait for it, so an idle store never keeps the process alive.
  worker.unref();

  const pending = new Map<number, Pending>();
  let outgoing: [number, NewMessage][] = [];
  let nextId = 0;
  let gone = false;
  let closing: Promise<void> | undefined;

  function settle(id: number): Pending | undefined {
    const entry = pending.get(id);
    if (!entry) return undefined;
    pending.delete(id);
    if (pending.size === 0) worker.unref();
    return entry;
  }

  worker.on("message", (message: FromAppendThread) => {
    if (message.kind !== "replies") return;
    for (const [id, result, error] of message.replies) {
      const waiting = settle(id);
      if (error) waiting?.reject(errorFromWire(error));
      else waiting?.resolve(result!);
    }
  });
  const exited = new Promise<void>((resolve) =>
    worker.once("exit", (code) => {
      stop(new Error(`the SQLite append thread exited with code ${code}`));
      resolve();
    }),
  );
  worker.on("error", (error) => stop(error));

  /** Whatever still waits has an unknown outcome: the client's retry with the same key settles it. */
  function stop(reason: Error): void {
    if (gone) return;
    gone = true;
    outgoing = [];
    for (const id of [...pending.keys()]) {
      settle(id)?.reject(new Error(`${reason.message}; the send may or may not have been stored: send it again with the same client_msg_id`));
    }
    if (!closing) options.onStopped(reason);
  }

  function flush(): void {
    if (outgoing.length === 0 || gone) return;
    const appends = outgoing;
    outgoing = [];
    try {
      worker.postMessage({ kind: "append", appends } satisfies ToAppendThread);
    } catch (error) {
      // A value that cannot be cloned: these appends fail alone, like a bad bind in the writer.
      for (const [id] of appends) settle(id)?.reject(error);
    }
  }

  return {
    append(message) {
      if (gone || closing) return options.fallback(message);
      const id = nextId++;
      return new Promise<AppendResult>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        if (pending.size === 1) worker.ref();
        // Sends arriving in the same turn cross to the thread as one message.
        if (outgoing.push([id, message]) === 1) queueMicrotask(flush);
      });
    },
    enableAutoCheckpoint(pages) {
      if (!gone) worker.postMessage({ kind: "auto-checkpoint", pages } satisfies ToAppendThread);
    },
    close() {
      closing ??= (async () => {
        flush();
        if (gone) return;
        worker.ref();
        worker.postMessage({ kind: "close" } satisfies ToAppendThread);
        await exited;
      })();
      return closing;
    },
  };
}

function errorFromWire(error: WireError): Error {
  if (error.name === "UnknownConversationError" && error.conversationId !== undefined) return new UnknownConversationError(error.conversationId);
  if (error.name === "SqliteError" && error.code !== undefined) return new Database.SqliteError(error.message, error.code);
  if (error.name === "TypeError") return new TypeError(error.message);
  if (error.name === "RangeError") return new RangeError(error.message);
  const rebuilt = new Error(error.message);
  rebuilt.name = error.name;
  return rebuilt;
}
