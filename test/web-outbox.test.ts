import { describe, expect, it, vi } from "vitest";

/** The web client's outbox (clients/web/outbox.js, a browser module with no DOM use), run under Node. */
interface Entry {
  clientMsgId: string;
  conversationId: string;
  text: string;
  files: { name: string }[];
  state: string;
  waiting: boolean;
  error: unknown;
}
interface OutboxLike {
  entries: Entry[];
  add(input: { clientMsgId: string; conversationId: string; text: string; files?: { name: string }[] }): Entry;
  of(conversationId: string): Entry[];
  settle(clientMsgId: string): Entry | undefined;
  retry(entry: Entry): void;
  kick(now: boolean): void;
  stop(): void;
  load(): Entry[];
}
type OutboxClass = new (options: { deliver: (entry: Entry) => Promise<unknown>; onChange: (entry: Entry) => void; storage: Storage; key: string; random?: () => number }) => OutboxLike;

const { Outbox } = (await import("../clients/web/outbox.js" as string)) as { Outbox: OutboxClass };
const { ApiError } = (await import("../clients/web/api.js" as string)) as { ApiError: new (message: string, code: string) => Error };

type Storage = { getItem(key: string): string | null; setItem(key: string, value: string): void; removeItem(key: string): void };

function memoryStorage(): Storage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return { data, getItem: (key) => data.get(key) ?? null, setItem: (key, value) => void data.set(key, value), removeItem: (key) => void data.delete(key) };
}

