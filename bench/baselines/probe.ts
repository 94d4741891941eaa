/** The relays have no /metrics: the bench asks them for their V8 heap over the IPC channel. */
export function answerProbes(): void {
  process.on("message", (message: { type?: string }) => {
    if (message.type === "heap") process.send?.({ type: "heap", heapUsed: process.memoryUsage().heapUsed });
  });
  process.on("disconnect", () => process.exit(0));
}
