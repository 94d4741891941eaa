import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DeviceLocation, SessionRegistry } from "../../services/ports/index.js";

/** Two gateways' registries over one shared backend. */
export interface RegistryPair {
  readonly registries: readonly [SessionRegistry, SessionRegistry];
  /** Closes whatever the test left open (close() of a closed registry must be harmless) and what they ran on. */
  dispose(): Promise<void>;
}

const sortLocations = (locations: readonly DeviceLocation[]) =>
  [...locations].sort((a, b) => `${a.deviceId}|${a.gatewayId}`.localeCompare(`${b.deviceId}|${b.gatewayId}`));

/**
 * What every SessionRegistry engine must do: each test gets two registries (two gateways) sharing a
 * backend from `create`, and disposes of them at the end. Expiry of a dead gateway's entries is
 * engine-specific (the in-process engine dies with its gateway) and tested with each engine.
 */
export function describeSessionRegistryContract(engineName: string, create: () => Promise<RegistryPair>): void {
  describe(`SessionRegistry contract: ${engineName}`, () => {
    let pair: RegistryPair;
    let one: SessionRegistry;
    let two: SessionRegistry;
    const run = Math.random().toString(36).slice(2, 8);
    let counter = 0;
    const user = (name: string) => `u_${name}_${run}_${++counter}`;

    beforeEach(async () => {
      pair = await create();
      [one, two] = pair.registries;
    });

    afterEach(async () => {
      await pair.dispose();
    });

    it("names its gateway, a different one per registry", () => {
      expect(one.gatewayId).toBeTruthy();
      expect(two.gatewayId).toBeTruthy();
      expect(one.gatewayId).not.toBe(two.gatewayId);
    });

    it("finds a registered device's gateway from either registry", async () => {
      const alice = user("alice");
      await one.register(alice, "phone");
      for (const registry of [one, two]) {
        expect(await registry.gatewaysOf([alice])).toEqual(new Map([[alice, [one.gatewayId]]]));
        expect(await registry.devicesOf(alice)).toEqual([{ deviceId: "phone", gatewayId: one.gatewayId }]);
      }
    });

    it("lists every gateway holding one of a user's devices, each once", async () => {
      const alice = user("alice");
      await one.register(alice, "phone");
      await one.register(alice, "tablet");
      await two.register(alice, "laptop");
      const gateways = (await two.gatewaysOf([alice])).get(alice);
      expect([...(gateways ?? [])].sort()).toEqual([one.gatewayId, two.gatewayId].sort());
      expect(sortLocations(await one.devicesOf(alice))).toEqual(
        sortLocations([
          { deviceId: "phone", gatewayId: one.gatewayId },
          { deviceId: "tablet", gatewayId: one.gatewayId },
          { deviceId: "laptop", gatewayId: two.gatewayId },
        ]),
      );
    });

    it("answers many users at once, leaving out those without devices", async () => {
      const users = Array.from({ length: 1200 }, (_, i) => user(`many${i}`));
      const registered = users.filter((_, i) => i % 3 === 0);
      await Promise.all(registered.map((userId, i) => (i % 2 ? one : two).register(userId, "phone")));
      const found = await one.gatewaysOf([...users, registered[0]!]);
      expect(found.size).toBe(registered.length);
      registered.forEach((userId, i) => expect(found.get(userId)).toEqual([(i % 2 ? one : two).gatewayId]));
      expect(await one.gatewaysOf([])).toEqual(new Map());
      expect(await two.devicesOf(user("nobody"))).toEqual([]);
    });

    it("keeps one entry for a device registered twice", async () => {
      const alice = user("alice");
      await one.register(alice, "phone");
      await one.register(alice, "phone");
      expect(await two.devicesOf(alice)).toEqual([{ deviceId: "phone", gatewayId: one.gatewayId }]);
    });

    it("keeps a device registered twice until it is unregistered twice (a reconnect overlapping the old stream's end)", async () => {
      const alice = user("alice");
      await one.register(alice, "phone");
      await one.register(alice, "phone");
      await one.unregister(alice, "phone");
      expect(await two.devicesOf(alice)).toEqual([{ deviceId: "phone", gatewayId: one.gatewayId }]);
      expect(await two.gatewaysOf([alice])).toEqual(new Map([[alice, [one.gatewayId]]]));
      await one.unregister(alice, "phone");
      expect(await two.devicesOf(alice)).toEqual([]);
    });

    it("forgets an unregistered device, and the user with their last device", async () => {
      const alice = user("alice");
      await one.register(alice, "phone");
      await one.register(alice, "tablet");
      await one.unregister(alice, "phone");
      expect(await two.devicesOf(alice)).toEqual([{ deviceId: "tablet", gatewayId: one.gatewayId }]);
      await one.unregister(alice, "tablet");
      expect(await two.devicesOf(alice)).toEqual([]);
      expect(await two.gatewaysOf([alice])).toEqual(new Map());
    });

    it("ignores unregistering a device it does not hold, including one held by another gateway", async () => {
      const alice = user("alice");
      await one.unregister(alice, "never");
      await two.register(alice, "laptop");
      await one.unregister(alice, "laptop");
      expect(await one.devicesOf(alice)).toEqual([{ deviceId: "laptop", gatewayId: two.gatewayId }]);
    });

    it("shows a device moving between gateways on both until the old one lets go", async () => {
      const alice = user("alice");
      await one.register(alice, "phone");
      await two.register(alice, "phone");
      expect(sortLocations(await one.devicesOf(alice))).toEqual(
        sortLocations([
          { deviceId: "phone", gatewayId: one.gatewayId },
          { deviceId: "phone", gatewayId: two.gatewayId },
        ]),
      );
      await one.unregister(alice, "phone");
      expect(await one.gatewaysOf([alice])).toEqual(new Map([[alice, [two.gatewayId]]]));
    });

    it("takes a closed registry's devices out of what the others see, and ignores it after", async () => {
      const alice = user("alice");
      const bob = user("bob");
      await one.register(alice, "phone");
      await one.register(bob, "phone");
      await two.register(bob, "laptop");
      await one.close();
      await one.register(alice, "tablet");
      expect(await two.gatewaysOf([alice, bob])).toEqual(new Map([[bob, [two.gatewayId]]]));
    });
  });
}
