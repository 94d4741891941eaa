import { describe, expect, it } from "vitest";
import { createOutbox, type OutboxMessage, type OutboxOptions } from "./outbox.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function harness(overrides: Partial<OutboxOptions> = {}) {
  let time = 0;
  const sent: OutboxMessage[] = [];
  const dropped: [OutboxMessage, string][] = [];
  let failNext = 0;
  const outbox = createOutbox({
    limit: 5,
    maxAgeMs: 1000,
    maxInFlight: 2,
    retryDelayMs: 10,
    maxLostUsers: 3,
    send: async (message) => {
      await sleep(1);
      if (failNext > 0) {
        failNext--;
        throw new Error("no");
      }
      sent.push(message);
    },
    lostNotice: (gatewayId, recipients) => ({ gatewayId, recipients, data: new Uint8Array(), msgId: `lost-${gatewayId}`, lost: true }),
    onDrop: (message, reason) => dropped.push([message, reason]),
    onSendError: () => {},
    now: () => time,
    ...overrides,
  });
  let id = 0;
  const message = (gatewayId = "g", recipients: string[] = ["u"]): OutboxMessage => ({ gatewayId, recipients, data: new Uint8Array(), msgId: `m${++id}`, lost: false });
  return { outbox, sent, dropped, message, at: (ms: number) => void (time = ms), failTimes: (count: number) => void (failNext = count) };
}

describe("outbox", () => {
  it("sends in order, pipelined", async () => {
    const { outbox, sent, message } = harness();
    for (let i = 0; i < 5; i++) outbox.enqueue(message());
    expect(await outbox.flush(1000)).toBe(true);
    expect(sent.map((each) => each.msgId)).toEqual(["m1", "m2", "m3", "m4", "m5"]);
  });

  it("retries a failed send in its place, with the same id", async () => {
    const { outbox, sent, message, failTimes } = harness({ maxInFlight: 1 });
    failTimes(2);
    for (let i = 0; i < 3; i++) outbox.enqueue(message());
    expect(await outbox.flush(1000)).toBe(true);
    expect(sent.map((each) => each.msgId)).toEqual(["m1", "m2", "m3"]);
  });

  it("sends again first, in order, what was awaiting an answer when the connection dropped", async () => {
    const sent: string[] = [];
    const answers: (() => void)[] = [];
    let hang = true;
    const outbox = createOutbox({
      limit: 10,
      maxAgeMs: 10_000,
      maxInFlight: 4,
      retryDelayMs: 10,
      maxLostUsers: 3,
      // Until the "reconnect", requests never get an answer (they went to a server that died).
      send: (message) => {
        if (hang) return new Promise<void>((resolve) => answers.push(resolve));
        sent.push(message.msgId);
        return Promise.resolve();
      },
      lostNotice: () => {
        throw new Error("nothing is lost here");
      },
      onDrop: () => {},
      onSendError: () => {},
    });
    const message = (msgId: string): OutboxMessage => ({ gatewayId: "g", recipients: ["u"], data: new Uint8Array(), msgId, lost: false });
    outbox.enqueue(message("a"));
    outbox.enqueue(message("b"));
    outbox.setConnected(false);
    outbox.enqueue(message("c"));
    hang = false;
    outbox.setConnected(true);
    expect(await outbox.flush(1000)).toBe(true);
    // A late answer to a given-up attempt changes nothing.
    for (const answer of answers) answer();
    await sleep(5);
    expect(sent).toEqual(["a", "b", "c"]);
    expect(outbox.size).toBe(0);
  });

  it("holds messages while disconnected, drops the expired ones on reconnect and tells their gateways first", async () => {
    const { outbox, sent, dropped, message, at } = harness();
    outbox.setConnected(false);
    outbox.enqueue(message("g1", ["alice"]));
    outbox.enqueue(message("g2", ["bob"]));
    at(500);
    outbox.enqueue(message("g1", ["carol"]));
    at(1200);
    outbox.setConnected(true);
    expect(await outbox.flush(1000)).toBe(true);
    expect(dropped.map(([each, reason]) => [each.msgId, reason])).toEqual([
      ["m1", "expired"],
      ["m2", "expired"],
    ]);
    expect(sent.map((each) => [each.gatewayId, each.recipients, each.lost])).toEqual([
      ["g1", ["alice"], true],
      ["g2", ["bob"], true],
      ["g1", ["carol"], false],
    ]);
  });

  it("drops the oldest when full, and turns too many lost users into all of them", async () => {
    const { outbox, sent, dropped, message } = harness();
    outbox.setConnected(false);
    for (let i = 0; i < 9; i++) outbox.enqueue(message("g", [`u${i}`]));
    expect(outbox.size).toBe(5);
    expect(dropped.map(([, reason]) => reason)).toEqual(["full", "full", "full", "full"]);
    outbox.setConnected(true);
    await outbox.flush(1000);
    expect(sent[0]).toMatchObject({ lost: true, recipients: "all" });
    expect(sent.slice(1).map((each) => each.recipients)).toEqual([["u4"], ["u5"], ["u6"], ["u7"], ["u8"]]);
  });

  it("keeps a lost notice whose send failed, until it goes", async () => {
    const { outbox, sent, message, at, failTimes } = harness({ maxInFlight: 1 });
    outbox.setConnected(false);
    outbox.enqueue(message("g", ["alice"]));
    at(2000);
    failTimes(3);
    outbox.setConnected(true);
    expect(await outbox.flush(1000)).toBe(true);
    expect(sent).toMatchObject([{ lost: true, recipients: ["alice"] }]);
  });

  it("reports a flush that could not finish", async () => {
    const { outbox, message } = harness();
    outbox.setConnected(false);
    outbox.enqueue(message());
    expect(await outbox.flush(30)).toBe(false);
    outbox.close();
    expect(outbox.size).toBe(0);
  });
});
