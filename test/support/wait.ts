/** Polls until the check holds; a check that throws counts as "not yet". Never a timing assertion: only a give-up bound. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string | (() => string)): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const label = typeof what === "function" ? what() : what;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}${lastError ? ` (last error: ${String(lastError)})` : ""}`);
    }
    await sleep(100);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface TakeUntilOptions<T> {
  /** What the caller waits for, in words: the failure message starts with it. */
  readonly what: string;
  /** Give-up bound, not a timing assertion. */
  readonly timeoutMs?: number;
  /** How an item is shown when the wait fails; JSON by default. */
  readonly show?: (item: T) => string;
}

/**
 * Reads `source` until `done(item)` holds and returns everything read, that item included. Fails
 * within `timeoutMs`, or as soon as the source ends, with what it waited for and what arrived instead,
 * so a negative check ("nothing else came") can end on a later marker rather than on a sleep.
 */
export async function takeUntil<T>(source: AsyncIterator<T> | AsyncIterable<T>, done: (item: T) => boolean, options: TakeUntilOptions<T>): Promise<T[]> {
  const iterator = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const show = options.show ?? showJson;
  const seen: T[] = [];
  const deadline = Date.now() + timeoutMs;
  // The last few items say what came instead; a long catch-up shows as its count and its tail.
  const failure = (why: string) => {
    const tail = seen.slice(-10).map(show).join(" | ");
    const shown = seen.length > 10 ? `, the last 10: ${tail}` : seen.length ? `: ${tail}` : "";
    return new Error(`${why} waiting for ${options.what}; ${seen.length} item(s) arrived instead${shown}`);
  };
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now()))));
    const next = await Promise.race([iterator.next(), timedOut]).finally(() => clearTimeout(timer));
    if (next === "timeout") throw failure(`timed out after ${timeoutMs} ms`);
    if (next.done) throw failure("the stream ended");
    seen.push(next.value);
    if (done(next.value)) return seen;
  }
}

function showJson(item: unknown): string {
  const text = JSON.stringify(item, (_key, value: unknown) => (typeof value === "bigint" ? `${value}n` : value));
  return text === undefined ? String(item) : text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
