import { randomBytes, timingSafeEqual, type ScryptOptions } from "node:crypto";
import { Worker } from "node:worker_threads";
import { ChatError, ErrorReason } from "../errors.js";

const KEY_LENGTH = 32;

function scryptOptions(logCost: number, blockSize: number, parallelism: number): ScryptOptions {
  const cost = 2 ** logCost;
  // scrypt needs 128 * N * r bytes; Node's default ceiling (32 MiB) is too low for N = 2^15.
  return { N: cost, r: blockSize, p: parallelism, maxmem: 256 * cost * blockSize + 1024 * 1024 };
}

/**
 * Runs in each hashing thread. scryptSync on the thread itself, not the async scrypt: that one runs on
 * libuv's shared pool (4 threads), where a login flood would queue ahead of the store's file writes and
 * fsyncs and so hold back every send's ack. The thread lowers its own scheduling priority (on Linux
 * setpriority with pid 0 applies to the calling thread), so under load the event loop wins the CPU.
 */
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { scryptSync } = require("node:crypto");
try { require("node:os").setPriority(0, 10); } catch {}
parentPort.on("message", ({ id, password, salt, options }) => {
  try {
    const key = scryptSync(password, salt, ${KEY_LENGTH}, options);
    parentPort.postMessage({ id, key });
  } catch (error) {
    parentPort.postMessage({ id, error: String(error && error.message) });
  }
});
`;

export interface PasswordHasherOptions {
  /** Hashing threads; each hash keeps one core busy for its whole duration. */
  readonly threads?: number;
  /** Hashes that may wait for a thread; past it a hash is refused with a retryable UNAVAILABLE. */
  readonly queueLimit?: number;
}

export interface PasswordHasher {
  /** scrypt, encoded with its parameters (`scrypt$logN$r$p$salt$key`) so the cost can be raised without invalidating stored hashes. */
  hash(password: string, logCost: number): Promise<string>;
  verify(password: string, encoded: string): Promise<boolean>;
  /** Hashes waiting for a thread, and running. */
  readonly pending: number;
  close(): Promise<void>;
}

interface Job {
  readonly id: number;
  readonly password: string;
  readonly salt: Buffer;
  readonly options: ScryptOptions;
  readonly resolve: (key: Buffer) => void;
  readonly reject: (error: Error) => void;
}

interface Thread {
  readonly worker: Worker;
  job: Job | undefined;
}

export const DEFAULT_HASH_THREADS = 1;
export const DEFAULT_HASH_QUEUE_LIMIT = 1024;

/**
 * Password hashing on its own small pool of threads with a bounded queue. Threads start on first use
 * and do not keep the process alive.
 */
export function createPasswordHasher(options: PasswordHasherOptions = {}): PasswordHasher {
  const threadCount = Math.max(1, options.threads ?? DEFAULT_HASH_THREADS);
  const queueLimit = Math.max(0, options.queueLimit ?? DEFAULT_HASH_QUEUE_LIMIT);
  const threads: Thread[] = [];
  const queue: Job[] = [];
  let nextId = 0;
  let closed = false;

  function startThread(): Thread {
    const thread: Thread = { worker: new Worker(WORKER_SOURCE, { eval: true }), job: undefined };
    thread.worker.unref();
    thread.worker.on("message", (reply: { id: number; key?: Uint8Array; error?: string }) => {
      const job = thread.job;
      thread.job = undefined;
      if (job && job.id === reply.id) {
        if (reply.key) job.resolve(Buffer.from(reply.key));
        else job.reject(new Error(`scrypt failed: ${reply.error}`));
      }
      dispatch();
    });
    thread.worker.on("error", (error) => {
      // A thread that died takes its job with it; a new one takes its place for the rest.
      threads.splice(threads.indexOf(thread), 1);
      thread.job?.reject(error);
      if (!closed) dispatch();
    });
    threads.push(thread);
    return thread;
  }

  function dispatch(): void {
    while (queue.length > 0) {
      const idle = threads.find((thread) => !thread.job) ?? (threads.length < threadCount ? startThread() : undefined);
      if (!idle) return;
      const job = queue.shift()!;
      idle.job = job;
      // The worker is referenced only while it has work, so an idle pool never holds the process open.
      idle.worker.ref();
      idle.worker.postMessage({ id: job.id, password: job.password, salt: job.salt, options: job.options });
    }
    for (const thread of threads) if (!thread.job) thread.worker.unref();
  }

  function derive(password: string, salt: Buffer, scrypt: ScryptOptions): Promise<Buffer> {
    if (closed) return Promise.reject(new Error("the password hasher is closed"));
    const running = threads.filter((thread) => thread.job).length;
    if (queue.length >= queueLimit && running >= threadCount) {
      return Promise.reject(
        new ChatError("unavailable", ErrorReason.UNAVAILABLE, "too many logins and sign-ups are waiting; retry in a few seconds", "", { retry_after_ms: "2000" }),
      );
    }
    return new Promise((resolve, reject) => {
      queue.push({ id: nextId++, password: password.normalize("NFKC"), salt, options: scrypt, resolve, reject });
      dispatch();
    });
  }

  return {
    async hash(password, logCost) {
      const salt = randomBytes(16);
      const key = await derive(password, salt, scryptOptions(logCost, 8, 1));
      return ["scrypt", logCost, 8, 1, salt.toString("base64url"), key.toString("base64url")].join("$");
    },
    async verify(password, encoded) {
      const [scheme, logCost, blockSize, parallelism, salt, key] = encoded.split("$");
      if (scheme !== "scrypt" || !salt || !key) return false;
      const expected = Buffer.from(key, "base64url");
      const actual = await derive(password, Buffer.from(salt, "base64url"), scryptOptions(Number(logCost), Number(blockSize), Number(parallelism)));
      return actual.length === expected.length && timingSafeEqual(actual, expected);
    },
    get pending() {
      return queue.length + threads.filter((thread) => thread.job).length;
    },
    async close() {
      closed = true;
      for (const job of queue.splice(0)) job.reject(new Error("the password hasher is closed"));
      await Promise.all(threads.splice(0).map((thread) => thread.worker.terminate()));
    },
  };
}
