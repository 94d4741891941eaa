/** One message for one gateway's subject. */
export interface OutboxMessage {
  readonly gatewayId: string;
  /** The users it is for on that gateway ("all" only for a lost notice). */
  readonly recipients: readonly string[] | "all";
  readonly data: Uint8Array;
  /** The JetStream message id: a retry of a message JetStream did store is dropped as a duplicate. */
  readonly msgId: string;
  /** Lost notices are never dropped (there is one per gateway at most, see below). */
  readonly lost: boolean;
}

interface Entry extends OutboxMessage {
  readonly order: number;
  readonly enqueuedAt: number;
}

export interface OutboxOptions {
  /** Hands one message to JetStream; rejects if it was not stored (or the answer did not come). */
  readonly send: (message: OutboxMessage) => Promise<void>;
  /** Builds the lost notice telling a gateway that events for these users were dropped. */
  readonly lostNotice: (gatewayId: string, recipients: readonly string[] | "all") => OutboxMessage;
  /** Messages waiting at most (in flight not counted); past it the oldest is dropped. */
  readonly limit: number;
  /** A message not sent within this long is dropped: by then its recipients are better off resuming from the store. */
  readonly maxAgeMs: number;
  /** Sends awaiting their acknowledgement at once: publishes are pipelined, not one round trip each. */
  readonly maxInFlight: number;
  /** After a failed send the outbox pauses this long before trying again (a failure is rarely alone). */
  readonly retryDelayMs: number;
  /** More lost users than this for one gateway become "all of them". */
  readonly maxLostUsers: number;
  readonly onDrop: (message: OutboxMessage, reason: "full" | "expired") => void;
  readonly onSendError: (error: unknown) => void;
  readonly now?: () => number;
}

export interface Outbox {
  enqueue(message: OutboxMessage): void;
  /** While disconnected nothing is sent; messages wait (and age). */
  setConnected(connected: boolean): void;
  /** Resolves true once everything queued was sent (or dropped), false if that took longer than timeoutMs. */
  flush(timeoutMs: number): Promise<boolean>;
  /** Stops sending; what is left is dropped without notice (the process is going away). */
  close(): void;
  readonly size: number;
}

/**
 * The bounded queue between publish() and JetStream, so publish never waits for (or fails with) NATS.
 *
 * Messages go out in enqueue order, up to maxInFlight at once. A failed send is put back in its place
 * and the outbox pauses for retryDelayMs; the retry keeps its msgId, so JetStream drops it if the first
 * attempt was stored after all. While NATS is disconnected nothing is sent, and sends still awaiting
 * their answer when the connection dropped go again first once it is back. A message is dropped when
 * it is older than maxAgeMs or pushed out by a full outbox; for every dropped message its recipients
 * are remembered per gateway, and before anything else is sent to that gateway it gets a lost notice
 * naming them, so it can end those users' subscriptions and let their devices resume from the store
 * instead of silently missing events. Lost notices never expire and are merged per gateway, so they
 * are bounded by the number of gateways times maxLostUsers.
 */
