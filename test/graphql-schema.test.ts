import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");

/**
 * Runs TypeScript in a child process under tsx, as the gateway runs. In-process, vitest would load
 * `graphql` twice (its ESM build for project code, the CommonJS one for Pothos and yoga), and
 * graphql-js refuses types from "another realm".
 */
function runTs(args: readonly string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", ...args], { cwd: ROOT, encoding: "utf8" });
}

function measure(queries: readonly { query: string; variables?: Record<string, unknown> }[]) {
  const script = `
    import { getOperationAST, Kind, parse, validate } from "graphql";
    import { measureOperation, queryDepthRule } from "./graphql/limits.ts";
    import { buildChatSchema } from "./graphql/schema/index.ts";
    const schema = buildChatSchema();
    const out = ${JSON.stringify(queries)}.map(({ query, variables }) => {
      const document = parse(query);
      const fragments = new Map(document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]));
      const measured = measureOperation(schema, getOperationAST(document), (name) => fragments.get(name), variables ?? {});
      return { ...measured, depthErrors: validate(schema, document, [queryDepthRule(10)]).map((e) => e.extensions.code) };
    });
    process.stdout.write(JSON.stringify(out));
  `;
  const result = runTs(["--input-type=module", "-e", script]);
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as { depth: number; cost: number; depthErrors: string[] }[];
}

describe("the GraphQL schema", () => {
  it("is committed as printed: graphql/schema.graphql matches the code (else run `npm run graphql:schema`)", () => {
    const result = runTs(["graphql/print-schema.ts", "--check"]);
    expect(result.status, result.stderr).toBe(0);
  });

  it("measures depth and cost as documented in graphql/limits.ts", () => {
    const page = `query($n: Int) { messages(conversationId: "c", last: $n) { nodes { id } pageInfo { hasNextPage } } }`;
    const [me, messages, three, huge, unset, presence, fragments, introspection, groups] = measure([
      { query: `{ me { user { id } } }` },
      { query: `{ messages(conversationId: "c", first: 100) { edges { node { id text } } } }` },
      { query: page, variables: { n: 3 } },
      { query: page, variables: { n: 5000 } },
      { query: page },
      { query: `{ presence(userIds: ["a", "b", "c"]) { userId status } }` },
      { query: `{ inbox(first: 2) { nodes { ...E } } __typename } fragment E on InboxEntry { unreadCount lastMessage { seq } }` },
      { query: `{ __schema { types { fields { type { ofType { ofType { ofType { ofType { name } } } } } } } } }` },
      { query: `{ myGroups { nodes { id members { nodes { userId role joinedAt } } } } }` },
    ]);
    expect(me).toMatchObject({ depth: 3, cost: 3 });
    expect(messages).toMatchObject({ depth: 4, cost: 302 });
    // Page sizes from variables count with their values, capped by the service's page cap (200);
    // absent, the default page (50).
    expect([three!.cost, huge!.cost, unset!.cost]).toEqual([4 + 3, 4 + 200, 4 + 50]);
    // Counted list arguments: one Presence per user asked for.
    expect(presence!.cost).toBe(1 + 3 * 2);
    // Fragments count where they are spread; __typename costs 1 like any scalar.
    expect(fragments!.cost).toBe(1 + 1 + 2 * (1 + 1 + 1) + 1);
    // Introspection is bounded by graphql-js's own rule, not by the depth limit, so GraphiQL works.
    expect(introspection).toEqual({ depth: 0, cost: 0, depthErrors: [] });
    // Every group with its members, as first written: default pages (20 groups, 50 members each)
    // keep it well within the limit of 10,000.
    expect(groups!.cost).toBe(1 + 1 + 20 * (1 + 1 + 1 + 50 * 3));
  });
});
