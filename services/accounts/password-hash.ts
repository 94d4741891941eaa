import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";

const KEY_LENGTH = 32;

function derive(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize("NFKC"), salt, KEY_LENGTH, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

function scryptOptions(logCost: number, blockSize: number, parallelism: number): ScryptOptions {
  const cost = 2 ** logCost;
  // scrypt needs 128 * N * r bytes; Node's default ceiling (32 MiB) is too low for N = 2^15.
  return { N: cost, r: blockSize, p: parallelism, maxmem: 256 * cost * blockSize + 1024 * 1024 };
}

/**
 * scrypt, encoded with its parameters (`scrypt$logN$r$p$salt$key`) so the cost can be raised later
 * without invalidating stored hashes. It runs on libuv's thread pool, off the event loop.
 */
export async function hashPassword(password: string, logCost: number): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, scryptOptions(logCost, 8, 1));
  return ["scrypt", logCost, 8, 1, salt.toString("base64url"), key.toString("base64url")].join("$");
}

export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const [scheme, logCost, blockSize, parallelism, salt, key] = encoded.split("$");
  if (scheme !== "scrypt" || !salt || !key) return false;
  const expected = Buffer.from(key, "base64url");
  const actual = await derive(password, Buffer.from(salt, "base64url"), scryptOptions(Number(logCost), Number(blockSize), Number(parallelism)));
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
