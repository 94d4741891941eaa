import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { usePersistedOperations } from "@graphql-yoga/plugin-persisted-operations";
import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Logger } from "../gateway/logger.js";

export type TrustedDocumentsMode = "off" | "register" | "only";

/** Registered documents kept at most (register mode): a client cannot grow the table without bound. */
const MAX_REGISTERED = 10_000;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** What a request names its document by: `documentId` (GraphQL over HTTP) or APQ's `extensions.persistedQuery.sha256Hash`. */
interface DocumentParams {
  readonly query?: string | null;
  readonly documentId?: unknown;
  readonly extensions?: Record<string, unknown> | null;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
/** Ids with or without graphql-codegen's `sha256:` prefix are the same id. */
const normalize = (id: string) => (id.startsWith("sha256:") ? id.slice(7) : id);

function documentIdOf(params: DocumentParams): string | undefined {
  if (typeof params.documentId === "string" && params.documentId !== "") return normalize(params.documentId);
  const persisted = params.extensions?.persistedQuery as { version?: unknown; sha256Hash?: unknown } | undefined;
  return persisted?.version === 1 && typeof persisted.sha256Hash === "string" ? normalize(persisted.sha256Hash) : undefined;
}

const refusal = (message: string, code: string) => new GraphQLError(message, { extensions: { code, grpcCode: "invalid_argument", http: { status: 400 } } });

/**
 * Trusted documents. `only`: a request names one of the documents of the file by id and may not send
 * a document of its own, so only operations the app was built with run (production). `register`:
 * any document runs, and one sent with its SHA-256 is kept, so later requests may send the hash
 * alone (automatic persisted queries; development, and saving bytes on slow links). `off`: documents
 * are sent in full. HTTP goes through yoga's persisted-operations plugin, WebSocket through
 * `resolve`, with the same table.
 */
export function createTrustedDocuments(mode: TrustedDocumentsMode, file: string, logger: Logger) {
  const known = new Map<string, string>();
  if (file !== "") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (error) {
      throw new Error(`CHAT_GRAPHQL_TRUSTED_DOCUMENTS_FILE="${file}" is not readable JSON: ${(error as Error).message}`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed) || !Object.values(parsed).every((text) => typeof text === "string")) {
      throw new Error(`CHAT_GRAPHQL_TRUSTED_DOCUMENTS_FILE="${file}" must be a JSON object of document id to document text`);
    }
    for (const [id, text] of Object.entries(parsed as Record<string, string>)) known.set(normalize(id), text);
  } else if (mode === "only") {
    throw new Error("CHAT_GRAPHQL_TRUSTED_DOCUMENTS=only needs CHAT_GRAPHQL_TRUSTED_DOCUMENTS_FILE: with no documents, nothing could run");
  }
  let registered = 0;

  /** Keeps a document sent with its hash (register mode); a hash that is not the document's is refused. */
  function register(params: DocumentParams): GraphQLError | undefined {
    const id = documentIdOf(params);
    if (mode !== "register" || id === undefined || typeof params.query !== "string" || known.has(id)) return undefined;
    if (!SHA256_HEX.test(id) || sha256(params.query) !== id) {
      return refusal("the persisted query hash is not the SHA-256 (hex) of the query sent with it", "PERSISTED_QUERY_HASH_MISMATCH");
    }
    if (registered >= MAX_REGISTERED) {
      logger.warn({ max: MAX_REGISTERED }, "graphql persisted query table full: not registering more");
      return undefined;
    }
    known.set(id, params.query);
    registered++;
    return undefined;
  }

  /** The document a request runs, or why it may not run. */
  function resolve(params: DocumentParams): string | GraphQLError {
    const registerError = register(params);
    if (registerError) return registerError;
    if (typeof params.query === "string" && params.query !== "") {
      return mode === "only" ? refusal("this server runs trusted documents only: send a documentId, not a query", "PERSISTED_QUERY_ONLY") : params.query;
    }
    const id = documentIdOf(params);
    if (id === undefined) return refusal("send a query, or a documentId of a persisted document", "PERSISTED_QUERY_ID_REQUIRED");
    const text = known.get(id);
    if (text !== undefined) return text;
    // The message APQ clients look for before they send the query with its hash.
    return mode === "only" ? refusal("no trusted document has this id", "PERSISTED_QUERY_NOT_IN_LIST") : refusal("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND");
  }

  /** For yoga (HTTP): its plugin for the lookup, and registration just before it. */
  function plugins(): Plugin[] {
    if (mode === "off") return [];
    const registration: Plugin = {
      onParams({ params }) {
        const error = register(params as DocumentParams);
        if (error) throw error;
      },
    };
    return [
      registration,
      usePersistedOperations({
        allowArbitraryOperations: mode === "register",
        extractPersistedOperationId: (params) => documentIdOf(params as DocumentParams) ?? null,
        getPersistedOperation: (id) => known.get(id) ?? null,
        customErrors: {
          notFound: () =>
            mode === "only" ? refusal("no trusted document has this id", "PERSISTED_QUERY_NOT_IN_LIST") : refusal("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND"),
          keyNotFound: () => refusal("send a query, or a documentId of a persisted document", "PERSISTED_QUERY_ID_REQUIRED"),
          persistedQueryOnly: () => refusal("this server runs trusted documents only: send a documentId, not a query", "PERSISTED_QUERY_ONLY"),
        },
      }) as Plugin,
    ];
  }

  return { mode, plugins, resolve };
}

export type TrustedDocuments = ReturnType<typeof createTrustedDocuments>;
