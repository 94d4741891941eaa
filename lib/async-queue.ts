/**
 * A bounded single-consumer queue that is also an AsyncIterable. Producers never wait: past the limit
 * the queue ends with the error from `onOverflow`, because every stream in this system can be rebuilt
 * from the store, and a producer that waited would let one slow reader stall everyone else.
 */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  private items: T[] = [];
  private head = 0;
  private waiting: ((result: IteratorResult<T>) => void) | undefined;
  private failWaiting: ((error: Error) => void) | undefined;
  private ended = false;
  private endError: Error | undefined;
  private readonly settled: Promise<Error | undefined>;
  private settle!: (error: Error | undefined) => void;

  constructor(
    private readonly limit = Number.POSITIVE_INFINITY,
    private readonly onOverflow: () => Error = () => new Error("queue overflow"),
  ) {
    this.settled = new Promise((resolve) => (this.settle = resolve));
  }

  get size(): number {
    return this.items.length - this.head;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Resolves when the queue has ended, with the error that ended it, if any. */
  get closed(): Promise<Error | undefined> {
    return this.settled;
  }

  /** Returns false when the item was not taken (queue ended, or it just overflowed). */
  push(item: T): boolean {
    if (this.ended) return false;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = this.failWaiting = undefined;
      resolve({ value: item, done: false });
      return true;
    }
    if (this.size >= this.limit) {
      this.end(this.onOverflow());
      return false;
    }
    this.items.push(item);
    return true;
  }

  /** Ends the queue cleanly: a bus subscription is the queue itself, without closures around it. */
  close(): void {
    this.end();
  }

  /** Ends the queue. Buffered items are still delivered before a clean end; an error ends at once. */
  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = error;
    if (error) {
      this.items = [];
      this.head = 0;
    }
    this.settle(error);
    if (this.waiting) {
      const resolve = this.waiting;
      const reject = this.failWaiting!;
      this.waiting = this.failWaiting = undefined;
      if (error) reject(error);
      else resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.size > 0) {
      const value = this.items[this.head]!;
      this.items[this.head++] = undefined as T;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) {
      return this.endError ? Promise.reject(this.endError) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failWaiting = reject;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Connect's clients abort a request stream through throw(); the queue just ends. */
  throw(): Promise<IteratorResult<T>> {
    return this.return();
  }

  /**
   * The queue is its own iterator (it has one consumer): a gateway holds two queues per idle device,
   * and an iterator object of three closures each was about 1.5 KB per device under tsx.
   */
  [Symbol.asyncIterator](): this {
    return this;
  }
}
