import { createHash, randomBytes } from "node:crypto";

const CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz";

function encodeBase32(bytes: Uint8Array, length: number): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < length) {
      out += CROCKFORD[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

// One getrandom call per 410 ids instead of one per id: ids are made on every send.
const RANDOM_POOL_BYTES = 4_100;
let randomPool = Buffer.alloc(0);
let randomOffset = RANDOM_POOL_BYTES;

function randomBytesForId(): Uint8Array {
  if (randomOffset + 10 > randomPool.length) {
    randomPool = randomBytes(RANDOM_POOL_BYTES);
    randomOffset = 0;
  }
  randomOffset += 10;
  return randomPool.subarray(randomOffset - 10, randomOffset);
}

/**
 * `prefix_` + 10 characters of milliseconds + 16 random characters: sortable by creation time (which
 * keeps Cassandra and SQLite indexes append-mostly) and safe in URLs and NATS subjects.
 */
export function newId(prefix: string, now = Date.now()): string {
  let time = "";
  let ms = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[ms % 32] + time;
    ms = Math.floor(ms / 32);
  }
  return `${prefix}_${time}${encodeBase32(randomBytesForId(), 16)}`;
}

/** The id of the 1:1 conversation of two users: the same whichever of them asks. */
export function directConversationId(userA: string, userB: string): string {
  const [first, second] = userA < userB ? [userA, userB] : [userB, userA];
  const digest = createHash("sha256").update(`${first}\n${second}`).digest();
  return `d_${encodeBase32(digest, 26)}`;
}
