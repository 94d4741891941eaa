import { AsyncQueue } from "../../lib/async-queue.js";
import { BusOverflowError, type BusEvent, type BusSubscription, type EventBus, type SubscribeOptions } from "../../services/ports/index.js";

const DEFAULT_BUFFER_LIMIT = 10_000;

/** The single-process bus: events go straight to the subscribers' queues. */
export function createMemoryBus(): EventBus {
  const subscribers = new Map<string, Set<AsyncQueue<BusEvent>>>();

  function remove(userId: string, queue: AsyncQueue<BusEvent>): void {
    const set = subscribers.get(userId);
    if (!set) return;
    set.delete(queue);
    if (set.size === 0) subscribers.delete(userId);
  }

  return {
    async publish(userIds, event) {
      for (const userId of userIds) {
        const set = subscribers.get(userId);
        if (!set) continue;
        for (const queue of set) queue.push(event);
      }
    },
    subscribe(userId: string, options: SubscribeOptions = {}): BusSubscription {
      const limit = options.bufferLimit ?? DEFAULT_BUFFER_LIMIT;
      const queue = new AsyncQueue<BusEvent>(
        limit,
        () => new BusOverflowError(`more than ${limit} events waited for one subscriber of user ${userId}`),
      );
      let set = subscribers.get(userId);
      if (!set) subscribers.set(userId, (set = new Set()));
      set.add(queue);
      void queue.closed.then(() => remove(userId, queue));
      return queue;
    },
    async close() {
      for (const set of subscribers.values()) for (const queue of set) queue.end();
      subscribers.clear();
    },
  } satisfies EventBus;
}
