import { readFileSync, writeFileSync } from "node:fs";
import { chatSchemaSdl, SCHEMA_FILE } from "./sdl.js";

/**
 * Writes the SDL to graphql/schema.graphql (committed, so integrators and reviewers read the API
 * without running anything). With --check it writes nothing and fails when the file differs from the
 * code: CI runs that, so the committed SDL never drifts.
 */
const sdl = chatSchemaSdl();

if (process.argv.includes("--check")) {
  let committed = "";
  try {
    committed = readFileSync(SCHEMA_FILE, "utf8");
  } catch {
    // A missing file is reported below as a difference.
  }
  if (committed !== sdl) {
    process.stderr.write("graphql/schema.graphql differs from the schema the code builds: run `npm run graphql:schema` and commit graphql/schema.graphql\n");
    process.exit(1);
  }
  process.stdout.write("graphql/schema.graphql is up to date\n");
} else {
  writeFileSync(SCHEMA_FILE, sdl);
  process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
}
