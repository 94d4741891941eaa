import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Where a ChatSession keeps what must outlive the process: tokens, cursors and the outbox. Values are
 * JSON so any key-value store (a file, IndexedDB, the keychain) can back it.
 */
export interface SessionStorage {
  get(key: string): Promise<JsonValue | undefined>;
  set(key: string, value: JsonValue): Promise<void>;
}

/** Lives as long as the process: for tests, and for apps that need no restart survival. */
export function createMemoryStorage(): SessionStorage {
  const values = new Map<string, string>();
  return {
    // Stored as text so that callers can't mutate what was saved through a reference they kept.
    get: async (key) => {
      const text = values.get(key);
      return text === undefined ? undefined : (JSON.parse(text) as JsonValue);
    },
    set: async (key, value) => void values.set(key, JSON.stringify(value)),
  };
}

/**
 * All keys in one JSON file. Each write goes to a temp file that is synced and then renamed over the
 * old one, so a crash mid-write leaves either the old state or the new one, never a torn file.
 */
export function createFileStorage(path: string): SessionStorage {
  let cache: Promise<Record<string, JsonValue>> | undefined;
  // Writes are chained so an older snapshot can never be renamed over a newer one.
  let writing: Promise<void> = Promise.resolve();

  const load = (): Promise<Record<string, JsonValue>> =>
    (cache ??= readFile(path, "utf8").then(
      (text) => JSON.parse(text) as Record<string, JsonValue>,
      (error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return {};
        throw error;
      },
    ));

  const write = async (state: Record<string, JsonValue>): Promise<void> => {
    await mkdir(dirname(path), { recursive: true });
    const temp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    try {
      const file = await open(temp, "w");
      try {
        await file.writeFile(JSON.stringify(state));
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  };

  return {
    get: async (key) => {
      const state = await load();
      return key in state ? (JSON.parse(JSON.stringify(state[key])) as JsonValue) : undefined;
    },
    set: async (key, value) => {
      const state = await load();
      state[key] = JSON.parse(JSON.stringify(value)) as JsonValue;
      const snapshot = { ...state };
      const done = writing.then(() => write(snapshot));
      writing = done.catch(() => undefined);
      return done;
    },
  };
}
