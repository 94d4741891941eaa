import { describeBusContract } from "../../test/contracts/bus-contract.js";
import { createMemoryBus } from "./index.js";

// One process is the whole cluster: the same bus stands for both gateways.
describeBusContract("memory", async () => {
  const bus = createMemoryBus();
  return { buses: [bus, bus], dispose: () => bus.close() };
});
