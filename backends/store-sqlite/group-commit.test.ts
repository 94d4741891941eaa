import { describe, expect, it } from "vitest";
import { createGroupCommit, type Outcome } from "./group-commit.js";

/** Lets the event loop turn `count` times: a batch is flushed on setImmediate, so this is enough for one to happen. */
async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

function recorder(outcome: (item: number) => Outcome<string> = (item) => ({ ok: true, value: `v${item}` })) {
  const batches: number[][] = [];
  let failNext: Error | undefined;
  const group = createGroupCommit<number, string>({
    commit(items) {
      batches.push([...items]);
      if (failNext) {
        const error = failNext;
        failNext = undefined;
        throw error;
      }
      return items.map(outcome);
    },
    maxBatch: 1_000,
    closedError: () => new Error("closed"),
  });
  return { group, batches, failNextCommit: (error: Error) => (failNext = error) };
}

describe("group commit", () => {
  it("writes everything submitted in one tick as one batch, in call order, and resolves after it", async () => {
    const { group, batches } = recorder();
    const results = [1, 2, 3].map((item) => group.submit(item));
    await Promise.resolve();
    expect(batches).toEqual([]); // nothing is written before setImmediate
    expect(await Promise.all(results)).toEqual(["v1", "v2", "v3"]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it("caps a batch and sends the rest with the next flush", async () => {
    const { group, batches } = recorder();
    const items = Array.from({ length: 2_500 }, (_, i) => i);
    const results = await Promise.all(items.map((item) => group.submit(item)));
    expect(results).toEqual(items.map((i) => `v${i}`));
    expect(batches.map((b) => b.length)).toEqual([1_000, 1_000, 500]);
    expect(batches.flat()).toEqual(items);
  });

  it("starts a new batch for submits made after the flush", async () => {
    const { group, batches } = recorder();
    await group.submit(1);
    await Promise.all([group.submit(2), group.submit(3)]);
    expect(batches).toEqual([[1], [2, 3]]);
  });

  it("rejects only the items whose outcome failed", async () => {
    const { group } = recorder((item) => (item === 2 ? { ok: false, error: new Error("item 2") } : { ok: true, value: `v${item}` }));
    const settled = await Promise.allSettled([1, 2, 3].map((item) => group.submit(item)));
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((settled[1] as PromiseRejectedResult).reason).toEqual(new Error("item 2"));
  });

  it("rejects the whole batch when the commit throws, and keeps working", async () => {
    const { group, failNextCommit } = recorder();
    const failure = new Error("disk on fire");
    failNextCommit(failure);
    const settled = await Promise.allSettled([1, 2].map((item) => group.submit(item)));
    expect(settled).toEqual([
      { status: "rejected", reason: failure },
      { status: "rejected", reason: failure },
    ]);
    expect(await group.submit(3)).toBe("v3");
  });

  it("rejects the batch when the commit returns the wrong number of outcomes", async () => {
    const group = createGroupCommit<number, number>({ commit: () => [], maxBatch: 10, closedError: () => new Error("closed") });
    await expect(group.submit(1)).rejects.toThrow(/0 outcomes for 1 items/);
  });

  it("flushes what is queued on close, synchronously, then refuses new items", async () => {
    const { group, batches } = recorder();
    const pending = Array.from({ length: 1_500 }, (_, i) => group.submit(i));
    group.close();
    expect(batches.map((b) => b.length)).toEqual([1_000, 500]);
    expect(await Promise.all(pending)).toHaveLength(1_500);
    await expect(group.submit(9)).rejects.toThrow("closed");
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toHaveLength(2);
  });

  it("refuses a maxBatch that is not a positive integer", () => {
    expect(() => createGroupCommit({ commit: () => [], maxBatch: 0, closedError: () => new Error() })).toThrow(RangeError);
  });

  it("settles a batch only after its afterCommit (the fsync) resolves, and fails the batch when it fails", async () => {
    const syncs: { resolve: () => void; reject: (error: Error) => void }[] = [];
    const group = createGroupCommit<number, string>({
      commit: (items) => items.map((item) => ({ ok: true, value: `v${item}` })),
      maxBatch: 10,
      closedError: () => new Error("closed"),
      afterCommit: () => new Promise<void>((resolve, reject) => syncs.push({ resolve, reject })),
    });
    const order: string[] = [];
    const first = group.submit(1).then((value) => (order.push("ack"), value));
    await new Promise((resolve) => setImmediate(resolve));
    expect(syncs).toHaveLength(1);
    // Committed, not yet durable: an ack that did not wait for the fsync would land during these turns.
    await turns(5);
    order.push("fsync done");
    syncs[0]!.resolve();
    expect(await first).toBe("v1");
    expect(order).toEqual(["fsync done", "ack"]);

    const second = group.submit(2);
    await new Promise((resolve) => setImmediate(resolve));
    syncs[1]!.reject(new Error("EIO"));
    await expect(second).rejects.toThrow("EIO");
  });

  it("commits what arrives during an fsync as one batch after it, so one fsync covers them all", async () => {
    const syncs: (() => void)[] = [];
    const batches: number[][] = [];
    const group = createGroupCommit<number, number>({
      commit: (items) => (batches.push([...items]), items.map((item) => ({ ok: true, value: item }))),
      maxBatch: 10,
      closedError: () => new Error("closed"),
      afterCommit: () => new Promise<void>((resolve) => syncs.push(resolve)),
    });
    const first = group.submit(1);
    await new Promise((resolve) => setImmediate(resolve));
    const later = [2, 3, 4].map((item) => group.submit(item));
    await turns(5);
    expect(batches).toEqual([[1]]); // nothing more is committed while the first fsync runs
    syncs[0]!();
    expect(await first).toBe(1);
    for (let i = 0; i < 100 && batches.length < 2; i++) await turns(1);
    expect(batches).toEqual([[1], [2, 3, 4]]);
    expect(syncs).toHaveLength(2);
    syncs[1]!();
    expect(await Promise.all(later)).toEqual([2, 3, 4]);
  });
});
