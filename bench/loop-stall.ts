import { monitorEventLoopDelay } from "node:perf_hooks";

/**
 * prom-client's default `eventLoopMonitoringPrecision`, which the gateway's /metrics uses; the relays
 * and the generator sample at the same resolution so that their figures compare.
 */
export const LOOP_RESOLUTION_MS = 10;

/**
 * The delay histogram records each interval between its timer's runs, the resolution included (an
 * idle loop reads about 10 ms): the stall is what lies beyond the resolution.
 */
export const stallMs = (maxDelayMs: number): number => Math.max(0, maxDelayMs - LOOP_RESOLUTION_MS);

/** The longest event-loop delay since the previous call, in ms (as prom-client's collect: read, then reset). */
export function loopDelayMonitor(): () => number {
  const histogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  histogram.enable();
  return () => {
    const max = histogram.max / 1e6;
    histogram.reset();
    return max;
  };
}
