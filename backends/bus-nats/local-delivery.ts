import { AsyncQueue } from "../../lib/async-queue.js";
import { BusOverflowError, type BusEvent, type BusSubscription, type SubscribeOptions } from "../../services/ports/index.js";

const DEFAULT_BUFFER_LIMIT = 10_000;

/** The subscribers of this gateway, by user: where events end up once they reach the gateway. */
export interface LocalDelivery {
  subscribe(userId: string, options?: SubscribeOptions): BusSubscription;
  /** Never waits: a subscriber whose buffer is full ends with BusOverflowError instead. */
  deliver(userIds: Iterable<string>, event: BusEvent): void;
  /** Ends the subscriptions of these users (of all users for "all") with the error. */
  fail(userIds: Iterable<string> | "all", error: () => Error): void;
  /** Ends every subscription cleanly; later ones end at once. */
  close(): void;
}

export function createLocalDelivery(): LocalDelivery {
  const subscribers = new Map<string, Set<AsyncQueue<BusEvent>>>();
  let closed = false;

  function remove(userId: string, queue: AsyncQueue<BusEvent>): void {
    const set = subscribers.get(userId);
    if (!set?.delete(queue)) return;
    if (set.size === 0) subscribers.delete(userId);
  }

  return {
    subscribe(userId, options = {}) {
      const limit = options.bufferLimit ?? DEFAULT_BUFFER_LIMIT;
      if (!(limit >= 1)) throw new RangeError(`bufferLimit must be at least 1, got ${limit}`);
      const queue = new AsyncQueue<BusEvent>(
        limit,
        () => new BusOverflowError(`more than ${limit} events waited for one subscriber of user ${userId}`),
      );
      if (closed) {
        queue.end();
      } else {
        let set = subscribers.get(userId);
        if (!set) subscribers.set(userId, (set = new Set()));
        set.add(queue);
        void queue.closed.then(() => remove(userId, queue));
      }
      return queue;
    },
    deliver(userIds, event) {
      for (const userId of userIds) {
        const set = subscribers.get(userId);
        if (set) for (const queue of set) queue.push(event);
      }
    },
    fail(userIds, error) {
      const users = userIds === "all" ? [...subscribers.keys()] : userIds;
      for (const userId of users) for (const queue of [...(subscribers.get(userId) ?? [])]) queue.end(error());
    },
    close() {
      closed = true;
      for (const set of [...subscribers.values()]) for (const queue of [...set]) queue.end();
      subscribers.clear();
    },
  };
}
