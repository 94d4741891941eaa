import { createMemoryBus } from "../backends/bus-memory/index.js";
import { createMemoryPresence } from "../backends/presence-memory/index.js";
import { createSqliteStore } from "../backends/store-sqlite/index.js";
import type { ChatStore, EventBus, PresenceRegistry } from "../services/ports/index.js";

/** Picks the engine behind each port from its URL; the only place that names concrete engines. */
export async function openStore(url: string): Promise<ChatStore> {
  if (url.startsWith("sqlite:")) return createSqliteStore({ path: url.slice("sqlite:".length) });
  throw new Error(`no store engine for "${url}"; use sqlite:<path>`);
}

export async function openBus(url: string): Promise<EventBus> {
  if (url === "memory:") return createMemoryBus();
  throw new Error(`no bus engine for "${url}"; use memory:`);
}

export async function openPresence(url: string, timeoutMs: number): Promise<PresenceRegistry> {
  if (url === "memory:") return createMemoryPresence({ timeoutMs });
  throw new Error(`no presence engine for "${url}"; use memory:`);
}
