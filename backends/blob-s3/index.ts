import type { BlobInfo, BlobStore, SignedRequest } from "../../services/ports/index.js";
import { presignUrl, uriEncode, type Credentials } from "./sigv4.js";

export { presignUrl, uriEncode } from "./sigv4.js";

export interface S3BlobStoreOptions {
  /** `http(s)://host:port` of the S3-compatible service; objects are addressed path-style (`/<bucket>/<key>`). */
  readonly endpoint: string;
  readonly bucket: string;
  readonly region: string;
  readonly credentials: Credentials;
  /** Timeout of the calls the gateway makes itself (head, delete, bucket check). */
  readonly timeoutMs?: number;
  readonly now?: () => Date;
}

const META_PREFIX = "x-amz-meta-";
// The gateway's own calls only need a URL valid for the moment it is used.
const OWN_CALL_SECONDS = 60;

/** `s3://host:port/bucket?region=us-east-1&tls=off` */
export function parseS3Url(url: string): { endpoint: string; bucket: string; region: string } {
  const parsed = new URL(url.replace(/^s3:/, "http:"));
  const bucket = parsed.pathname.replace(/^\/+|\/+$/g, "");
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new Error(`"${bucket}" is not a valid bucket name (3-63 of a-z 0-9 . -)`);
  const tls = parsed.searchParams.get("tls") ?? "on";
  return { endpoint: `${tls === "off" ? "http" : "https"}://${parsed.host}`, bucket, region: parsed.searchParams.get("region") ?? "us-east-1" };
}

/**
 * The cluster blob store: any S3-compatible service. Upload and download URLs are SigV4 pre-signed;
 * an upload URL signs Content-Type, Content-Length and the x-amz-meta-* headers, so the service
 * itself refuses another type, another size or changed metadata.
 */
export function createS3BlobStore(options: S3BlobStoreOptions): BlobStore & { ensureBucket(): Promise<void> } {
  const now = options.now ?? (() => new Date());
  const timeoutMs = options.timeoutMs ?? 10_000;
  const objectUrl = (key: string) => new URL(`${options.endpoint}/${uriEncode(options.bucket)}/${uriEncode(key)}`);
  const sign = (method: string, url: URL, expiresAt: Date, headers?: Record<string, string>) => {
    const at = now();
    const expiresSeconds = Math.max(1, Math.min(604_800, Math.ceil((expiresAt.getTime() - at.getTime()) / 1000)));
    return presignUrl({ method, url, region: options.region, credentials: options.credentials, date: at, expiresSeconds, headers });
  };
  const call = (method: string, url: URL) =>
    fetch(sign(method, url, new Date(now().getTime() + OWN_CALL_SECONDS * 1000)), { method, signal: AbortSignal.timeout(timeoutMs) });

  return {
    async signUpload(grant): Promise<SignedRequest> {
      const headers: Record<string, string> = { "content-type": grant.contentType };
      for (const [name, value] of Object.entries(grant.metadata)) headers[`${META_PREFIX}${name}`] = value;
      // Content-Length is signed but not handed out: clients (browsers in particular) set it from the body.
      const url = sign("PUT", objectUrl(grant.key), grant.expiresAt, { ...headers, "content-length": String(grant.size) });
      return { url, headers };
    },
    async signDownload(key, expiresAt) {
      return sign("GET", objectUrl(key), expiresAt);
    },
    async head(key): Promise<BlobInfo | undefined> {
      const response = await call("HEAD", objectUrl(key));
      if (response.status === 404) return undefined;
      if (!response.ok) throw new Error(`S3 HEAD ${key} answered HTTP ${response.status}`);
      const metadata: Record<string, string> = {};
      response.headers.forEach((value, name) => {
        if (name.startsWith(META_PREFIX)) metadata[name.slice(META_PREFIX.length)] = value;
      });
      return { key, size: Number(response.headers.get("content-length") ?? 0), contentType: response.headers.get("content-type") ?? "", metadata };
    },
    async delete(key) {
      const response = await call("DELETE", objectUrl(key));
      await response.arrayBuffer();
      if (!response.ok && response.status !== 404) throw new Error(`S3 DELETE ${key} answered HTTP ${response.status}`);
    },
    /** Creates the bucket if it does not exist (a fresh test server, a first deployment). */
    async ensureBucket() {
      const bucketUrl = new URL(`${options.endpoint}/${uriEncode(options.bucket)}`);
      const head = await call("HEAD", bucketUrl);
      await head.arrayBuffer();
      if (head.ok) return;
      if (head.status !== 404) throw new Error(`S3 bucket ${options.bucket} could not be checked: HTTP ${head.status}`);
      const created = await call("PUT", bucketUrl);
      const body = await created.text();
      if (!created.ok) throw new Error(`S3 bucket ${options.bucket} could not be created: HTTP ${created.status} ${body.slice(0, 200)}`);
    },
    async close() {},
  } satisfies BlobStore & { ensureBucket(): Promise<void> };
}
