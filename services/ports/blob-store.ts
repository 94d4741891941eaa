/** What is known of a stored blob. `metadata` is what was signed into its upload URL. */
export interface BlobInfo {
  readonly key: string;
  readonly size: number;
  readonly contentType: string;
  readonly metadata: Readonly<Record<string, string>>;
}

export interface UploadGrant {
  /** The key the blob will be stored under. */
  readonly key: string;
  readonly contentType: string;
  /** The exact size the upload must have. */
  readonly size: number;
  readonly expiresAt: Date;
  /** Small strings kept with the blob (lower-case keys of a-z 0-9 -). */
  readonly metadata: Readonly<Record<string, string>>;
}

export interface SignedRequest {
  readonly url: string;
  /** Headers the request must carry exactly: they are covered by the signature. */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * Where attachment bytes live. Nothing goes through the API: the store hands out pre-signed URLs,
 * and whoever holds one may PUT (or GET) that one blob until it expires, and nothing else.
 */
export interface BlobStore {
  signUpload(grant: UploadGrant): Promise<SignedRequest>;
  signDownload(key: string, expiresAt: Date): Promise<string>;
  /** Undefined when nothing (complete) is stored under the key. */
  head(key: string): Promise<BlobInfo | undefined>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}
