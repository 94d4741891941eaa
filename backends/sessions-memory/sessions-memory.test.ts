import { describe, expect, it } from "vitest";
import { describeSessionRegistryContract } from "../../test/contracts/session-registry-contract.js";
import { createMemorySessionDirectory, createMemorySessionRegistry } from "./index.js";

describeSessionRegistryContract("memory", async () => {
  const directory = createMemorySessionDirectory();
  const registries = [createMemorySessionRegistry({ gatewayId: "gw-a", directory }), createMemorySessionRegistry({ gatewayId: "gw-b", directory })] as const;
  return { registries, dispose: async () => void (await Promise.all(registries.map((registry) => registry.close()))) };
});

describe("memory session registry", () => {
  it("is a cluster of one without a shared directory", async () => {
    const one = createMemorySessionRegistry({ gatewayId: "gw-a" });
    const other = createMemorySessionRegistry({ gatewayId: "gw-b" });
    await one.register("alice", "phone");
    expect(await one.gatewaysOf(["alice"])).toEqual(new Map([["alice", ["gw-a"]]]));
    expect(await other.gatewaysOf(["alice"])).toEqual(new Map());
  });

  it("refuses an empty gateway id", () => {
    expect(() => createMemorySessionRegistry({ gatewayId: "" })).toThrow(RangeError);
  });
});
