import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatClient } from "../clients/sdk/index.js";
import { startServer, type ServerProcess } from "./support/server-process.js";
import { PASSWORD, newUser } from "./support/users.js";

describe("SDK deadlines", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer();
  }, 60_000);
  afterAll(async () => {
    await server?.kill();
  });

  it("applies timeoutMs to unary calls only: a device stream outlives it and keeps delivering", async () => {
    const timeoutMs = 1_000;
    const bob = await newUser(server.url, "bob");
    const bobWithDeadline = new ChatClient({ baseUrl: server.url, timeoutMs });
    await bobWithDeadline.logIn(bob.session.user!.username, PASSWORD);
    const alice = await newUser(server.url, "alice");
    const stream = bobWithDeadline.openStream();
    await stream.ready;
    // Past the unary deadline, the stream must still be open.
    await new Promise((resolve) => setTimeout(resolve, timeoutMs * 2));
    const sent = await alice.send({ recipientUserId: bob.userId }, "still there?");
    const received = await stream.next("message");
    expect(received.message.messageId).toBe(sent.message!.messageId);
    stream.close();
  }, 30_000);
});
