import { createHmac, timingSafeEqual } from "node:crypto";
import { ErrorReason, unauthenticated } from "../errors.js";

export interface Principal {
  readonly userId: string;
  readonly deviceId: string;
  /** When the access token that named this caller expires; long-lived streams end then. */
  readonly expiresAt?: Date;
}

export interface AccessToken {
  readonly token: string;
  readonly expiresAt: Date;
}

export interface AccessTokenSigner {
  sign(principal: Principal, now: Date): AccessToken;
  /** Throws a ChatError (unauthenticated) for a forged, malformed or expired token. */
  verify(token: string, now: Date): Principal;
}

const VERSION = "v1";

/**
 * Compact HMAC-SHA256 tokens: `v1.<claims>.<mac>`. Verifying needs no store look-up, so every gateway
 * can check a token on its own; revocation is checked separately against the device record.
 */
export function createAccessTokenSigner(secret: Uint8Array, ttlSeconds: number): AccessTokenSigner {
  const mac = (payload: string) => createHmac("sha256", secret).update(`${VERSION}.${payload}`).digest();
  return {
    sign(principal, now) {
      const expiresAt = new Date(now.getTime() + ttlSeconds * 1000);
      const claims = { sub: principal.userId, did: principal.deviceId, exp: Math.floor(expiresAt.getTime() / 1000) };
      const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
      return { token: `${VERSION}.${payload}.${mac(payload).toString("base64url")}`, expiresAt };
    },
    verify(token, now) {
      const parts = token.split(".");
      if (parts.length !== 3 || parts[0] !== VERSION) {
        throw unauthenticated(ErrorReason.TOKEN_INVALID, "the access token is malformed; log in again to get a new one");
      }
      const [, payload, signature] = parts as [string, string, string];
      const expected = mac(payload);
      const given = Buffer.from(signature, "base64url");
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw unauthenticated(ErrorReason.TOKEN_INVALID, "the access token's signature does not verify; log in again");
      }
      let claims: { sub?: unknown; did?: unknown; exp?: unknown };
      try {
        claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
      } catch {
        throw unauthenticated(ErrorReason.TOKEN_INVALID, "the access token is malformed; log in again");
      }
      if (typeof claims.sub !== "string" || typeof claims.did !== "string" || typeof claims.exp !== "number") {
        throw unauthenticated(ErrorReason.TOKEN_INVALID, "the access token is malformed; log in again");
      }
      if (claims.exp * 1000 <= now.getTime()) {
        throw unauthenticated(ErrorReason.TOKEN_EXPIRED, "the access token has expired; call AccountsService.Refresh with the refresh token");
      }
      return { userId: claims.sub, deviceId: claims.did, expiresAt: new Date(claims.exp * 1000) };
    },
  };
}
