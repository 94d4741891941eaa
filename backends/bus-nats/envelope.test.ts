import { describe, expect, it } from "vitest";
import type { BusEvent } from "../../services/ports/index.js";
import { decodeEnvelope, encodeEvent, encodeEventEnvelope, encodeLostEnvelope, EnvelopeError } from "./envelope.js";

describe("bus envelope", () => {
  it("round-trips bigints and dates exactly, nested anywhere", () => {
    const event: BusEvent = {
      kind: "message",
      message: {
        messageId: "m_1",
        conversationId: "c_1",
        senderUserId: "u_1",
        senderDeviceId: "d_1",
        clientMsgId: "x",
        kind: "text",
        text: '{"$bigint":"1"} is text, not a bigint',
        sentAt: new Date(Date.UTC(2025, 0, 1, 0, 0, 0, 1)),
        seq: 2n ** 63n - 1n,
      },
    };
    const decoded = decodeEnvelope(encodeEventEnvelope(["u_2", "u_3"], encodeEvent(event)));
    expect(decoded).toEqual({ kind: "event", to: ["u_2", "u_3"], event });
  });

  it("keeps an invalid date invalid", () => {
    const event: BusEvent = { kind: "typing", conversationId: "c", userId: "u", typing: false, expiresAt: new Date(Number.NaN) };
    const decoded = decodeEnvelope(encodeEventEnvelope(["u"], encodeEvent(event)));
    expect(decoded.kind === "event" && decoded.event.kind === "typing" && Number.isNaN(decoded.event.expiresAt.getTime())).toBe(true);
  });

  it("carries lost notices for some users or all", () => {
    expect(decodeEnvelope(encodeLostEnvelope(["u_1"]))).toEqual({ kind: "lost", to: ["u_1"] });
    expect(decodeEnvelope(encodeLostEnvelope("all"))).toEqual({ kind: "lost", to: "all" });
  });

  it("refuses what it cannot read", () => {
    const bytes = (text: string) => new TextEncoder().encode(text);
    for (const text of ["nope", "null", '{"v":2,"to":[],"event":{"kind":"typing"}}', '{"v":1,"to":"u","event":{"kind":"typing"}}', '{"v":1,"to":[]}', '{"v":1,"lost":7}']) {
      expect(() => decodeEnvelope(bytes(text)), text).toThrow(EnvelopeError);
    }
  });
});
