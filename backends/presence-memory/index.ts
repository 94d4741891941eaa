import type { PresenceRegistry, PresenceState, PresenceWatch } from "../../services/ports/index.js";
import { createPresenceWatchers } from "../presence-watchers/index.js";

/** The sweep never waits longer than this, so a long timeout does not also mean a late offline. */
const MAX_SWEEP_INTERVAL_MS = 1000;

export interface MemoryPresenceOptions {
  /** How long a device counts as alive after its last heartbeat. */
  readonly timeoutMs: number;
  /**
   * How often expired devices are looked for; default min(timeoutMs / 4, 1000). A vanished device is
   * reported offline within timeoutMs + sweepIntervalMs of its last heartbeat.
   */
  readonly sweepIntervalMs?: number;
  /** The clock, in epoch milliseconds; for tests. */
  readonly now?: () => number;
}

interface Device {
  readonly userId: string;
  readonly deviceId: string;
  expiresAt: number;
  /** Neighbours in the deadline list. */
  earlier: Device | undefined;
  later: Device | undefined;
}

interface User {
  /** The live devices only: the user is online exactly while this is not empty. */
  readonly devices: Map<string, Device>;
  lastSeen: number;
}


/**
 * The single-process presence registry.
 *
 * - A heartbeat keeps its device alive until now + timeoutMs; the first live device of a user makes
 *   the user online. Further heartbeats only move the deadline and emit nothing.
 * - A disconnect drops the device at once; if it was the user's last one the user goes offline with
 *   lastSeen = the disconnect time, since the device was seen then.
 * - A device whose deadline passes expires; if it was the user's last one the user goes offline with
 *   lastSeen = the user's latest heartbeat (or disconnect of another device, if later).
 * - States of users who went offline are kept so lookup can still report their lastSeen; that is
 *   one small entry per user ever seen by this process, bounded by the accounts.
 *
 * After close() heartbeats and disconnects are ignored (shutdown races are normal and nothing would
 * observe them) and new watches end at once; lookup keeps answering, so users drift offline.
 */
export function createMemoryPresence(options: MemoryPresenceOptions): PresenceRegistry {
  const { timeoutMs } = options;
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw new RangeError(`timeoutMs must be a positive number, got ${timeoutMs}`);
  const sweepIntervalMs = options.sweepIntervalMs ?? Math.min(timeoutMs / 4, MAX_SWEEP_INTERVAL_MS);
  if (!(sweepIntervalMs > 0) || !Number.isFinite(sweepIntervalMs)) {
    throw new RangeError(`sweepIntervalMs must be a positive number, got ${sweepIntervalMs}`);
  }
  const now = options.now ?? Date.now;

  const users = new Map<string, User>();
  // Every live device in deadline order, as an intrusive doubly linked list. Since the timeout is the
  // same for all, a heartbeat moving its device to the end keeps the order in O(1), and a sweep stops
  // at the first live device, so it costs only what expired instead of a scan of every device. (A Set
  // re-inserted on every heartbeat keeps the order too, but iterating it from the front walks over
  // the holes its deletions leave, which made each heartbeat cost up to the number of devices.)
  let earliest: Device | undefined;
  let latest: Device | undefined;
  function unlink(device: Device): void {
    if (device.earlier) device.earlier.later = device.later;
    else earliest = device.later;
    if (device.later) device.later.earlier = device.earlier;
    else latest = device.earlier;
    device.earlier = device.later = undefined;
  }
  function append(device: Device): void {
    device.earlier = latest;
    device.later = undefined;
    if (latest) latest.later = device;
    else earliest = device;
    latest = device;
  }
  const watchers = createPresenceWatchers();
  let closed = false;
  // The deadline order needs time that never goes back; a clock step back would otherwise leave a
  // later deadline in front of an earlier one and hold the sweep up behind it.
  let lastTime = Number.NEGATIVE_INFINITY;
  function clock(): number {
    lastTime = Math.max(lastTime, now());
    return lastTime;
  }

  function emit(userId: string, online: boolean, lastSeen: number): void {
    watchers.notify({ userId, online, lastSeen: new Date(lastSeen) });
  }

  // Run before every operation as well as by the timer: lookups then agree with the deadlines
  // between sweeps, and a heartbeat arriving after its device's deadline reports the gap as an
  // offline followed by an online rather than hiding it.
  function expire(time: number): void {
    while (earliest && earliest.expiresAt <= time) {
      const device = earliest;
      unlink(device);
      const user = users.get(device.userId)!;
      user.devices.delete(device.deviceId);
      if (user.devices.size === 0) emit(device.userId, false, user.lastSeen);
    }
  }

  const sweep = setInterval(() => expire(clock()), sweepIntervalMs);
  // Presence alone must never keep a process alive.
  sweep.unref();

  return {
    async heartbeat(userId, deviceId) {
      if (closed) return;
      const time = clock();
      expire(time);
      let user = users.get(userId);
      if (!user) users.set(userId, (user = { devices: new Map(), lastSeen: time }));
      user.lastSeen = time;
      const known = user.devices.get(deviceId);
      if (known) {
        unlink(known);
        known.expiresAt = time + timeoutMs;
        append(known);
        return;
      }
      const device: Device = { userId, deviceId, expiresAt: time + timeoutMs, earlier: undefined, later: undefined };
      user.devices.set(deviceId, device);
      append(device);
      if (user.devices.size === 1) emit(userId, true, time);
    },

    async disconnect(userId, deviceId) {
      if (closed) return;
      const time = clock();
      expire(time);
      const user = users.get(userId);
      const device = user?.devices.get(deviceId);
      // An unknown or already expired device changes nothing, not even lastSeen: it was not seen.
      if (!user || !device) return;
      unlink(device);
      user.devices.delete(deviceId);
      user.lastSeen = time;
      if (user.devices.size === 0) emit(userId, false, time);
    },

    async lookup(userIds) {
      expire(clock());
      return userIds.map((userId): PresenceState => {
        const user = users.get(userId);
        if (!user) return { userId, online: false };
        return { userId, online: user.devices.size > 0, lastSeen: new Date(user.lastSeen) };
      });
    },

    watch(userIds, watchOptions = {}): PresenceWatch {
      return watchers.watch(userIds, watchOptions);
    },

    async close() {
      if (closed) return;
      closed = true;
      clearInterval(sweep);
      watchers.closeAll();
    },
  } satisfies PresenceRegistry;
}
