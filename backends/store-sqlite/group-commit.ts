export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

export interface GroupCommit<I, O> {
  /** Queues the item; resolves or rejects once the batch holding it has been committed. */
  submit(item: I): Promise<O>;
  /** Commits everything queued, now; later submits reject. */
  close(): void;
}

export interface GroupCommitOptions<I, O> {
  /**
   * Writes a whole batch in one transaction and returns one outcome per item, in order. Throwing
   * means nothing of the batch was stored: every item rejects with that error.
   */
  readonly commit: (items: readonly I[]) => readonly Outcome<O>[];
  /** Bounds the transaction (and how long it holds the event loop); the rest waits for the next flush. */
  readonly maxBatch: number;
  readonly closedError: () => Error;
  /**
   * Called after each committed batch; the batch's items settle only once the promise it returns
   * has resolved (rejecting fails them all). For a commit that is durable only after an fsync run
   * off the event loop. The next batch is committed after that, so everything submitted during one
   * fsync shares the next transaction and the next fsync.
   */
  readonly afterCommit?: () => Promise<void>;
}

interface Pending<I, O> {
  readonly item: I;
  readonly resolve: (value: O) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit: what is submitted during one turn of the event loop is written by one transaction
 * on `setImmediate`, so a hundred concurrent sends pay for one fsync instead of a hundred. Batches
 * are taken in submission order, so the order of calls is the order of the writes.
 */
export function createGroupCommit<I, O>(options: GroupCommitOptions<I, O>): GroupCommit<I, O> {
  const { commit, maxBatch, closedError } = options;
  if (!(Number.isInteger(maxBatch) && maxBatch > 0)) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
  let queue: Pending<I, O>[] = [];
  let scheduled = false;
  let closed = false;
  let syncing = false;

  function flushOne(): void {
    const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
    queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
    let outcomes: readonly Outcome<O>[];
    try {
      outcomes = commit(batch.map((pending) => pending.item));
      if (outcomes.length !== batch.length) throw new Error(`group commit: ${outcomes.length} outcomes for ${batch.length} items`);
    } catch (error) {
      for (const pending of batch) pending.reject(error);
      return;
    }
    const settle = () =>
      batch.forEach((pending, i) => {
        const outcome = outcomes[i]!;
        if (outcome.ok) pending.resolve(outcome.value);
        else pending.reject(outcome.error);
      });
    if (!options.afterCommit) return settle();
    syncing = true;
    options
      .afterCommit()
      .then(settle, (error: unknown) => {
        for (const pending of batch) pending.reject(error);
      })
      .finally(() => {
        syncing = false;
        if (queue.length > 0) schedule();
      });
  }

  function onImmediate(): void {
    scheduled = false;
    if (queue.length === 0 || syncing) return;
    flushOne();
    // Whatever was over the cap goes out on the next turn, letting reads and I/O in between.
    if (queue.length > 0) schedule();
  }

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    setImmediate(onImmediate);
  }

  return {
    submit(item) {
      if (closed) return Promise.reject(closedError());
      return new Promise<O>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        schedule();
      });
    },
    close() {
      closed = true;
      while (queue.length > 0) flushOne();
    },
  };
}

