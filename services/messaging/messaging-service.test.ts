import { afterEach, describe, expect, it } from "vitest";
import { createMemoryBus } from "../../backends/bus-memory/index.js";
import { createSqliteStore } from "../../backends/store-sqlite/index.js";
import { takeUntil } from "../../test/support/wait.js";
import type { BusEvent } from "../ports/index.js";
import { createMessagingService } from "./messaging-service.js";

const alice = { userId: "u_alice", deviceId: "dev_alice" };
const bob = { userId: "u_bob", deviceId: "dev_bob" };
const CONVERSATION = "d_alice_bob";

function world() {
  const store = createSqliteStore({ path: ":memory:" });
  const bus = createMemoryBus();
  const messaging = createMessagingService({ accounts: store.accounts, conversations: store.conversations, messages: store.messages, bus });
  return {
    store,
    bus,
    messaging,
    send: (clientMsgId: string, text: string) => messaging.send(alice, { clientMsgId, to: { case: "conversationId", value: CONVERSATION }, text }),
    async close() {
      await bus.close();
      await store.close();
    },
  };
}

const textOf = (event: BusEvent) => (event.kind === "message" ? event.message.text : `(${event.kind})`);

describe("messaging: a retried send", () => {
  let w: ReturnType<typeof world> | undefined;
  afterEach(async () => {
    await w?.close();
    w = undefined;
  });

  it("returns the original, stores one copy and fans it out once", async () => {
    w = world();
    await w.store.conversations.ensureDirectConversation(CONVERSATION, [alice.userId, bob.userId], new Date());
    const subscription = w.bus.subscribe(bob.userId);
    const first = await w.send("client-retry-0001", "once");
    const retry = await w.send("client-retry-0001", "once");
    expect(retry).toMatchObject({ duplicate: true, message: { seq: first.message.seq, messageId: first.message.messageId } });
    expect(first.duplicate).toBe(false);
    await w.send("client-marker-0001", "marker");

    // The marker was published after the retry: a second fan-out of "once" would come before it.
    const events = await takeUntil(subscription, (event) => textOf(event) === "marker", { what: "the marker on Bob's bus subscription", show: textOf });
    expect(events.map(textOf)).toEqual(["once", "marker"]);
    const stored = await w.store.messages.readRange(CONVERSATION, { limit: 10 });
    expect(stored.map((message) => message.text)).toEqual(["once", "marker"]);
    subscription.close();
  });
});
