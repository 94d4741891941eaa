import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateVapidKeys, type VapidKeys } from "../backends/push-webpush/index.js";

/** The file's content, or what `make` returns written there first (mode 0600), so it outlives restarts. */
function keptInDataDir(dataDir: string, name: string, make: () => string): string {
  const file = join(dataDir, name);
  try {
    return readFileSync(file, "utf8").trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  mkdirSync(dataDir, { recursive: true });
  const value = make();
  writeFileSync(file, value, { mode: 0o600, flag: "wx" });
  return value;
}

/**
 * A configured HMAC key, or one generated on first start and kept in the data directory (as the token
 * secret is), so signed URLs and webhook signatures stay valid across a restart without any setup.
 * Either way the key is the text itself (its UTF-8 bytes): the file's contents can be copied into a
 * receiver, or into another gateway's setting, and sign the same.
 */
export function resolveSecret(configured: string, dataDir: string, fileName: string): Uint8Array {
  return Buffer.from(configured || keptInDataDir(dataDir, fileName, () => randomBytes(32).toString("base64url")), "utf8");
}

/** The configured VAPID pair, or one generated once: browsers subscribed with its public key stay valid only while it is kept. */
export function resolveVapidKeys(publicKey: string, privateKey: string, dataDir: string): VapidKeys {
  if (publicKey && privateKey) return { publicKey, privateKey };
  const stored = JSON.parse(keptInDataDir(dataDir, "vapid-keys.json", () => JSON.stringify(generateVapidKeys()))) as VapidKeys;
  return { publicKey: stored.publicKey, privateKey: stored.privateKey };
}
