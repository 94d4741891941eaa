import { spawn } from "node:child_process";
import { once } from "node:events";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorReason } from "../gen/chat/v1/errors_pb.js";
import { PresenceStatus } from "../gen/chat/v1/messaging_pb.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser, PASSWORD } from "./support/users.js";

const TIMEOUT_MS = 800;

describe("presence and typing", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer({ env: { CHAT_PRESENCE_TIMEOUT_MS: String(TIMEOUT_MS), CHAT_TYPING_THROTTLE_MS: "1000", CHAT_TYPING_TTL_MS: "3000" } });
  });
  afterAll(async () => {
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  });

  it("5. goes offline after the timeout when a killed client stops heartbeating, and only watchers hear of it", async () => {
    const [user, watcher, bystander, other] = await Promise.all(["user", "watcher", "bystander", "other"].map((name) => newUser(server.url, name)));
    const watching = watcher.openStream();
    const notWatching = bystander.openStream();
    await Promise.all([watching.ready, notWatching.ready]);
    watching.watchPresence([user.userId]);
    const initial = await watching.next("presence");
    expect(initial.presence).toMatchObject({ userId: user.userId, status: PresenceStatus.OFFLINE });
    notWatching.watchPresence([other.userId]);
    expect((await notWatching.next("presence")).presence.userId).toBe(other.userId);

    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(resolve(import.meta.dirname), "support/presence-client.ts"), server.url, user.session.user!.username, PASSWORD, "100"],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await once(createInterface({ input: child.stdout! }), "line");
    expect((await watching.next("presence")).presence).toMatchObject({ userId: user.userId, status: PresenceStatus.ONLINE });

    child.kill("SIGKILL");
    const killedAt = Date.now();
    await once(child, "exit");
    await new Promise((r) => setTimeout(r, TIMEOUT_MS / 2));
    // The connection is gone, but the heartbeat has not timed out yet: still online.
    const [midway] = (await watcher.presence.getPresence({ userIds: [user.userId] })).presences;
    expect(midway!.status).toBe(PresenceStatus.ONLINE);

    const offline = await watching.next("presence", 5_000);
    const after = Date.now() - killedAt;
    expect(offline.presence).toMatchObject({ userId: user.userId, status: PresenceStatus.OFFLINE });
    expect(offline.presence.lastSeen).toBeDefined();
    expect(after).toBeGreaterThanOrEqual(TIMEOUT_MS - 150);
    expect(after).toBeLessThan(TIMEOUT_MS + 5_000);
    const [looked] = (await watcher.presence.getPresence({ userIds: [user.userId] })).presences;
    expect(looked!.status).toBe(PresenceStatus.OFFLINE);

    // The bystander, watching someone else, heard nothing of it.
    await expect(notWatching.next("presence", 300)).rejects.toThrow(/timed out/);
    watching.close();
    notWatching.close();
  });

  it("goes offline at once on a clean close, and watch-on-view follows the set being watched", async () => {
    // A long timeout, so an offline that came from the timeout cannot pass for the clean close.
    const patient = await startServer({ env: { CHAT_PRESENCE_TIMEOUT_MS: "30000" } });
    try {
      await cleanCloseScenario(patient.url);
    } finally {
      await patient.kill("SIGTERM");
      removeDir(patient.dataDir);
    }
  });

  async function cleanCloseScenario(url: string): Promise<void> {
    const [leaver, stayer, watcher] = await Promise.all(["leaver", "stayer", "watcher"].map((name) => newUser(url, name)));
    const watching = watcher.openStream();
    await watching.ready;
    const leaving = leaver.openStream();
    const staying = stayer.openStream();
    await Promise.all([leaving.ready, staying.ready]);
    watching.watchPresence([leaver.userId]);
    expect((await watching.next("presence")).presence).toMatchObject({ userId: leaver.userId, status: PresenceStatus.ONLINE });

    const closedAt = Date.now();
    leaving.end();
    expect((await watching.next("presence")).presence).toMatchObject({ userId: leaver.userId, status: PresenceStatus.OFFLINE });
    expect(Date.now() - closedAt).toBeLessThan(10_000);

    // Switching the view to another user: their state first, then only their changes.
    watching.watchPresence([stayer.userId]);
    expect((await watching.next("presence")).presence).toMatchObject({ userId: stayer.userId, status: PresenceStatus.ONLINE });
    const back = leaver.openStream();
    await back.ready;
    staying.end();
    expect((await watching.next("presence")).presence).toMatchObject({ userId: stayer.userId, status: PresenceStatus.OFFLINE });
    back.close();
    watching.close();
  }

  it("sends typing indicators to the other member only, throttled, expiring, never stored", async () => {
    const [alice, bob, carol] = await Promise.all(["alice", "bob", "carol"].map((name) => newUser(server.url, name)));
    await alice.send({ recipientUserId: bob.userId }, "hi");
    const conversationId = (await alice.openDirect(bob.userId)).conversationId;
    const typist = alice.openStream();
    const reader = bob.openStream();
    const outsider = carol.openStream();
    await Promise.all([typist.ready, reader.ready, outsider.ready]);

    typist.typing(conversationId, true);
    typist.typing(conversationId, true);
    typist.typing(conversationId, true);
    const shown = await reader.next("typing");
    expect(shown.typing).toMatchObject({ conversationId, userId: alice.userId, typing: true });
    expect(Number(shown.typing.expiresAt!.seconds) * 1000).toBeGreaterThan(Date.now());
    typist.typing(conversationId, false);
    const stopped = await reader.next("typing");
    expect(stopped.typing).toMatchObject({ userId: alice.userId, typing: false });

    outsider.typing(conversationId, true);
    const refused = await outsider.next("frame");
    expect(refused.frame.frame.value).toMatchObject({ frame: "typing", status: { code: Code.PermissionDenied, reason: ErrorReason.NOT_A_MEMBER } });

    expect((await alice.history(conversationId)).messages).toHaveLength(1);
    // The throttled repeats never arrived: the next typing event is a fresh one.
    await expect(reader.next("typing", 300)).rejects.toThrow(/timed out/);
    [typist, reader, outsider].forEach((stream) => stream.close());
  });
});
