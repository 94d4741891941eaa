import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { BlobInfo, BlobStore, SignedRequest } from "../../services/ports/index.js";

/** Why a request to a signed URL is refused; the reasons are chat.v1.ErrorReason names. */
export interface BlobRefusal {
  readonly status: number;
  readonly reason:
    | "SIGNED_URL_EXPIRED"
    | "SIGNED_URL_INVALID"
    | "ATTACHMENT_TOO_LARGE"
    | "CONTENT_TYPE_NOT_ALLOWED"
    | "ATTACHMENT_NOT_FOUND"
    | "INVALID_ARGUMENT";
  readonly message: string;
}

export interface LocalBlobStoreOptions {
  readonly dir: string;
  /** HMAC key of the URLs. */
  readonly secret: Uint8Array;
  /** Where the gateway serving `pathPrefix` is reached from outside, e.g. `https://chat.example.com`. */
  readonly baseUrl: () => string;
  readonly pathPrefix?: string;
  readonly now?: () => Date;
}

export interface LocalBlobStore extends BlobStore {
  /** The HTTP path under which the gateway serves `receive` (PUT) and `open` (GET): `<prefix><key>`. */
  readonly pathPrefix: string;
  /** Stores an upload made to a signed URL, or says why not; a refused upload leaves nothing behind. */
  receive(key: string, query: URLSearchParams, contentType: string | undefined, contentLength: string | undefined, body: Readable): Promise<BlobInfo | BlobRefusal>;
  /** The file behind a signed download URL. */
  open(key: string, query: URLSearchParams): Promise<{ readonly info: BlobInfo; readonly path: string } | BlobRefusal>;
}

const KEY = /^[A-Za-z0-9_-]{1,128}$/;

export function isRefusal(value: object): value is BlobRefusal {
  return "reason" in value && "status" in value;
}

class TooLarge extends Error {}

/**
 * The embedded blob store: files in a local directory, uploaded and downloaded through the gateway
 * with URLs signed like S3's. The upload URL carries (and signs) the key, method, expiry, exact size,
 * content type and metadata, so nothing is recorded before the bytes arrive. A blob is its data file
 * plus a `.json` file written last: no `.json`, no blob.
 */
