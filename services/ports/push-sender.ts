import type { PushJob, PushProviderName, PushTarget } from "./push-store.js";

/** What a provider plug-in reports for one try. */
export type PushOutcome =
  | { readonly ok: true }
  /** `gone`: the target no longer exists (e.g. an expired Web Push subscription); it is removed, no retry. */
  | { readonly ok: false; readonly error: string; readonly gone?: boolean };

/**
 * One push provider. `send` makes one try and never throws for a failure of the far end; the worker
 * decides about retries, backoff and dead letters.
 */
export interface PushSender {
  readonly provider: PushProviderName;
  send(target: PushTarget, job: PushJob, attempt: number): Promise<PushOutcome>;
}
