import type { GatewayConfig } from "../gateway/config.js";

/** The GraphQL endpoint's settings (validated with the rest in gateway/config.ts). */
export interface GraphQLSettings {
  /** Introspection queries are answered. */
  readonly introspection: boolean;
  /** GET /graphql from a browser serves GraphiQL. */
  readonly graphiql: boolean;
  /** Deepest field nesting an operation may have (introspection fields excepted: graphql-js bounds those). */
  readonly maxDepth: number;
  /** Highest estimated cost an operation may have; see graphql/limits.ts for the model. */
  readonly maxCost: number;
  /** Which documents run; see graphql/trusted-documents.ts. */
  readonly trustedDocuments: "off" | "register" | "only";
  /** The known documents (id to text), as a JSON file; empty: none. */
  readonly trustedDocumentsFile: string;
}

export function graphqlSettingsFrom(config: GatewayConfig): GraphQLSettings {
  return {
    introspection: config.graphqlIntrospection,
    graphiql: config.graphqlGraphiql,
    maxDepth: config.graphqlMaxDepth,
    maxCost: config.graphqlMaxCost,
    trustedDocuments: config.graphqlTrustedDocuments,
    trustedDocumentsFile: config.graphqlTrustedDocumentsFile,
  };
}
