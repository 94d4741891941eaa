import { toBinary } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import { ErrorDetailSchema, ErrorReason } from "../gen/chat/v1/errors_pb.js";
import { encodeGrpcMessage, respecGrpcMessage } from "./grpc-message.js";

const PARSE_FAILURE = "parse binary";
const INVALID_ARGUMENT = 3;

function malformedDetail(): Uint8Array {
  return toBinary(ErrorDetailSchema, { $typeName: "chat.v1.ErrorDetail", reason: ErrorReason.MALFORMED_FRAME, field: "", metadata: {} });
}

function message(original: string): string {
  return `the request could not be decoded (${original}); send a valid protobuf message for this method`;
}

/** google.rpc.Status { code, message, details: [Any] }, as gRPC carries it in grpc-status-details-bin. */
function grpcStatusDetails(text: string): string {
  const any = new BinaryWriter().tag(1, 2).string("type.googleapis.com/chat.v1.ErrorDetail").tag(2, 2).bytes(malformedDetail()).finish();
  const status = new BinaryWriter().tag(1, 0).int32(INVALID_ARGUMENT).tag(2, 2).string(text).tag(3, 2).bytes(any).finish();
  return Buffer.from(status).toString("base64").replace(/=+$/, "");
}

async function* single(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/**
 * Connect's router parses a unary request body before any handler or interceptor runs, and reports an
 * undecodable body as `internal`. That is the client's fault, not the server's: this rewrites such
 * answers to `invalid_argument` with the MALFORMED_FRAME reason, for the Connect protocol (a JSON error
 * body) and for gRPC / gRPC-web (trailers, known only once the body has been sent). Every other gRPC
 * answer gets its grpc-message re-encoded as the gRPC spec says (see grpc-message.ts).
 */
export async function retypeMalformedRequest(response: UniversalServerResponse): Promise<UniversalServerResponse> {
  if ((response.status === 500 || response.status === 400) && response.body && response.header?.get("content-type") === "application/json") {
    const chunks: Uint8Array[] = [];
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) chunks.push(chunk);
    const raw = Buffer.concat(chunks);
    let error: { code?: string; message?: string; details?: unknown[] } = {};
    try {
      error = JSON.parse(raw.toString("utf8"));
    } catch {
      // Not a Connect error body: pass it on untouched.
    }
    // Every error of ours carries an ErrorDetail; an invalid_argument without one is the router's own
    // refusal of a body it could not decode (JSON that is not JSON, or not this message).
    const undecodable = error.code === "internal" ? error.message?.startsWith(PARSE_FAILURE) : error.code === "invalid_argument" && !error.details?.length;
    if (!undecodable || !error.message) {
      return { ...response, body: single(raw) };
    }
    const body = Buffer.from(
      JSON.stringify({
        code: "invalid_argument",
        message: message(error.message),
        details: [{ type: "chat.v1.ErrorDetail", value: Buffer.from(malformedDetail()).toString("base64").replace(/=+$/, "") }],
      }),
    );
    const header = new Headers(response.header);
    header.set("content-length", String(body.byteLength));
    return { status: 400, header, body: single(body) };
  }
  const trailer = response.trailer;
  if (!trailer || !response.body) return response;
  const original = response.body as AsyncIterable<Uint8Array>;
  return {
    ...response,
    body: (async function* () {
      yield* original;
      const status = trailer.get("grpc-status");
      const undecodable =
        (status === "13" && decodeURIComponent(trailer.get("grpc-message") ?? "").startsWith(PARSE_FAILURE)) ||
        (status === String(INVALID_ARGUMENT) && !trailer.has("grpc-status-details-bin"));
      if (undecodable) {
        const text = message(decodeURIComponent(trailer.get("grpc-message")!));
        trailer.set("grpc-status", String(INVALID_ARGUMENT));
        trailer.set("grpc-message", encodeGrpcMessage(text));
        trailer.set("grpc-status-details-bin", grpcStatusDetails(text));
      } else {
        respecGrpcMessage(trailer);
      }
    })(),
  };
}
