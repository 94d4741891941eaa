import { performance } from "node:perf_hooks";
import type { ChatClient } from "../clients/sdk/index.js";
import { LeanStream } from "./lean-stream.js";

const RESUME_TIMEOUT_MS = 120_000;

/**
 * The load generator trusts the lean client; this shows once per run that it sees what the stock
 * Connect client (the SDK's DeviceStream) sees on the same device.
 */
export async function checkLeanAgainstStock(baseUrl: string, sender: ChatClient, receiver: ChatClient, conversationId: string): Promise<string> {
  const count = 20;
  const stock = receiver.openStream();
  await stock.ready;
  const lean: string[] = [];
  const leanStream = new LeanStream(baseUrl, receiver.session.accessToken, (frame) => {
    if (frame.frame.case === "message") lean.push(`${frame.frame.value.seq}:${frame.frame.value.text}`);
  });
  await leanStream.ready;
  for (let index = 0; index < count; index++) await sender.send({ conversationId }, `lean check ${index}`);
  const stockMessages = (await stock.takeMessages(count)).map((message) => `${message.seq}:${message.text}`);
  const deadline = Date.now() + 10_000;
  while (lean.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  stock.close();
  leanStream.close();
  if (JSON.stringify(lean) !== JSON.stringify(stockMessages)) {
    throw new Error(`the lean client and the stock client disagree:\nlean  ${lean.join(" | ")}\nstock ${stockMessages.join(" | ")}`);
  }
  return `the lean client and the stock Connect client received the same ${count} messages (same seqs and texts)`;
}

/**
 * A device whose cursor is `count` messages behind: the time from opening its stream (hello with
 * its cursors) to having all of them and `caught_up`.
 */
export async function measureCatchUp(
  baseUrl: string,
  sender: ChatClient,
  receiver: ChatClient,
  conversationId: string,
  count: number,
): Promise<{ messages: number; ms: number; fillMs: number }> {
  let heads: { conversationId: string; seq: bigint }[] = [];
  const first = new LeanStream(baseUrl, receiver.session.accessToken, (frame) => {
    if (frame.frame.case === "ready") heads = frame.frame.value.heads.map(({ conversationId: id, seq }) => ({ conversationId: id, seq }));
  });
  await first.ready;
  first.close();

  const fillStart = performance.now();
  let acked = 0;
  let wake = () => {};
  const writer = new LeanStream(baseUrl, sender.session.accessToken, (frame) => {
    if (frame.frame.case === "ack" || frame.frame.case === "rejected") {
      acked++;
      wake();
    }
  });
  await writer.ready;
  const window = 500;
  for (let sent = 0; sent < count; sent++) {
    while (sent - acked >= window) await new Promise<void>((resolve) => (wake = resolve));
    writer.send(conversationId, `missed message ${sent}`, `catch-up-${String(sent).padStart(8, "0")}`);
  }
  while (acked < count) await new Promise<void>((resolve) => (wake = resolve));
  writer.close();
  const fillMs = performance.now() - fillStart;

  const start = performance.now();
  let messages = 0;
  let done = () => {};
  const finished = new Promise<void>((resolve) => (done = resolve));
  const resumed = new LeanStream(
    baseUrl,
    receiver.session.accessToken,
    (frame) => {
      if (frame.frame.case === "message") messages++;
      else if (frame.frame.case === "caughtUp") done();
    },
    { resume: heads },
  );
  const timeout = setTimeout(done, RESUME_TIMEOUT_MS);
  await finished;
  const ms = performance.now() - start;
  clearTimeout(timeout);
  resumed.close();
  if (messages < count) throw new Error(`catch-up delivered ${messages} of ${count} messages`);
  return { messages, ms, fillMs };
}
