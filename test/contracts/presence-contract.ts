import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { PresenceRegistry, PresenceState, PresenceWatch } from "../../services/ports/index.js";

/** The timeout every contract registry is built with: short, so the suite runs on real timers. */
const TIMEOUT_MS = 200;
/** Slack for timer jitter and, for a networked engine, a round trip. */
const TOLERANCE_MS = 60;
/** How long "nothing arrives" is watched for; long enough for a networked engine's fan-out. */
const QUIET_MS = 100;
/** The latest an engine may report a vanished device offline: the timeout plus any sweep delay. */
const OFFLINE_DEADLINE_MS = TIMEOUT_MS * 3;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Reads a watch in the background so tests can wait for its changes, or for the lack of them. */
interface Recorder {
  readonly events: PresenceState[];
  /** Waits until at least `count` changes arrived; fails after `withinMs`. */
  waitFor(count: number, withinMs?: number): Promise<PresenceState[]>;
  /** Resolves when the iteration ended, with what it threw, if anything. */
  readonly ended: Promise<unknown>;
  readonly isEnded: () => boolean;
}

function record(watch: PresenceWatch): Recorder {
  const events: PresenceState[] = [];
  let wake: () => void = () => {};
  let changed = new Promise<void>((resolve) => (wake = resolve));
  let done = false;
  function signal(): void {
    const resolve = wake;
    changed = new Promise<void>((next) => (wake = next));
    resolve();
  }
  const ended = (async (): Promise<unknown> => {
    try {
      for await (const event of watch) {
        events.push(event);
        signal();
      }
      return undefined;
    } catch (error) {
      return error;
    } finally {
      done = true;
      signal();
    }
  })();
  return {
    events,
    ended,
    isEnded: () => done,
    async waitFor(count, withinMs = OFFLINE_DEADLINE_MS) {
      const deadline = Date.now() + withinMs;
      while (events.length < count) {
        const left = deadline - Date.now();
        if (done || left <= 0) {
          throw new Error(`expected ${count} presence changes within ${withinMs} ms, got ${JSON.stringify(events)}`);
        }
        await Promise.race([changed, sleep(left)]);
      }
      return events.slice(0, count);
    },
  };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    sleep(ms).then(() => {
      throw new Error(`${what} did not happen within ${ms} ms`);
    }),
  ]);
}

/**
 * What every PresenceRegistry engine must do, tested through the port only and on real timers. Each
 * test gets a fresh registry from `create` (built with a short timeout) and closes it at the end.
 */