export function createOutbox(options: OutboxOptions): Outbox {
  const now = options.now ?? Date.now;
  // FIFO of messages to send, as an array with a moving head (shift() is O(n)).
  let queue: Entry[] = [];
  let head = 0;
  // Failed sends waiting to go again, kept in enqueue order; they go before the queue.
  const retries: Entry[] = [];
  const lost = new Map<string, Set<string> | "all">();
  let order = 0;
  // Sends awaiting their answer. On a disconnect they are given up on (see setConnected).
  const inFlight = new Set<{ readonly entry: Entry }>();
  let connected = true;
  let closed = false;
  // Set while paused after a failed send.
  let resumeTimer: NodeJS.Timeout | undefined;
  const idle = new Set<() => void>();

  const waiting = () => queue.length - head + retries.length;

  function recordLost(message: OutboxMessage): void {
    if (message.recipients === "all") {
      lost.set(message.gatewayId, "all");
      return;
    }
    let users = lost.get(message.gatewayId);
    if (users === "all") return;
    if (!users) lost.set(message.gatewayId, (users = new Set()));
    for (const userId of message.recipients) users.add(userId);
    if (users.size > options.maxLostUsers) lost.set(message.gatewayId, "all");
  }

  function drop(entry: Entry, reason: "full" | "expired"): void {
    recordLost(entry);
    options.onDrop(entry, reason);
  }

  function shiftQueue(): Entry | undefined {
    if (head >= queue.length) return undefined;
    const entry = queue[head]!;
    queue[head++] = undefined as unknown as Entry;
    if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
    return entry;
  }

  function dropExpired(time: number): void {
    while (retries.length > 0 && !retries[0]!.lost && time - retries[0]!.enqueuedAt > options.maxAgeMs) drop(retries.shift()!, "expired");
    while (head < queue.length && time - queue[head]!.enqueuedAt > options.maxAgeMs) drop(shiftQueue()!, "expired");
  }

  function next(): Entry | undefined {
    const [gatewayId, users] = lost.entries().next().value ?? [];
    if (gatewayId !== undefined && users !== undefined) {
      lost.delete(gatewayId);
      return { ...options.lostNotice(gatewayId, users === "all" ? "all" : [...users]), order: -1, enqueuedAt: now() };
    }
    return retries.shift() ?? shiftQueue();
  }

  function settleIdle(): void {
    if (inFlight.size > 0 || waiting() > 0 || lost.size > 0) return;
    for (const resolve of idle) resolve();
    idle.clear();
  }

  function pump(): void {
    if (closed || !connected || resumeTimer) return;
    dropExpired(now());
    while (inFlight.size < options.maxInFlight) {
      const entry = next();
      if (!entry) break;
      const attempt = { entry };
      inFlight.add(attempt);
      options.send(entry).then(
        () => {},
        (error: unknown) => {
          if (closed || !inFlight.has(attempt)) return;
          putBack(entry);
          if (!resumeTimer) {
            resumeTimer = setTimeout(() => {
              resumeTimer = undefined;
              pump();
            }, options.retryDelayMs);
            resumeTimer.unref();
          }
          options.onSendError(error);
        },
      ).finally(() => {
        // An attempt given up on at a disconnect was already put back; its late answer changes nothing.
        if (!inFlight.delete(attempt)) return;
        pump();
        settleIdle();
      });
    }
    settleIdle();
  }

  function putBack(entry: Entry): void {
    if (entry.lost) recordLost(entry);
    else retries.splice(insertionPoint(entry.order), 0, entry);
  }

  function insertionPoint(entryOrder: number): number {
    let index = retries.length;
    while (index > 0 && retries[index - 1]!.order > entryOrder) index--;
    return index;
  }

  return {
    enqueue(message) {
      if (closed) return;
      while (waiting() >= options.limit) drop(retries.shift() ?? shiftQueue()!, "full");
      queue.push({ ...message, order: order++, enqueuedAt: now() });
      pump();
    },
    setConnected(value) {
      connected = value;
      if (!connected) {
        // Requests written to the lost connection get no answer until they time out; waiting for
        // that would let newer messages overtake them after the reconnect. They go again first
        // instead, with their msgIds, so JetStream drops the copy of any it had stored.
        for (const { entry } of inFlight) putBack(entry);
        inFlight.clear();
      }
      pump();
    },
    flush(timeoutMs) {
      if (inFlight.size === 0 && waiting() === 0 && lost.size === 0) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          idle.delete(done);
          resolve(false);
        }, timeoutMs);
        idle.add(done);
        pump();
      });
    },
    close() {
      closed = true;
      clearTimeout(resumeTimer);
      resumeTimer = undefined;
      queue = [];
      head = 0;
      retries.length = 0;
      lost.clear();
      settleIdle();
    },
    get size() {
      return waiting();
    },
  };
}
