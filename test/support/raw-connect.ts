/** The request headers of a Connect device stream, for tests that speak the protocol by hand. */
export function connectStreamHeaders(token: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ":method": "POST",
    ":path": "/chat.v1.MessagingService/Stream",
    "content-type": "application/connect+proto",
    "connect-protocol-version": "1",
    authorization: `Bearer ${token}`,
    ...extra,
  };
}
