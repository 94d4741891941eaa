import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BlobStore } from "../../services/ports/index.js";

/**
 * Which refusals the engine makes itself. Real S3 makes both; S3 stand-ins often check no SigV4
 * signature (s3rver, moto) or not even the expiry (moto), so those parts are skipped for them.
 */
export interface BlobStoreContractOptions {
  /** Refuses a request that breaks its signature: another size, type or key. */
  readonly enforcesSignatures: boolean;
  readonly enforcesExpiry: boolean;
}

/**
 * What every BlobStore engine must do, driven through its URLs over real HTTP as a client would. The
 * factory returns a store whose URLs are reachable from this process.
 */
export function describeBlobStoreContract(
  engineName: string,
  open: () => Promise<{ store: BlobStore; dispose(): Promise<void> }>,
  options: BlobStoreContractOptions,
): void {
  describe(`BlobStore contract: ${engineName}`, () => {
    let store: BlobStore;
    let dispose: () => Promise<void>;
    beforeAll(async () => {
      ({ store, dispose } = await open());
    });
    afterAll(async () => {
      await store?.close();
      await dispose?.();
    });

    const key = () => `a_${Math.random().toString(36).slice(2, 12)}`;
    const inMinutes = (minutes: number) => new Date(Date.now() + minutes * 60_000);
    const grant = (k: string, body: Buffer, contentType = "image/png") => ({
      key: k,
      contentType,
      size: body.length,
      expiresAt: inMinutes(5),
      metadata: { conversation: "c_1", uploader: "u_alice", "file-name": encodeURIComponent("a b.png") },
    });
    const put = (url: string, headers: Record<string, string>, body: Buffer) => fetch(url, { method: "PUT", headers, body: new Uint8Array(body) });

    it("stores an upload made to its signed URL, with its type, size and metadata, and serves it to a signed download URL", async () => {
      const k = key();
      const body = Buffer.from("hello, blob");
      expect(await store.head(k)).toBeUndefined();
      const signed = await store.signUpload(grant(k, body));
      const response = await put(signed.url, signed.headers, body);
      expect(response.status, await response.text()).toBeLessThan(300);
      expect(await store.head(k)).toEqual({
        key: k,
        size: body.length,
        contentType: "image/png",
        metadata: { conversation: "c_1", uploader: "u_alice", "file-name": encodeURIComponent("a b.png") },
      });
      const download = await fetch(await store.signDownload(k, inMinutes(5)));
      expect(download.status).toBe(200);
      expect(Buffer.from(await download.arrayBuffer()).equals(body)).toBe(true);
    });

    it("deletes a blob; head then finds nothing, and a delete of nothing is harmless", async () => {
      const k = key();
      const body = Buffer.from("bye");
      const signed = await store.signUpload(grant(k, body));
      expect((await put(signed.url, signed.headers, body)).status).toBeLessThan(300);
      await store.delete(k);
      expect(await store.head(k)).toBeUndefined();
      await store.delete(k);
    });

    it.runIf(options.enforcesSignatures)("refuses an upload of another size or type, or to a changed URL, storing nothing", async () => {
      const k = key();
      const body = Buffer.from("0123456789");
      const signed = await store.signUpload(grant(k, body));
      expect((await put(signed.url, signed.headers, Buffer.concat([body, body]))).status).toBeGreaterThanOrEqual(400);
      expect((await put(signed.url, { ...signed.headers, "content-type": "text/html" }, body)).status).toBeGreaterThanOrEqual(400);
      const changed = new URL(signed.url);
      changed.pathname = `${changed.pathname}x`;
      expect((await put(changed.toString(), signed.headers, body)).status).toBeGreaterThanOrEqual(400);
      expect(await store.head(k)).toBeUndefined();
      expect(await store.head(`${k}x`)).toBeUndefined();
    });

    it.runIf(options.enforcesExpiry)("refuses an expired URL", async () => {
      const k = key();
      const body = Buffer.from("late");
      const signed = await store.signUpload({ ...grant(k, body), expiresAt: new Date(Date.now() + 1_000) });
      await new Promise((resolve) => setTimeout(resolve, 2_100));
      expect((await put(signed.url, signed.headers, body)).status).toBeGreaterThanOrEqual(400);
      expect(await store.head(k)).toBeUndefined();
    });
  });
}
