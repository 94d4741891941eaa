import type { CodegenConfig } from "@graphql-codegen/cli";

/**
 * graphql-codegen's client preset against the checked-in SDL: every `graphql(...)` document in src/
 * gets its result and variable types, and persisted-documents.json lists them by SHA-256 for a
 * server that runs trusted documents only (CHAT_GRAPHQL_TRUSTED_DOCUMENTS=only).
 */
const config: CodegenConfig = {
  schema: "graphql/schema.graphql",
  documents: ["examples/graphql-client/src/**/*.ts"],
  ignoreNoDocuments: false,
  generates: {
    "examples/graphql-client/gql/": {
      preset: "client",
      presetConfig: { persistedDocuments: { hashAlgorithm: "sha256" }, fragmentMasking: false },
      config: {
        documentMode: "string",
        useTypeImports: true,
        emitLegacyCommonJSImports: false,
        enumsAsTypes: true,
        scalars: { UInt64: "string", DateTime: "string" },
      },
    },
  },
};

export default config;
