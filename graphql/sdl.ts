import { resolve } from "node:path";
import { printSchema } from "graphql";
import { buildChatSchema } from "./schema/index.js";

/** Where the printed schema is committed. */
export const SCHEMA_FILE = resolve(import.meta.dirname, "schema.graphql");

const HEADER = "# Generated from graphql/schema/*.ts by `npm run graphql:schema`; do not edit.\n\n";

/** The SDL exactly as committed in graphql/schema.graphql (Pothos sorts types and fields). */
export function chatSchemaSdl(): string {
  return `${HEADER}${printSchema(buildChatSchema())}\n`;
}
