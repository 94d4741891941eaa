import { describe, it } from "vitest";
import { describeBlobStoreContract } from "../../test/contracts/blob-store-contract.js";
import { createS3BlobStore, parseS3Url } from "./index.js";

// An S3-compatible server to run the contract against, as a CHAT_BLOB_STORE URL
// (e.g. s3://127.0.0.1:4568/chat-test?tls=off), with CHAT_TEST_S3_ACCESS_KEY_ID and
// CHAT_TEST_S3_SECRET_ACCESS_KEY. CHAT_TEST_S3_CHECKS lists what the server refuses by itself:
// "signatures,expiry" (the default, as S3 does); s3rver checks only "expiry", moto "none".
const url = process.env.CHAT_TEST_S3;
const checks = (process.env.CHAT_TEST_S3_CHECKS ?? "signatures,expiry").split(",");

if (url) {
  describeBlobStoreContract(
    `S3 at ${url}`,
    async () => {
      const store = createS3BlobStore({
        ...parseS3Url(url),
        credentials: { accessKeyId: process.env.CHAT_TEST_S3_ACCESS_KEY_ID ?? "test", secretAccessKey: process.env.CHAT_TEST_S3_SECRET_ACCESS_KEY ?? "test" },
      });
      await store.ensureBucket();
      return { store, dispose: async () => {} };
    },
    { enforcesSignatures: checks.includes("signatures"), enforcesExpiry: checks.includes("expiry") },
  );
} else {
  describe("BlobStore contract: S3", () => {
    it.skip("needs CHAT_TEST_S3 (an S3-compatible server); the SigV4 signing is checked by sigv4.test.ts", () => {});
  });
}
