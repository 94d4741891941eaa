import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * The configured secret, or one generated on first start and kept beside the embedded store, so
 * tokens survive a restart without any setup.
 */
export function resolveTokenSecret(configured: string, dataDir: string): Uint8Array {
  if (configured) return Buffer.from(configured, "utf8");
  const file = join(dataDir, "token-secret");
  try {
    return Buffer.from(readFileSync(file, "utf8").trim(), "base64url");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32);
  writeFileSync(file, secret.toString("base64url"), { mode: 0o600, flag: "wx" });
  return secret;
}
