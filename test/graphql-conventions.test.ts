import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");

/**
 * Runs the checks under tsx in a child process: in-process, vitest would load `graphql` twice (ESM
 * for project code, CommonJS for Pothos) and graphql-js refuses types from "another realm".
 */
function run(script: string): unknown {
  const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: ROOT, encoding: "utf8" });
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

const IMPORTS = `
  import { buildChatSchema } from "./graphql/schema/index.ts";
  import { checkConventions, checkParity } from "./graphql/conventions.ts";
  import { MESSAGES, RPCS } from "./graphql/parity.ts";
  const schema = buildChatSchema();
`;

describe("GraphQL parity with the Connect API", () => {
  it("gives every RPC and every message field of proto/chat/v1 a counterpart that exists, or a reason", () => {
    expect(run(`${IMPORTS} process.stdout.write(JSON.stringify(checkParity(schema, RPCS, MESSAGES)));`)).toEqual([]);
  });

  it("fails on an RPC, a message or a field left unmapped, and on a counterpart that does not exist", () => {
    const problems = run(`${IMPORTS}
      const { ["chat.v1.SyncService.MarkRead"]: _, ...rpcs } = RPCS;
      const { ["chat.v1.Attachment"]: __, ...messages } = MESSAGES;
      messages["chat.v1.Message"] = { type: "Message", fields: { attachments: "Message.files" } };
      messages["chat.v1.GetInboxRequest"] = { fields: { limit: "Query.inbox(first)" } };
      process.stdout.write(JSON.stringify(checkParity(schema, rpcs, messages)));
    `);
    const expected = [
      "rpc chat.v1.SyncService.MarkRead has no GraphQL counterpart and no reason why not (graphql/parity.ts)",
      "message chat.v1.Attachment is not in graphql/parity.ts",
      "field chat.v1.Message.attachments: its counterpart Message.files is not in the schema",
      "field chat.v1.GetInboxRequest.page_token has no GraphQL counterpart and no reason why not (graphql/parity.ts)",
    ];
    expect([...(problems as string[])].sort()).toEqual(expected.sort());
  });
});

describe("GraphQL schema conventions", () => {
  it("describes everything, marks custom scalars @specifiedBy, gives mutations one input and a payload with userErrors, and has Node and connections", () => {
    expect(run(`${IMPORTS} process.stdout.write(JSON.stringify(checkConventions(schema)));`)).toEqual([]);
  });

  it("reports a missing description, a flat mutation and a non-null lookup", () => {
    const problems = run(`
      import { buildSchema } from "graphql";
      import { checkConventions } from "./graphql/conventions.ts";
      const schema = buildSchema(\`
        "q" type Query { "x" conversation(id: ID!): String! }
        "m" type Mutation { "y" rename(id: ID!, name: String!): Boolean! }
        scalar UInt64
      \`);
      process.stdout.write(JSON.stringify(checkConventions(schema)));
    `) as string[];
    expect(problems).toEqual(
      expect.arrayContaining([
        "type UInt64 has no description",
        "scalar UInt64 has no @specifiedBy",
        "argument Query.conversation(id) has no description",
        "mutation rename must take one argument, input: <Name>Input!",
        "mutation rename must return RenamePayload with userErrors: [UserError!]!",
        "Query.conversation is a lookup: it must be nullable, so a miss keeps the rest of the data",
        "the Node interface and Query.node are missing",
      ]),
    );
  });
});
