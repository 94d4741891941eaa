/**
 * `grpc-message` as the gRPC spec writes it: printable ASCII (0x20-0x7E) as is, every other byte of
 * the UTF-8 text and `%` itself percent-encoded. Connect encodes with encodeURIComponent, which also
 * escapes `:`, `/`, `,` and the like; grpc-js decodes with decodeURI, which leaves those escaped, so
 * its users read "%3A" where the message said ":".
 */
export function encodeGrpcMessage(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Re-encodes a Connect-written `grpc-message` in place (trailers of gRPC and gRPC-web answers). */
export function respecGrpcMessage(trailers: Headers): Headers {
  const written = trailers.get("grpc-message");
  if (written === null) return trailers;
  try {
    trailers.set("grpc-message", encodeGrpcMessage(decodeURIComponent(written)));
  } catch {
    // Not percent-encoded as Connect writes it: leave it as it came.
  }
  return trailers;
}