export function describePresenceContract(
  engineName: string,
  create: (options: { timeoutMs: number }) => Promise<PresenceRegistry> | PresenceRegistry,
): void {
  describe(`PresenceRegistry contract: ${engineName}`, () => {
    let registry: PresenceRegistry;
    let registryClosed = false;
    const watches: PresenceWatch[] = [];
    // Ids carry a per-run tag, so the suite holds for an engine whose factory hands out one shared
    // keyspace rather than an empty registry per test.
    const run = Math.random().toString(36).slice(2, 8);
    let counter = 0;
    const user = (name: string) => `u_${name}_${run}_${++counter}`;

    function watch(userIds: readonly string[], options?: { bufferLimit?: number }): PresenceWatch {
      const created = registry.watch(userIds, options);
      watches.push(created);
      return created;
    }

    beforeEach(async () => {
      registry = await create({ timeoutMs: TIMEOUT_MS });
      registryClosed = false;
    });

    afterEach(async () => {
      for (const each of watches.splice(0)) each.close();
      if (!registryClosed) await registry.close();
    });

    function expectNear(actual: Date | undefined, expected: number, what: string): void {
      expect(actual, what).toBeInstanceOf(Date);
      expect(Math.abs(actual!.getTime() - expected), `${what}: ${actual!.toISOString()} vs ${new Date(expected).toISOString()}`).toBeLessThanOrEqual(
        TOLERANCE_MS,
      );
    }

    it("reports a user online on the first heartbeat, once to each watcher, and not again for more heartbeats or devices", async () => {
      const alice = user("alice");
      const first = record(watch([alice]));
      const second = record(watch([alice]));

      const before = Date.now();
      await registry.heartbeat(alice, "phone");
      const [online] = await first.waitFor(1, QUIET_MS * 3);
      expect(online).toMatchObject({ userId: alice, online: true });
      expectNear(online.lastSeen, before, "lastSeen of the online change");
      expect(await second.waitFor(1, QUIET_MS * 3)).toEqual([online]);

      await registry.heartbeat(alice, "phone");
      await registry.heartbeat(alice, "laptop");
      await registry.heartbeat(alice, "phone");
      await sleep(QUIET_MS);
      expect(first.events).toHaveLength(1);
      expect(second.events).toHaveLength(1);

      const [state] = await registry.lookup([alice]);
      expect(state).toMatchObject({ userId: alice, online: true });
    });

    it("sends no initial state to a new watcher", async () => {
      const alice = user("alice");
      await registry.heartbeat(alice, "phone");
      const late = record(watch([alice]));
      await sleep(QUIET_MS);
      expect(late.events).toEqual([]);
    });

    it("reports a user offline after the timeout once heartbeats stop, with lastSeen at the last heartbeat", async () => {
      const alice = user("alice");
      const recorder = record(watch([alice]));

      await registry.heartbeat(alice, "phone");
      await sleep(TIMEOUT_MS / 2);
      // The last heartbeat; then the client is killed and simply never sends another.
      const lastHeartbeat = Date.now();
      await registry.heartbeat(alice, "phone");

      const [halfway] = await registry.lookup([alice]);
      expect(halfway.online).toBe(true);

      const [online, offline] = await recorder.waitFor(2, TIMEOUT_MS + OFFLINE_DEADLINE_MS);
      const reportedAfter = Date.now() - lastHeartbeat;
      expect(online.online).toBe(true);
      expect(offline).toMatchObject({ userId: alice, online: false });
      expect(reportedAfter).toBeGreaterThanOrEqual(TIMEOUT_MS - TOLERANCE_MS);
      expect(reportedAfter).toBeLessThanOrEqual(OFFLINE_DEADLINE_MS);
      expectNear(offline.lastSeen, lastHeartbeat, "lastSeen of the offline change");

      const [looked] = await registry.lookup([alice]);
      expect(looked).toMatchObject({ userId: alice, online: false });
      expect(looked.lastSeen?.getTime()).toBe(offline.lastSeen!.getTime());
    });

    it("keeps a user online while one device disconnects and another stays, and offline at once when the last disconnects", async () => {
      const alice = user("alice");
      const recorder = record(watch([alice]));
      await registry.heartbeat(alice, "phone");
      await registry.heartbeat(alice, "laptop");
      await recorder.waitFor(1, QUIET_MS * 3);

      await registry.disconnect(alice, "phone");
      await registry.heartbeat(alice, "laptop");
      await sleep(QUIET_MS);
      expect(recorder.events).toHaveLength(1);
      expect((await registry.lookup([alice]))[0].online).toBe(true);

      const disconnectedAt = Date.now();
      await registry.disconnect(alice, "laptop");
      // "At once": no waiting for the timeout, and lookup agrees as soon as disconnect resolved.
      expect((await registry.lookup([alice]))[0].online).toBe(false);
      const [, offline] = await recorder.waitFor(2, TIMEOUT_MS / 2);
      expect(offline).toMatchObject({ userId: alice, online: false });
      expectNear(offline.lastSeen, disconnectedAt, "lastSeen of a disconnect");

      await sleep(QUIET_MS);
      expect(recorder.events).toHaveLength(2);
    });

    it("ignores a disconnect of a device that is not connected", async () => {
      const alice = user("alice");
      const recorder = record(watch([alice]));
      await registry.disconnect(alice, "never-connected");
      await registry.heartbeat(alice, "phone");
      await registry.disconnect(alice, "tablet");
      await sleep(QUIET_MS);
      expect(recorder.events.map((event) => event.online)).toEqual([true]);
    });

    it("sends a change only to the watchers of that user", async () => {
      const alice = user("alice");
      const bob = user("bob");
      const ofAlice = record(watch([alice]));
      const ofBob = record(watch([bob]));
      const ofNobody = record(watch([]));

      await registry.heartbeat(alice, "phone");
      await registry.disconnect(alice, "phone");
      await ofAlice.waitFor(2, QUIET_MS * 3);
      await sleep(QUIET_MS);
      expect(ofBob.events).toEqual([]);
      expect(ofNobody.events).toEqual([]);

      await registry.heartbeat(bob, "phone");
      await ofBob.waitFor(1, QUIET_MS * 3);
      await sleep(QUIET_MS);
      expect(ofAlice.events.map((event) => event.userId)).toEqual([alice, alice]);
      expect(ofBob.events.map((event) => [event.userId, event.online])).toEqual([[bob, true]]);
    });

    it("watches several users with one watch", async () => {
      const alice = user("alice");
      const bob = user("bob");
      const carol = user("carol");
      const recorder = record(watch([alice, bob]));
      await registry.heartbeat(alice, "phone");
      await registry.heartbeat(carol, "phone");
      await registry.heartbeat(bob, "phone");
      const events = await recorder.waitFor(2, QUIET_MS * 3);
      expect(events.map((event) => event.userId).sort()).toEqual([alice, bob].sort());
      await sleep(QUIET_MS);
      expect(recorder.events).toHaveLength(2);
    });

    it("replaces the watched users on update()", async () => {
      const alice = user("alice");
      const bob = user("bob");
      const handle = watch([alice]);
      const recorder = record(handle);
      await registry.heartbeat(alice, "phone");
      await recorder.waitFor(1, QUIET_MS * 3);

      handle.update([bob]);
      await registry.disconnect(alice, "phone");
      await registry.heartbeat(bob, "phone");
      const [, change] = await recorder.waitFor(2, QUIET_MS * 3);
      expect(change).toMatchObject({ userId: bob, online: true });

      await registry.heartbeat(alice, "phone");
      await sleep(QUIET_MS);
      expect(recorder.events.map((event) => [event.userId, event.online])).toEqual([
        [alice, true],
        [bob, true],
      ]);

      handle.update([]);
      await registry.disconnect(bob, "phone");
      await sleep(QUIET_MS);
      expect(recorder.events).toHaveLength(2);
    });

    it("ends the iteration on close() and resolves closed without an error", async () => {
      const alice = user("alice");
      const handle = watch([alice]);
      const recorder = record(handle);
      await sleep(10);
      handle.close();
      expect(await within(recorder.ended, 1000, "the end of the iteration")).toBeUndefined();
      expect(await within(handle.closed, 1000, "closed")).toBeUndefined();

      await registry.heartbeat(alice, "phone");
      await sleep(QUIET_MS);
      expect(recorder.events).toEqual([]);
    });

    it("ends the watch when the reader stops iterating", async () => {
      const alice = user("alice");
      const handle = watch([alice]);
      const reading = (async () => {
        for await (const event of handle) return event;
        return undefined;
      })();
      await registry.heartbeat(alice, "phone");
      expect(await within(reading, 1000, "the first change")).toMatchObject({ userId: alice, online: true });
      expect(await within(handle.closed, 1000, "closed after break")).toBeUndefined();
    });

    it("ends a watch whose reader falls behind past its buffer limit, with an error", async () => {
      const alice = user("alice");
      const handle = watch([alice], { bufferLimit: 2 });
      for (let i = 0; i < 3; i++) {
        await registry.heartbeat(alice, "phone");
        await registry.disconnect(alice, "phone");
      }
      const error = await within(handle.closed, 1000, "the overflow");
      expect(error).toBeInstanceOf(Error);
      const recorder = record(handle);
      expect(await within(recorder.ended, 1000, "the end of the iteration")).toBeInstanceOf(Error);
    });

    it("never fills a watch's buffer with changes of users it does not watch", async () => {
      const alice = user("alice");
      const bob = user("bob");
      const ofBob = watch([bob], { bufferLimit: 1 });
      const movedAway = watch([alice], { bufferLimit: 1 });
      movedAway.update([bob]);
      const ofAlice = record(watch([alice]));
      for (let i = 0; i < 4; i++) {
        await registry.heartbeat(alice, "phone");
        await registry.disconnect(alice, "phone");
      }
      await sleep(QUIET_MS);
      const ended = await Promise.race([
        ofBob.closed.then(() => "bob's watch ended"),
        movedAway.closed.then(() => "the updated watch ended"),
        sleep(0).then(() => "open"),
      ]);
      expect(ended).toBe("open");
      expect(ofAlice.events).toHaveLength(8);
    });

    it("ends every watch on close() of the registry", async () => {
      const alice = user("alice");
      const recorders = [record(watch([alice])), record(watch([]))];
      registryClosed = true;
      await registry.close();
      for (const recorder of recorders) await within(recorder.ended, 1000, "the end of a watch");
      expect(recorders.every((recorder) => recorder.isEnded())).toBe(true);
    });

    it("answers lookup with one state per id, in the given order, offline without lastSeen for a never-seen user", async () => {
      const alice = user("alice");
      const bob = user("bob");
      const ghost = user("ghost");
      const before = Date.now();
      await registry.heartbeat(alice, "phone");
      await registry.heartbeat(bob, "phone");
      await registry.disconnect(bob, "phone");

      const states = await registry.lookup([ghost, bob, alice, bob]);
      expect(states.map((state) => state.userId)).toEqual([ghost, bob, alice, bob]);
      expect(states[0]).toEqual({ userId: ghost, online: false });
      expect(states[0].lastSeen).toBeUndefined();
      expect(states[1]).toMatchObject({ userId: bob, online: false });
      expectNear(states[1].lastSeen, before, "bob's lastSeen");
      expect(states[2]).toMatchObject({ userId: alice, online: true });
      expectNear(states[2].lastSeen, before, "alice's lastSeen");
      expect(states[3]).toEqual(states[1]);

      expect(await registry.lookup([])).toEqual([]);
    });

    it("reports lastSeen as the latest heartbeat of any device", async () => {
      const alice = user("alice");
      await registry.heartbeat(alice, "phone");
      await sleep(TIMEOUT_MS / 2);
      const later = Date.now();
      await registry.heartbeat(alice, "laptop");
      const [state] = await registry.lookup([alice]);
      expectNear(state.lastSeen, later, "lastSeen");
    });

    it("keeps a device online for as long as heartbeats keep coming, across several timeouts", async () => {
      const alice = user("alice");
      const recorder = record(watch([alice]));
      const until = Date.now() + TIMEOUT_MS * 3;
      while (Date.now() < until) {
        await registry.heartbeat(alice, "phone");
        expect((await registry.lookup([alice]))[0].online).toBe(true);
        await sleep(TIMEOUT_MS / 4);
      }
      expect(recorder.events.map((event) => event.online)).toEqual([true]);
    });
  });
}
