import { loopDelayMonitor } from "../loop-stall.js";

/**
 * The relays have no /metrics: the bench asks them over the IPC channel for their V8 heap and for the
 * longest event-loop delay since it last asked (what the gateway's /metrics reports).
 */
export function answerProbes(): void {
  const takeLoopDelay = loopDelayMonitor();
  process.on("message", (message: { type?: string }) => {
    if (message.type === "heap") process.send?.({ type: "heap", heapUsed: process.memoryUsage().heapUsed });
    else if (message.type === "loop") process.send?.({ type: "loop", maxDelayMs: takeLoopDelay() });
  });
  process.on("disconnect", () => process.exit(0));
}
