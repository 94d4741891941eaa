/**
 * One serial lane per key (here: per conversation) inside one process. Work submitted to a lane runs
 * in submission order, one batch at a time; what arrives while a batch is running waits and forms the
 * next batch. For the sequencer this means a gateway never races itself for a conversation's next seq:
 * its concurrent sends share one compare-and-set round instead of fighting over it, and only other
 * gateways can make a round fail.
 */
export interface Lanes<T> {
  /** Queues the item on its key's lane. Rejects at once after close(). */
  submit(key: string, item: T): void;
  /** Refuses new items and resolves once every queued item has been run. */
  close(): Promise<void>;
}

export interface LanesOptions<T> {
  /**
   * Takes the next batch from the front of a non-empty queue (at least one item). The lane runs it
   * with `run`, which must settle every item itself and never throw.
   */
  readonly take: (queue: readonly T[]) => number;
  readonly run: (key: string, batch: readonly T[]) => Promise<void>;
  /** Called for an item submitted after close(). */
  readonly refuse: (item: T) => void;
}

interface Lane<T> {
  readonly queue: T[];
}

export function createLanes<T>(options: LanesOptions<T>): Lanes<T> {
  const { take, run, refuse } = options;
  const lanes = new Map<string, Lane<T>>();
  const draining = new Set<Promise<void>>();
  let closed = false;

  async function drain(key: string, lane: Lane<T>): Promise<void> {
    // One macrotask first, so everything submitted in the same tick joins the first batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (lane.queue.length > 0) {
      const count = Math.max(1, Math.min(lane.queue.length, take(lane.queue)));
      const batch = lane.queue.splice(0, count);
      // `run` settles its items and does not throw; were it to, the lane must still move on.
      await run(key, batch).catch(() => undefined);
    }
    lanes.delete(key);
  }

  return {
    submit(key, item) {
      if (closed) {
        refuse(item);
        return;
      }
      const existing = lanes.get(key);
      if (existing) {
        existing.queue.push(item);
        return;
      }
      const lane: Lane<T> = { queue: [item] };
      lanes.set(key, lane);
      const done = drain(key, lane).finally(() => draining.delete(done));
      draining.add(done);
    },
    async close() {
      closed = true;
      while (draining.size > 0) await Promise.all([...draining]);
    },
  };
}
