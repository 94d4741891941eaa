import type { DeviceLocation, SessionRegistry } from "../../services/ports/index.js";

/**
 * Where the devices of several in-process registries are kept, so that tests (and a process that runs
 * several gateways) can see one another's devices. One process is otherwise the whole cluster.
 */
export interface MemorySessionDirectory {
  /** userId → deviceId → gatewayIds holding it (a device may briefly be on two gateways while it moves). */
  readonly users: Map<string, Map<string, Set<string>>>;
}

export function createMemorySessionDirectory(): MemorySessionDirectory {
  return { users: new Map() };
}

export interface MemorySessionRegistryOptions {
  readonly gatewayId: string;
  /** Shared with the other registries of this process; a registry of its own by default. */
  readonly directory?: MemorySessionDirectory;
}

/**
 * The single-process session registry. Nothing expires: the registry lives and dies with the process
 * that holds the devices, and close() takes this gateway's devices out of the directory.
 */
export function createMemorySessionRegistry(options: MemorySessionRegistryOptions): SessionRegistry {
  const { gatewayId } = options;
  if (!gatewayId) throw new RangeError("gatewayId must not be empty");
  const { users } = options.directory ?? createMemorySessionDirectory();
  // This registry's own entries with how many open registrations each has, so close() removes exactly them.
  const own = new Map<string, Map<string, number>>();
  let closed = false;

  function remove(userId: string, deviceId: string): void {
    const devices = users.get(userId);
    const gateways = devices?.get(deviceId);
    if (!devices || !gateways) return;
    gateways.delete(gatewayId);
    if (gateways.size === 0) devices.delete(deviceId);
    if (devices.size === 0) users.delete(userId);
  }

  return {
    gatewayId,
    async register(userId, deviceId) {
      if (closed) return;
      let devices = users.get(userId);
      if (!devices) users.set(userId, (devices = new Map()));
      let gateways = devices.get(deviceId);
      if (!gateways) devices.set(deviceId, (gateways = new Set()));
      gateways.add(gatewayId);
      let mine = own.get(userId);
      if (!mine) own.set(userId, (mine = new Map()));
      mine.set(deviceId, (mine.get(deviceId) ?? 0) + 1);
    },
    async unregister(userId, deviceId) {
      const mine = own.get(userId);
      const count = mine?.get(deviceId);
      if (!mine || !count) return;
      if (count > 1) return void mine.set(deviceId, count - 1);
      mine.delete(deviceId);
      if (mine.size === 0) own.delete(userId);
      remove(userId, deviceId);
    },
    async gatewaysOf(userIds) {
      const result = new Map<string, string[]>();
      for (const userId of userIds) {
        const devices = users.get(userId);
        if (!devices || result.has(userId)) continue;
        const gateways = new Set<string>();
        for (const holders of devices.values()) for (const holder of holders) gateways.add(holder);
        result.set(userId, [...gateways]);
      }
      return result;
    },
    async devicesOf(userId): Promise<DeviceLocation[]> {
      const locations: DeviceLocation[] = [];
      for (const [deviceId, holders] of users.get(userId) ?? []) {
        for (const holder of holders) locations.push({ deviceId, gatewayId: holder });
      }
      return locations;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const [userId, devices] of own) for (const deviceId of devices.keys()) remove(userId, deviceId);
      own.clear();
    },
  } satisfies SessionRegistry;
}
