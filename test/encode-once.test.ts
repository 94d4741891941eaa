import { create, fromBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { StreamResponseSchema } from "../gen/chat/v1/messaging_pb.js";
import { envelopeOf } from "../gateway/native-stream.js";
import type { ServerFrame } from "../services/messaging/index.js";

const message = (text: string): ServerFrame => ({
  frame: { case: "message", value: { messageId: "m_1", conversationId: "d_1", seq: 7n, senderUserId: "u_a", text } },
});

describe("native stream envelopes", () => {
  it("encodes a message frame handed to many devices once, and each frame as its own bytes", () => {
    const shared = message("hello");
    const first = envelopeOf(shared);
    // The same frame object (one message fanned out): the same bytes, not a second encode.
    expect(envelopeOf(shared)).toBe(first);
    expect(first[0]).toBe(0);
    expect(first.readUInt32BE(1)).toBe(first.length - 5);
    expect(fromBinary(StreamResponseSchema, first.subarray(5))).toEqual(create(StreamResponseSchema, shared));
    // Another frame, even with equal content, is encoded for itself.
    expect(envelopeOf(message("hello"))).not.toBe(first);
    expect(envelopeOf(message("other"))).not.toEqual(first);
  });
});
