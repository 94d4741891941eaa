import { afterEach, describe, expect, it, vi } from "vitest";
import type { PresenceRegistry, PresenceState, PresenceWatch } from "../../services/ports/index.js";
import { describePresenceContract } from "../../test/contracts/presence-contract.js";
import { PresenceOverflowError } from "../../services/ports/index.js";
import { createMemoryPresence, type MemoryPresenceOptions } from "./index.js";

describePresenceContract("memory", ({ timeoutMs }) => createMemoryPresence({ timeoutMs }));

describe("memory presence engine", () => {
  const registries: PresenceRegistry[] = [];
  afterEach(async () => {
    vi.useRealTimers();
    vi.restoreAllMocks();
    for (const registry of registries.splice(0)) await registry.close();
  });

  function open(options: MemoryPresenceOptions): PresenceRegistry {
    const registry = createMemoryPresence(options);
    registries.push(registry);
    return registry;
  }

  /** A registry on a hand-moved clock, with a sweep too slow to ever run during a test. */
  function manual(timeoutMs = 1000) {
    let time = 1_000_000;
    const registry = open({ timeoutMs, sweepIntervalMs: 3_600_000, now: () => time });
    return { registry, at: (ms: number) => (time = 1_000_000 + ms), T: (ms: number) => new Date(1_000_000 + ms) };
  }

  // Taken before any test fakes the timers: draining must still be able to tell "nothing buffered".
  const realSetImmediate = setImmediate;
  const pendingReads = new WeakMap<PresenceWatch, { iterator: AsyncIterator<PresenceState>; pending?: Promise<IteratorResult<PresenceState>> }>();

  /**
   * Takes what a watch has buffered, without waiting for more. An unanswered read is kept for the
   * next call: dropping it would let the next change go to a reader nobody listens to.
   */
  async function drain(watch: PresenceWatch): Promise<PresenceState[]> {
    let reader = pendingReads.get(watch);
    if (!reader) pendingReads.set(watch, (reader = { iterator: watch[Symbol.asyncIterator]() }));
    const taken: PresenceState[] = [];
    for (;;) {
      reader.pending ??= reader.iterator.next();
      const next = await Promise.race([reader.pending, new Promise<"empty">((resolve) => realSetImmediate(() => resolve("empty")))]);
      if (next === "empty") return taken;
      reader.pending = undefined;
      if (next.done) return taken;
      taken.push(next.value);
    }
  }

  it("rejects timeouts, sweep intervals and buffer limits that are not positive", () => {
    expect(() => createMemoryPresence({ timeoutMs: 0 })).toThrow(RangeError);
    expect(() => createMemoryPresence({ timeoutMs: Number.NaN })).toThrow(RangeError);
    expect(() => createMemoryPresence({ timeoutMs: Number.POSITIVE_INFINITY })).toThrow(RangeError);
    expect(() => createMemoryPresence({ timeoutMs: 1000, sweepIntervalMs: -1 })).toThrow(RangeError);
    const registry = open({ timeoutMs: 1000 });
    expect(() => registry.watch([], { bufferLimit: 0 })).toThrow(RangeError);
  });

  it("applies expired deadlines on lookup, between sweeps, with lastSeen at the last heartbeat", async () => {
    const { registry, at, T } = manual(1000);
    const watch = registry.watch(["alice"]);
    at(0);
    await registry.heartbeat("alice", "phone");
    at(300);
    await registry.heartbeat("alice", "phone");
    at(1299);
    expect(await registry.lookup(["alice"])).toEqual([{ userId: "alice", online: true, lastSeen: T(300) }]);
    at(1300);
    expect(await registry.lookup(["alice"])).toEqual([{ userId: "alice", online: false, lastSeen: T(300) }]);
    expect(await drain(watch)).toEqual([
      { userId: "alice", online: true, lastSeen: T(0) },
      { userId: "alice", online: false, lastSeen: T(300) },
    ]);
  });

  it("expires each device on its own deadline, the user going offline with the last one", async () => {
    const { registry, at, T } = manual(1000);
    const watch = registry.watch(["alice", "bob"]);
    at(0);
    await registry.heartbeat("alice", "phone");
    at(100);
    await registry.heartbeat("bob", "phone");
    at(200);
    await registry.heartbeat("alice", "laptop");
    at(500);
    // Refreshing the first device moves it behind the others in the deadline order.
    await registry.heartbeat("alice", "phone");
    at(1150);
    expect((await registry.lookup(["alice", "bob"])).map((state) => state.online)).toEqual([true, false]);
    at(1499);
    expect((await registry.lookup(["alice"]))[0].online).toBe(true);
    at(1500);
    expect((await registry.lookup(["alice"]))[0]).toEqual({ userId: "alice", online: false, lastSeen: T(500) });
    expect((await drain(watch)).map((state) => [state.userId, state.online])).toEqual([
      ["alice", true],
      ["bob", true],
      ["bob", false],
      ["alice", false],
    ]);
  });

  it("reports a heartbeat that comes after its device's deadline as offline then online", async () => {
    const { registry, at, T } = manual(1000);
    const watch = registry.watch(["alice"]);
    at(0);
    await registry.heartbeat("alice", "phone");
    at(1000);
    await registry.heartbeat("alice", "phone");
    expect(await drain(watch)).toEqual([
      { userId: "alice", online: true, lastSeen: T(0) },
      { userId: "alice", online: false, lastSeen: T(0) },
      { userId: "alice", online: true, lastSeen: T(1000) },
    ]);
  });

  it("uses the disconnect time as lastSeen, and ignores a disconnect of an expired device", async () => {
    const { registry, at, T } = manual(1000);
    const watch = registry.watch(["alice"]);
    at(0);
    await registry.heartbeat("alice", "phone");
    at(400);
    await registry.disconnect("alice", "phone");
    expect(await registry.lookup(["alice"])).toEqual([{ userId: "alice", online: false, lastSeen: T(400) }]);

    at(500);
    await registry.heartbeat("alice", "phone");
    at(2000);
    await registry.disconnect("alice", "phone");
    expect(await registry.lookup(["alice"])).toEqual([{ userId: "alice", online: false, lastSeen: T(500) }]);
    expect((await drain(watch)).map((state) => [state.online, state.lastSeen!.getTime() - T(0).getTime()])).toEqual([
      [true, 0],
      [false, 400],
      [true, 500],
      [false, 500],
    ]);
  });

  it("never lets time run backwards when the clock steps back", async () => {
    const { registry, at, T } = manual(1000);
    at(5000);
    await registry.heartbeat("alice", "phone");
    at(1000);
    await registry.heartbeat("alice", "laptop");
    expect((await registry.lookup(["alice"]))[0].lastSeen).toEqual(T(5000));
    at(5999);
    expect((await registry.lookup(["alice"]))[0].online).toBe(true);
    at(6000);
    expect((await registry.lookup(["alice"]))[0]).toEqual({ userId: "alice", online: false, lastSeen: T(5000) });
  });

  it("sweeps with the default interval of a quarter of the timeout", async () => {
    vi.useFakeTimers({ now: 0 });
    const registry = open({ timeoutMs: 1000 });
    const watch = registry.watch(["alice"]);
    await registry.heartbeat("alice", "phone");
    expect(await drain(watch)).toHaveLength(1);
    vi.advanceTimersByTime(999);
    expect(await drain(watch)).toEqual([]);
    vi.advanceTimersByTime(251);
    expect(await drain(watch)).toEqual([{ userId: "alice", online: false, lastSeen: new Date(0) }]);
  });

  it("sweeps at least every second, whatever the timeout", async () => {
    vi.useFakeTimers({ now: 0 });
    const registry = open({ timeoutMs: 60_000 });
    const watch = registry.watch(["alice"]);
    await registry.heartbeat("alice", "phone");
    vi.advanceTimersByTime(61_000);
    expect((await drain(watch)).map((state) => state.online)).toEqual([true, false]);
  });

  it("unrefs its sweep timer and stops it on close()", async () => {
    const setIntervalSpy = vi.spyOn(globalThis, "setInterval");
    const clearIntervalSpy = vi.spyOn(globalThis, "clearInterval");
    const registry = createMemoryPresence({ timeoutMs: 1000 });
    expect(setIntervalSpy).toHaveBeenCalledTimes(1);
    const timer = setIntervalSpy.mock.results[0]!.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    await registry.close();
    expect(clearIntervalSpy).toHaveBeenCalledWith(timer);
  });

  it("ends an overflowing watch with a PresenceOverflowError, leaving other watchers alone", async () => {
    const { registry } = manual();
    const slow = registry.watch(["alice"], { bufferLimit: 3 });
    const other = registry.watch(["alice"]);
    for (let i = 0; i < 3; i++) {
      await registry.heartbeat("alice", "phone");
      await registry.disconnect("alice", "phone");
    }
    expect(await slow.closed).toBeInstanceOf(PresenceOverflowError);
    expect(await drain(other)).toHaveLength(6);
  });

  it("does not deliver changes buffered before update() for users no longer watched", async () => {
    const { registry } = manual();
    const watch = registry.watch(["alice", "bob"]);
    await registry.heartbeat("alice", "phone");
    await registry.heartbeat("bob", "phone");
    watch.update(["bob", "carol"]);
    await registry.heartbeat("carol", "phone");
    expect((await drain(watch)).map((state) => state.userId)).toEqual(["bob", "carol"]);
  });

  it("still delivers what was buffered before a watch was closed", async () => {
    const { registry } = manual();
    const watch = registry.watch(["alice"]);
    await registry.heartbeat("alice", "phone");
    await registry.disconnect("alice", "phone");
    watch.close();
    const seen: boolean[] = [];
    for await (const state of watch) seen.push(state.online);
    expect(seen).toEqual([true, false]);
  });

  it("after close(), ignores heartbeats, ends new watches at once, and still answers lookup", async () => {
    const { registry, at } = manual(1000);
    at(0);
    await registry.heartbeat("alice", "phone");
    await registry.close();
    await registry.heartbeat("bob", "phone");
    const late = registry.watch(["alice"]);
    expect(await late.closed).toBeUndefined();
    expect((await registry.lookup(["alice", "bob"])).map((state) => state.online)).toEqual([true, false]);
    at(1000);
    expect((await registry.lookup(["alice"]))[0].online).toBe(false);
    await registry.close();
  });

  it("tells each of many users' watchers only about that user", async () => {
    const { registry, at } = manual(1000);
    const users = Array.from({ length: 2_000 }, (_, i) => `user-${i}`);
    const watches = users.map((userId) => registry.watch([userId]));
    at(0);
    for (const userId of users) await registry.heartbeat(userId, "phone");
    for (let round = 1; round <= 3; round++) {
      at(round * 100);
      for (const userId of users) await registry.heartbeat(userId, "phone");
    }
    at(1500);
    const states = await registry.lookup(users);
    expect(states.every((state) => !state.online)).toBe(true);
    for (const index of [0, 123, 1999]) {
      expect((await drain(watches[index]!)).map((state) => [state.userId, state.online])).toEqual([
        [users[index], true],
        [users[index], false],
      ]);
    }
  });
});
