import { afterAll, describe, expect, it } from "vitest";
import { ChatClient } from "../clients/sdk/index.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser, PASSWORD } from "./support/users.js";

describe("kill -9 right after acknowledgements", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach(removeDir));

  it("keeps every acknowledged message across a crash and restart", async () => {
    let server: ServerProcess = await startServer();
    dirs.push(server.dataDir);
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const conversation = await alice.openDirect(bob.userId);
    const stream = alice.openStream();
    await stream.ready;

    const acked = new Map<string, bigint>();
    const killAfter = 300;
    let killed: Promise<number | null> | undefined;
    const sends: Promise<void>[] = [];
    // Keep sends in flight while the process dies, so some are cut mid-write.
    for (let i = 0; i < 600; i++) {
      sends.push(
        stream.send({ conversationId: conversation.conversationId }, `message ${i}`).then(
          (ack) => {
            if (killed) return;
            acked.set(ack.message!.messageId, ack.message!.seq);
            if (acked.size === killAfter) killed = server.kill("SIGKILL");
          },
          () => undefined,
        ),
      );
    }
    await Promise.all(sends);
    await killed;
    expect(acked.size).toBe(killAfter);

    server = await startServer({ dataDir: server.dataDir });
    try {
      const reader = new ChatClient({ baseUrl: server.url });
      await reader.logIn(bob.session.user!.username, PASSWORD);
      const history = await reader.allMessages(conversation.conversationId);
      const stored = new Map(history.map((message) => [message.messageId, message.seq]));
      for (const [messageId, seq] of acked) expect(stored.get(messageId), `acknowledged ${messageId} lost`).toBe(seq);
      // Whatever else made it to disk before the crash is still gapless.
      expect(history.map((message) => Number(message.seq))).toEqual(history.map((_, i) => i + 1));
    } finally {
      await server.kill("SIGTERM");
    }
  });
});