export function createLocalBlobStore(options: LocalBlobStoreOptions): LocalBlobStore {
  const now = options.now ?? (() => new Date());
  const pathPrefix = options.pathPrefix ?? "/blobs/";
  const objects = join(options.dir, "objects");
  const incoming = join(options.dir, "incoming");
  const ready = Promise.all([mkdir(objects, { recursive: true }), mkdir(incoming, { recursive: true })]);

  const mac = (parts: readonly string[]) => createHmac("sha256", options.secret).update(parts.join("\n")).digest("base64url");
  const refuse = (status: number, reason: BlobRefusal["reason"], message: string): BlobRefusal => ({ status, reason, message });
  const invalid = () => refuse(403, "SIGNED_URL_INVALID", "the URL's signature does not match: it was changed or not issued by this server; ask for a new URL");

  /** Checks signature, then expiry: an altered expiry is a bad signature, not a late one. */
  function verify(parts: readonly string[], query: URLSearchParams): BlobRefusal | undefined {
    const given = Buffer.from(query.get("sig") ?? "", "utf8");
    const expected = Buffer.from(mac(parts), "utf8");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return invalid();
    if (Number(query.get("exp")) < now().getTime()) {
      return refuse(403, "SIGNED_URL_EXPIRED", "the URL has expired; ask for a new one (AttachmentsService.CreateUpload or CreateDownload)");
    }
    return undefined;
  }

  const putParts = (key: string, query: URLSearchParams) => ["PUT", key, query.get("exp") ?? "", query.get("size") ?? "", query.get("ct") ?? "", query.get("meta") ?? ""];
  const getParts = (key: string, query: URLSearchParams) => ["GET", key, query.get("exp") ?? ""];
  const url = (key: string, params: Record<string, string>) => `${options.baseUrl()}${pathPrefix}${key}?${new URLSearchParams(params).toString()}`;

  async function head(key: string): Promise<BlobInfo | undefined> {
    if (!KEY.test(key)) return undefined;
    try {
      return JSON.parse(await readFile(join(objects, `${key}.json`), "utf8")) as BlobInfo;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }

  return {
    pathPrefix,
    async signUpload(grant): Promise<SignedRequest> {
      if (!KEY.test(grant.key)) throw new RangeError(`blob key must match ${KEY}, got "${grant.key}"`);
      const params = {
        exp: String(grant.expiresAt.getTime()),
        size: String(grant.size),
        ct: grant.contentType,
        meta: Buffer.from(JSON.stringify(grant.metadata)).toString("base64url"),
      };
      const query = new URLSearchParams(params);
      return { url: url(grant.key, { ...params, sig: mac(putParts(grant.key, query)) }), headers: { "content-type": grant.contentType } };
    },

    async signDownload(key, expiresAt) {
      const params = { exp: String(expiresAt.getTime()) };
      return url(key, { ...params, sig: mac(getParts(key, new URLSearchParams(params))) });
    },

    head,

    async delete(key) {
      if (!KEY.test(key)) return;
      await rm(join(objects, `${key}.json`), { force: true });
      await rm(join(objects, key), { force: true });
    },

    async close() {},

    async receive(key, query, contentType, contentLength, body) {
      if (!KEY.test(key)) return invalid();
      const refused = verify(putParts(key, query), query);
      if (refused) return refused;
      const size = Number(query.get("size"));
      const expectedType = query.get("ct") ?? "";
      const sentType = (contentType ?? "").trim().toLowerCase();
      if (sentType !== expectedType) {
        return refuse(415, "CONTENT_TYPE_NOT_ALLOWED", `this URL takes ${expectedType} only, the request said "${sentType}"; send Content-Type: ${expectedType} or ask for a URL for the right type`);
      }
      const tooLarge = () => refuse(413, "ATTACHMENT_TOO_LARGE", `this URL takes exactly ${size} bytes; ask for a new URL with the file's real size`);
      if (contentLength !== undefined && Number(contentLength) > size) return tooLarge();
      await ready;
      if (await head(key)) return refuse(409, "INVALID_ARGUMENT", "this attachment was already uploaded; ask for a new upload URL to send another file");
      const partial = join(incoming, `${key}.${randomBytes(6).toString("hex")}`);
      let received = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          received += chunk.length;
          // Stop at the first byte past the limit: the rest of the body is never written.
          if (received > size) done(new TooLarge());
          else done(null, chunk);
        },
      });
      try {
        await pipeline(body, counter, createWriteStream(partial, { flags: "wx" }));
        if (received !== size) {
          await rm(partial, { force: true });
          return refuse(400, "INVALID_ARGUMENT", `the body had ${received} bytes but this URL is for exactly ${size}; upload the whole file`);
        }
        const info: BlobInfo = { key, size, contentType: expectedType, metadata: JSON.parse(Buffer.from(query.get("meta") ?? "", "base64url").toString("utf8")) as Record<string, string> };
        await rename(partial, join(objects, key));
        const metaPartial = `${partial}.json`;
        await writeFile(metaPartial, JSON.stringify(info), { flag: "wx" });
        // The commit point: the blob exists once its .json is in place.
        await rename(metaPartial, join(objects, `${key}.json`));
        return info;
      } catch (error) {
        await rm(partial, { force: true });
        if (error instanceof TooLarge) return tooLarge();
        throw error;
      }
    },

    async open(key, query) {
      if (!KEY.test(key)) return invalid();
      const refused = verify(getParts(key, query), query);
      if (refused) return refused;
      const info = await head(key);
      if (!info) return refuse(404, "ATTACHMENT_NOT_FOUND", "nothing was uploaded under this URL (yet); upload the file first");
      return { info, path: join(objects, key) };
    },
  } satisfies LocalBlobStore;
}