/** A deliver whose every call the test answers by hand, in the order the calls came. */
function scriptedDeliver() {
  const calls: { entry: Entry; resolve: () => void; reject: (error: unknown) => void }[] = [];
  const deliver = (entry: Entry) => new Promise<void>((resolve, reject) => calls.push({ entry, resolve, reject }));
  return { calls, deliver };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("web client outbox", () => {
  it("sends one message at a time, in the order written", async () => {
    const { calls, deliver } = scriptedDeliver();
    const outbox = new Outbox({ deliver, onChange: () => {}, storage: memoryStorage(), key: "k" });
    for (const text of ["one", "two", "three"]) outbox.add({ clientMsgId: `id-${text}`, conversationId: "c", text });
    outbox.kick(false);
    outbox.kick(false);
    await tick();
    expect(calls.map((call) => call.entry.text)).toEqual(["one"]);
    calls[0]!.resolve();
    await tick();
    expect(calls.map((call) => call.entry.text)).toEqual(["one", "two"]);
    calls[1]!.resolve();
    await tick();
    calls[2]!.resolve();
    await tick();
    expect(outbox.entries).toEqual([]);
  });

  it("keeps everything waiting, in order and with the same clientMsgId, while the server cannot be reached", async () => {
    vi.useFakeTimers();
    try {
      const { calls, deliver } = scriptedDeliver();
      const changes: string[] = [];
      const outbox = new Outbox({ deliver, onChange: (entry) => changes.push(`${entry.text}:${entry.state}`), storage: memoryStorage(), key: "k", random: () => 0 });
      outbox.add({ clientMsgId: "id-1", conversationId: "c", text: "one" });
      outbox.add({ clientMsgId: "id-2", conversationId: "c", text: "two" });
      outbox.kick(false);
      await vi.advanceTimersByTimeAsync(0);
      calls[0]!.reject(new TypeError("Failed to fetch"));
      await vi.advanceTimersByTimeAsync(0);
      expect(outbox.entries.map((entry) => [entry.text, entry.state, entry.waiting])).toEqual([
        ["one", "queued", true],
        ["two", "queued", true],
      ]);
      expect(calls).toHaveLength(1);
      // The first retry comes by itself after a pause (0.5-1 s); a server error asking to wait counts the same.
      await vi.advanceTimersByTimeAsync(499);
      expect(calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(calls.map((call) => call.entry.clientMsgId)).toEqual(["id-1", "id-1"]);
      calls[1]!.reject(new ApiError("try later", "UNAVAILABLE"));
      await vi.advanceTimersByTimeAsync(0);
      // Back online: at once, not at the next retry.
      outbox.kick(true);
      await vi.advanceTimersByTimeAsync(0);
      expect(calls.map((call) => call.entry.clientMsgId)).toEqual(["id-1", "id-1", "id-1"]);
      calls[2]!.resolve();
      await vi.advanceTimersByTimeAsync(0);
      calls[3]!.resolve();
      await vi.advanceTimersByTimeAsync(0);
      expect(calls.map((call) => call.entry.clientMsgId)).toEqual(["id-1", "id-1", "id-1", "id-2"]);
      expect(outbox.entries).toEqual([]);
      expect(changes.at(-1)).toBe("two:done");
    } finally {
      vi.useRealTimers();
    }
  });

  it("marks a refused message failed and goes on with the next; a retry sends it again with its clientMsgId", async () => {
    const { calls, deliver } = scriptedDeliver();
    const outbox = new Outbox({ deliver, onChange: () => {}, storage: memoryStorage(), key: "k" });
    const tooLong = outbox.add({ clientMsgId: "id-long", conversationId: "c", text: "x".repeat(10) });
    outbox.add({ clientMsgId: "id-next", conversationId: "c", text: "next" });
    outbox.kick(false);
    await tick();
    calls[0]!.reject(new ApiError("too long", "TEXT_TOO_LONG"));
    await tick();
    expect(tooLong.state).toBe("failed");
    expect((tooLong.error as { code: string }).code).toBe("TEXT_TOO_LONG");
    expect(calls.map((call) => call.entry.clientMsgId)).toEqual(["id-long", "id-next"]);
    calls[1]!.resolve();
    await tick();
    expect(outbox.entries.map((entry) => entry.clientMsgId)).toEqual(["id-long"]);
    outbox.retry(tooLong);
    await tick();
    expect(calls.map((call) => call.entry.clientMsgId)).toEqual(["id-long", "id-next", "id-long"]);
  });

  it("drops a message the feed brought while its send was under way, whatever the send's answer", async () => {
    const { calls, deliver } = scriptedDeliver();
    const outbox = new Outbox({ deliver, onChange: () => {}, storage: memoryStorage(), key: "k" });
    outbox.add({ clientMsgId: "id-1", conversationId: "c", text: "one" });
    outbox.add({ clientMsgId: "id-2", conversationId: "c", text: "two" });
    outbox.kick(false);
    await tick();
    expect(outbox.settle("id-1")?.state).toBe("done");
    calls[0]!.reject(new TypeError("the answer was lost"));
    await tick();
    expect(calls.map((call) => call.entry.clientMsgId)).toEqual(["id-1", "id-2"]);
    expect(outbox.of("c").map((entry) => entry.clientMsgId)).toEqual(["id-2"]);
  });

  it("keeps text messages still waiting across a reload, with their clientMsgIds; files cannot be kept", async () => {
    const storage = memoryStorage();
    const first = new Outbox({ deliver: () => new Promise(() => {}), onChange: () => {}, storage, key: "chat.outbox.u1" });
    first.add({ clientMsgId: "id-1", conversationId: "c1", text: "one" });
    first.add({ clientMsgId: "id-2", conversationId: "c2", text: "with a file", files: [{ name: "a.png" }] });
    first.add({ clientMsgId: "id-3", conversationId: "c1", text: "three" });
    first.stop();
    const again = new Outbox({ deliver: () => new Promise(() => {}), onChange: () => {}, storage, key: "chat.outbox.u1" });
    expect(again.load().map((entry) => [entry.clientMsgId, entry.conversationId, entry.text, entry.state])).toEqual([
      ["id-1", "c1", "one", "queued"],
      ["id-3", "c1", "three", "queued"],
    ]);
    again.settle("id-1");
    again.settle("id-3");
    expect(storage.data.has("chat.outbox.u1")).toBe(false);
    storage.setItem("chat.outbox.u1", "not json");
    expect(new Outbox({ deliver: () => new Promise(() => {}), onChange: () => {}, storage, key: "chat.outbox.u1" }).load()).toEqual([]);
  });
});
