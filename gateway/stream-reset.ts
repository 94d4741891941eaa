import { createContextKey } from "@connectrpc/connect";
import type { IncomingMessage, ServerResponse } from "node:http";
import { constants, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";

/**
 * Cuts the transport under one call: for HTTP/2 that stream alone (RST_STREAM), for HTTP/1.1 the
 * connection. For a handler whose last frame cannot be written because the peer stopped reading.
 */
export const kResetStream = createContextKey<(() => void) | undefined>(undefined, { description: "resets the call's transport stream" });

export function streamResetter(request: IncomingMessage | Http2ServerRequest, response: ServerResponse | Http2ServerResponse): () => void {
  return () => {
    if ("stream" in response) {
      // ENHANCE_YOUR_CALM: the peer is taking too little, the same verdict as SLOW_CONSUMER.
      if (!response.stream.destroyed) response.stream.close(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    } else {
      request.socket.destroy();
    }
  };
}
