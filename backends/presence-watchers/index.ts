import { AsyncQueue } from "../../lib/async-queue.js";
import { PresenceOverflowError, type PresenceState, type PresenceWatch } from "../../services/ports/index.js";

const DEFAULT_BUFFER_LIMIT = 1000;

interface Watcher {
  readonly queue: AsyncQueue<PresenceState>;
  /** Kept after the watch ends, so the reader still gets what was buffered before a clean close. */
  watched: ReadonlySet<string>;
}

export interface WatcherHooks {
  /** The first watcher of a user appeared (e.g. subscribe to the user's channel). */
  readonly firstWatcher?: (userId: string) => void;
  /** The last watcher of a user left. */
  readonly lastWatcher?: (userId: string) => void;
}

/** The watch side every presence engine shares: watchers indexed by watched user, bounded queues. */
export interface PresenceWatchers {
  watch(userIds: readonly string[], options?: { readonly bufferLimit?: number }): PresenceWatch;
  /** Passes a change to the watchers of that user only. */
  notify(state: PresenceState): void;
  isWatched(userId: string): boolean;
  watchedUsers(): string[];
  /** Ends every watch; later watches end at once. */
  closeAll(): void;
}

export function createPresenceWatchers(hooks: WatcherHooks = {}): PresenceWatchers {
  const watchersByUser = new Map<string, Set<Watcher>>();
  const open = new Set<Watcher>();
  let closed = false;

  function index(watcher: Watcher, userIds: Iterable<string>): void {
    for (const userId of userIds) {
      let set = watchersByUser.get(userId);
      if (!set) {
        watchersByUser.set(userId, (set = new Set()));
        hooks.firstWatcher?.(userId);
      }
      set.add(watcher);
    }
  }

  function unindex(watcher: Watcher, userIds: Iterable<string>): void {
    for (const userId of userIds) {
      const set = watchersByUser.get(userId);
      if (!set?.delete(watcher) || set.size > 0) continue;
      watchersByUser.delete(userId);
      hooks.lastWatcher?.(userId);
    }
  }

  return {
    watch(userIds, options = {}) {
      const limit = options.bufferLimit ?? DEFAULT_BUFFER_LIMIT;
      if (!(limit >= 1)) throw new RangeError(`bufferLimit must be at least 1, got ${limit}`);
      const queue = new AsyncQueue<PresenceState>(limit, () => new PresenceOverflowError(`more than ${limit} presence changes waited for one watcher`));
      const watcher: Watcher = { queue, watched: new Set(userIds) };
      if (closed) {
        queue.end();
      } else {
        open.add(watcher);
        index(watcher, watcher.watched);
        void queue.closed.then(() => {
          open.delete(watcher);
          unindex(watcher, watcher.watched);
        });
      }
      return {
        [Symbol.asyncIterator](): AsyncIterator<PresenceState> {
          const inner = queue[Symbol.asyncIterator]();
          return {
            // Changes buffered before an update() for users no longer watched are dropped here, so
            // a reader never sees a user it has stopped watching.
            async next() {
              for (;;) {
                const result = await inner.next();
                if (result.done || watcher.watched.has(result.value.userId)) return result;
              }
            },
            return: () => inner.return!(),
            throw: () => inner.throw!(),
          };
        },
        update(next) {
          if (queue.isEnded) return;
          const replaced = new Set(next);
          unindex(watcher, [...watcher.watched].filter((userId) => !replaced.has(userId)));
          index(watcher, replaced);
          watcher.watched = replaced;
        },
        close: () => queue.end(),
        closed: queue.closed,
      };
    },
    notify(state) {
      const set = watchersByUser.get(state.userId);
      if (set) for (const watcher of set) watcher.queue.push(state);
    },
    isWatched: (userId) => watchersByUser.has(userId),
    watchedUsers: () => [...watchersByUser.keys()],
    closeAll() {
      closed = true;
      for (const watcher of open) watcher.queue.end();
      open.clear();
      watchersByUser.clear();
    },
  };
}
