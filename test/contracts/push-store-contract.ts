import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { NewPushJob, PushStore, PushTarget } from "../../services/ports/index.js";

export interface PushStoreContractOptions {
  /** Opens the data of `closed` (already closed) again: queued jobs must survive it. */
  readonly reopen: (closed: PushStore) => Promise<PushStore> | PushStore;
}

/** What every PushStore engine must do. Each test gets a fresh, empty store. */
export function describePushStoreContract(engineName: string, createStore: () => Promise<PushStore> | PushStore, options: PushStoreContractOptions): void {
  describe(`PushStore contract: ${engineName}`, () => {
    let store: PushStore;
    let open: PushStore[] = [];
    beforeEach(async () => {
      store = await createStore();
      open = [store];
    });
    afterEach(async () => {
      for (const each of open) await each.close();
    });

    const T0 = Date.UTC(2026, 0, 1);
    const at = (ms: number) => new Date(T0 + ms);
    const target = (userId: string, deviceId: string, extra: Partial<PushTarget> = {}): PushTarget => ({
      userId,
      deviceId,
      provider: "webhook",
      endpoint: `http://127.0.0.1:1/${deviceId}`,
      createdAt: at(0),
      ...extra,
    });
    const job = (jobId: string, extra: Partial<NewPushJob> = {}): NewPushJob => ({
      jobId,
      kind: "message",
      userId: "u_bob",
      deviceId: "d_bob",
      conversationId: "c_1",
      seq: 1n,
      messageId: `m_${jobId}`,
      senderUserId: "u_alice",
      createdAt: at(0),
      ...extra,
    });

    it("keeps one target per device, replacing it, and lists them per user", async () => {
      await store.targets.putTarget(target("u_bob", "d_1"));
      await store.targets.putTarget(target("u_bob", "d_1", { provider: "web-push", endpoint: "https://push.example/x", p256dh: "key", auth: "secret" }));
      await store.targets.putTarget(target("u_bob", "d_2"));
      await store.targets.putTarget(target("u_carol", "d_3"));
      expect(await store.targets.getTarget("d_1")).toEqual(target("u_bob", "d_1", { provider: "web-push", endpoint: "https://push.example/x", p256dh: "key", auth: "secret" }));
      expect((await store.targets.targetsOf(["u_bob"])).map((t) => t.deviceId).sort()).toEqual(["d_1", "d_2"]);
      expect(await store.targets.targetsOf([])).toEqual([]);
      await store.targets.removeTarget("d_1");
      expect(await store.targets.getTarget("d_1")).toBeUndefined();
      expect((await store.targets.targetsOf(["u_bob", "u_carol"])).map((t) => t.deviceId).sort()).toEqual(["d_2", "d_3"]);
    });

    it("keeps mutes per user and conversation, and previews off unless turned on", async () => {
      await store.targets.setMuted("u_bob", "c_1", true);
      await store.targets.setMuted("u_bob", "c_1", true);
      await store.targets.setMuted("u_carol", "c_2", true);
      expect(await store.targets.mutedAmong("c_1", ["u_bob", "u_carol"])).toEqual(new Set(["u_bob"]));
      expect(await store.targets.listMuted("u_bob")).toEqual(["c_1"]);
      await store.targets.setMuted("u_bob", "c_1", false);
      expect(await store.targets.mutedAmong("c_1", ["u_bob"])).toEqual(new Set());
      expect(await store.targets.previewsAmong(["u_bob"])).toEqual(new Set());
      await store.targets.setPreviews("u_bob", true);
      await store.targets.setPreviews("u_carol", false);
      expect(await store.targets.previewsAmong(["u_bob", "u_carol"])).toEqual(new Set(["u_bob"]));
    });

    it("claims due jobs oldest first with a lease, counting each try, and queues a job id once", async () => {
      await store.jobs.enqueue([job("j_2", { createdAt: at(20) }), job("j_1", { createdAt: at(10), preview: "hi" })]);
      await store.jobs.enqueue([job("j_1", { createdAt: at(10) })]);
      expect(await store.jobs.claimDue(at(5), 10, 1_000)).toEqual([]);
      const first = await store.jobs.claimDue(at(30), 10, 1_000);
      expect(first.map((j) => [j.jobId, j.attempts])).toEqual([["j_1", 1], ["j_2", 1]]);
      expect(first[0]).toEqual({ ...job("j_1", { createdAt: at(10), preview: "hi" }), attempts: 1 });
      // Hidden while leased; due again when the lease runs out (the claimer died).
      expect(await store.jobs.claimDue(at(500), 10, 1_000)).toEqual([]);
      expect((await store.jobs.claimDue(at(1_030), 1, 1_000)).map((j) => [j.jobId, j.attempts])).toEqual([["j_1", 2]]);
    });

    it("completes, retries and dead-letters; only pending jobs count", async () => {
      await store.jobs.enqueue([job("j_ok"), job("j_retry"), job("j_dead")]);
      await store.jobs.claimDue(at(0), 10, 1_000);
      await store.jobs.complete("j_ok", at(1));
      await store.jobs.retry("j_retry", at(50), "HTTP 500");
      await store.jobs.deadLetter("j_dead", "HTTP 503", at(2));
      expect(await store.jobs.pendingCount()).toBe(1);
      expect((await store.jobs.claimDue(at(49), 10, 1_000)).length).toBe(0);
      expect((await store.jobs.claimDue(at(50), 10, 1_000)).map((j) => [j.jobId, j.attempts])).toEqual([["j_retry", 2]]);
      const [dead, ...rest] = await store.jobs.deadLetters(10);
      expect(rest).toEqual([]);
      expect(dead).toEqual({ job: { ...job("j_dead"), attempts: 1 }, error: "HTTP 503", at: at(2) });
    });

    it("withdraws pending message jobs up to the read seq, and names the devices already shown one, once", async () => {
      await store.jobs.enqueue([
        job("j_1", { seq: 1n, deviceId: "d_a" }),
        job("j_2", { seq: 2n, deviceId: "d_b" }),
        job("j_3", { seq: 3n, deviceId: "d_b" }),
        job("j_other", { seq: 1n, conversationId: "c_2" }),
      ]);
      await store.jobs.claimDue(at(0), 1, 1_000);
      await store.jobs.complete("j_1", at(1));
      expect(await store.jobs.withdraw("u_bob", "c_1", 2n, at(2))).toEqual({ cancelled: 1, shownOn: ["d_a"] });
      expect(await store.jobs.withdraw("u_bob", "c_1", 2n, at(2))).toEqual({ cancelled: 0, shownOn: [] });
      const left = await store.jobs.claimDue(at(10), 10, 1_000);
      expect(left.map((j) => j.jobId).sort()).toEqual(["j_3", "j_other"]);
      // A withdrawn job stays withdrawn whatever its in-flight try reports.
      await store.jobs.retry("j_2", at(20), "late");
      expect(await store.jobs.claimDue(at(5_000), 10, 1_000)).not.toContainEqual(expect.objectContaining({ jobId: "j_2" }));
    });

    it("drops a device's pending jobs and prunes old finished ones, keeping dead letters", async () => {
      await store.jobs.enqueue([job("j_1", { deviceId: "d_x" }), job("j_2", { deviceId: "d_y" }), job("j_3", { deviceId: "d_y" })]);
      expect(await store.jobs.dropDevice("d_x", at(0))).toBe(1);
      await store.jobs.claimDue(at(0), 10, 1_000);
      await store.jobs.complete("j_2", at(1));
      await store.jobs.deadLetter("j_3", "gone", at(1));
      expect(await store.jobs.prune(at(1_000))).toBe(2);
      expect((await store.jobs.deadLetters(10)).map((d) => d.job.jobId)).toEqual(["j_3"]);
      expect(await store.jobs.pendingCount()).toBe(0);
    });

    it("keeps queued jobs, targets and choices across close and reopen", async () => {
      await store.targets.putTarget(target("u_bob", "d_bob"));
      await store.targets.setMuted("u_bob", "c_9", true);
      await store.jobs.enqueue([job("j_1"), job("j_2")]);
      await store.jobs.claimDue(at(0), 1, 60_000);
      await store.jobs.retry("j_1", at(100), "HTTP 500");
      await store.close();
      open = [];
      store = await options.reopen(store);
      open = [store];
      expect(await store.targets.getTarget("d_bob")).toEqual(target("u_bob", "d_bob"));
      expect(await store.targets.listMuted("u_bob")).toEqual(["c_9"]);
      // Due order: j_2 has been due since it was queued, j_1 since its retry time.
      expect((await store.jobs.claimDue(at(100), 10, 1_000)).map((j) => [j.jobId, j.attempts])).toEqual([["j_2", 1], ["j_1", 2]]);
    });
  });
}
