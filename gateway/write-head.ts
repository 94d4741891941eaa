import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Http2ServerResponse } from "node:http2";

/**
 * `response.writeHead(status, headers)` for either protocol's response. Both accept that call, but
 * their overload sets differ, so TypeScript refuses it on the union; narrowing picks one set.
 */
export function writeHead(response: ServerResponse | Http2ServerResponse, status: number, headers: OutgoingHttpHeaders): void {
  if ("stream" in response) response.writeHead(status, headers);
  else response.writeHead(status, headers);
}
