import type { PushJob, PushProviderName, PushSender, PushStore } from "../ports/index.js";

export interface RetryPolicy {
  /** Tries in all, the first included; after the last failed one the job becomes a dead letter. */
  readonly maxAttempts: number;
  /** Wait before the second try; doubled for each further one. */
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
}

export type PushWorkerEvent =
  | { readonly event: "push_sent"; readonly job: PushJob }
  | { readonly event: "push_retry"; readonly job: PushJob; readonly error: string; readonly retryInMs: number }
  | { readonly event: "push_dead_lettered"; readonly job: PushJob; readonly error: string }
  | { readonly event: "push_target_gone"; readonly job: PushJob; readonly error: string }
  | { readonly event: "push_no_target"; readonly job: PushJob }
  | { readonly event: "push_worker_error"; readonly error: unknown };

export interface PushWorkerOptions {
  readonly store: PushStore;
  readonly senders: readonly PushSender[];
  readonly retry: RetryPolicy;
  /** How often stored jobs are looked for when nothing woke the worker (retries come due this way). */
  readonly pollMs: number;
  /** A claimed job is due again after this long if its try never finished (the process died). */
  readonly leaseMs: number;
  /** Jobs claimed and sent at once. */
  readonly batchSize?: number;
  /** How long finished jobs are kept for withdrawals. */
  readonly keepFinishedMs?: number;
  readonly now?: () => Date;
  readonly log?: (event: PushWorkerEvent) => void;
}

export interface PushWorker {
  start(): void;
  /** Looks for due jobs now instead of at the next poll. */
  wake(): void;
  /** Finishes the tries in flight, then stops. */
  stop(): Promise<void>;
}

function backoffMs(policy: RetryPolicy, failedAttempts: number): number {
  return Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** Math.max(0, failedAttempts - 1));
}

const PRUNE_EVERY_MS = 10 * 60_000;

/**
 * Sends the stored jobs through the provider of each device's target. Every state change is written
 * to the store before the next step, so the queue is the truth: a restarted gateway picks up what
 * was due, retried or in flight (after its lease) when the old one stopped.
 */
export function createPushWorker(options: PushWorkerOptions): PushWorker {
  const { store, retry } = options;
  const now = options.now ?? (() => new Date());
  const log = options.log ?? (() => {});
  const batchSize = options.batchSize ?? 32;
  const keepFinishedMs = options.keepFinishedMs ?? 24 * 3_600_000;
  const senders = new Map<PushProviderName, PushSender>(options.senders.map((sender) => [sender.provider, sender]));
  let running = false;
  let loop: Promise<void> | undefined;
  let wakeUp: (() => void) | undefined;
  let woken = false;
  let lastPrune = 0;

  async function deliver(job: PushJob): Promise<void> {
    const target = await store.targets.getTarget(job.deviceId);
    if (!target || target.userId !== job.userId) {
      await store.jobs.dropDevice(job.deviceId, now());
      log({ event: "push_no_target", job });
      return;
    }
    const sender = senders.get(target.provider);
    const outcome = sender ? await sender.send(target, job, job.attempts) : { ok: false as const, error: `no sender for provider ${target.provider}` };
    const at = now();
    if (outcome.ok) {
      await store.jobs.complete(job.jobId, at);
      log({ event: "push_sent", job });
    } else if (outcome.gone) {
      await store.targets.removeTarget(job.deviceId);
      await store.jobs.dropDevice(job.deviceId, at);
      log({ event: "push_target_gone", job, error: outcome.error });
    } else if (job.attempts >= retry.maxAttempts) {
      await store.jobs.deadLetter(job.jobId, outcome.error, at);
      log({ event: "push_dead_lettered", job, error: outcome.error });
    } else {
      const retryInMs = backoffMs(retry, job.attempts);
      await store.jobs.retry(job.jobId, new Date(at.getTime() + retryInMs), outcome.error);
      log({ event: "push_retry", job, error: outcome.error, retryInMs });
    }
  }

  async function runOnce(): Promise<number> {
    const at = now();
    if (at.getTime() - lastPrune > PRUNE_EVERY_MS) {
      lastPrune = at.getTime();
      await store.jobs.prune(new Date(at.getTime() - keepFinishedMs));
    }
    const jobs = await store.jobs.claimDue(at, batchSize, options.leaseMs);
    await Promise.all(
      jobs.map((job) =>
        deliver(job).catch((error: unknown) => {
          // The job stays claimed; its lease runs out and it is tried again.
          log({ event: "push_worker_error", error });
        }),
      ),
    );
    return jobs.length;
  }

  async function run(): Promise<void> {
    while (running) {
      let claimed = 0;
      try {
        claimed = await runOnce();
      } catch (error) {
        log({ event: "push_worker_error", error });
      }
      if (!running) return;
      if (claimed === batchSize) continue;
      if (woken) {
        woken = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.pollMs);
        wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wakeUp = undefined;
      woken = false;
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    wake() {
      woken = true;
      wakeUp?.();
    },
    async stop() {
      running = false;
      wakeUp?.();
      await loop;
    },
  };
}
