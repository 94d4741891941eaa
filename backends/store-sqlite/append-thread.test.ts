import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { AppendResult, NewMessage } from "../../services/ports/index.js";
import { startAppendThread } from "./append-thread.js";

const root = mkdtempSync(join(tmpdir(), "append-thread-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const message = (i: number): NewMessage => ({
  messageId: `m_${i}`,
  conversationId: "d_1",
  senderUserId: "u_alice",
  senderDeviceId: "dev",
  clientMsgId: `c_${i}`,
  kind: "text",
  text: `text ${i}`,
  sentAt: new Date(1_700_000_000_000 + i),
});

describe("append thread", () => {
  it("fails what waited on a thread that died, with what to do next, then sends on the fallback", async () => {
    const stopped: Error[] = [];
    const fellBack: NewMessage[] = [];
    const thread = startAppendThread({
      // A database the thread cannot open: it dies while the appends wait for it.
      settings: { path: join(root, "missing-directory", "chat.db"), busyTimeoutMs: 100, maxBatch: 250, autoCheckpoint: true },
      fallback: async (sent): Promise<AppendResult> => {
        fellBack.push(sent);
        return { message: { ...sent, seq: BigInt(fellBack.length) }, duplicate: false };
      },
      onStopped: (error) => stopped.push(error),
    });
    const waiting = await Promise.allSettled([thread.append(message(1)), thread.append(message(2))]);
    for (const outcome of waiting) {
      expect(outcome.status).toBe("rejected");
      expect(String((outcome as PromiseRejectedResult).reason)).toMatch(/send it again with the same client_msg_id/);
    }
    expect(stopped).toHaveLength(1);
    expect(fellBack).toEqual([]);

    const after = await thread.append(message(3));
    expect(after.message.seq).toBe(1n);
    expect(fellBack.map((each) => each.clientMsgId)).toEqual(["c_3"]);
    await thread.close();
    expect(stopped).toHaveLength(1);
  });
});
