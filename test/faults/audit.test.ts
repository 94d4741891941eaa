import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { MessageSchema, type Message } from "../../gen/chat/v1/types_pb.js";
import { assertAudit, auditConversation, type AckedSend } from "../support/audit.js";

/** The audit itself must be able to fail: each broken delivery below is caught and named. */

const C = "g_audit";
const message = (seq: number, id = `m${seq}`): Message => create(MessageSchema, { messageId: id, conversationId: C, seq: BigInt(seq), text: `text ${seq}` });
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const history = range(1, 10).map((seq) => message(seq));
// Seq 1 is the group's creation event; 2..10 were sent and acked.
const acked: AckedSend[] = range(2, 10).map((seq) => ({ conversationId: C, messageId: `m${seq}`, seq: BigInt(seq) }));

describe("the delivery audit", () => {
  it("holds for a device that got every message once, in order, across two streams", () => {
    const report = assertAudit({ conversationId: C, acked, history, devices: [{ name: "ok", messages: [...history.slice(1, 5), ...history.slice(5)] }] });
    expect(report).toMatchObject({ acked: 9, devices: 1, historyLength: 10, problems: [] });
  });

  it.each([
    ["a lost message", range(2, 10).filter((seq) => seq !== 6).map((seq) => message(seq)), /not seq 2, 3, .* in order|never received/],
    ["a duplicate", [...range(2, 6), 6, ...range(7, 10)].map((seq) => message(seq)), /more than once/],
    ["a reordering", [2, 3, 5, 4, 6, 7, 8, 9, 10].map((seq) => message(seq)), /in order/],
    ["a device that stopped early", range(2, 8).map((seq) => message(seq)), /received up to seq 8 only/],
    ["another message at a seq", range(2, 10).map((seq) => (seq === 4 ? message(4, "forged") : message(seq))), /in history/],
  ])("catches %s", (_, messages, problem) => {
    expect(() => assertAudit({ conversationId: C, acked, history, devices: [{ name: "bad", messages }] })).toThrow(problem);
  });

  it("catches a server that sent a message twice even when the SDK hid it", () => {
    const report = auditConversation({ conversationId: C, acked, history, devices: [{ name: "raw", messages: history.slice(1), raw: [...history.slice(1), message(7)] }] });
    expect(report.problems.join("\n")).toMatch(/the server sent 1 message\(s\) more than once/);
  });

  it("catches an acked message missing from history, a gap in history, and an ack that names nothing", () => {
    const holed = history.filter((entry) => entry.seq !== 5n);
    const report = auditConversation({ conversationId: C, acked, history: holed, devices: [] });
    expect(report.problems.join("\n")).toMatch(/history is not 1\.\.9 without gaps/);
    expect(report.problems.join("\n")).toMatch(/1 acked message\(s\) missing from history: m5@5/);
    expect(() => assertAudit({ conversationId: C, acked: [], history, devices: [] })).toThrow(/nothing was acknowledged/);
  });
});
