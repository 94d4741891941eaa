import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, WAIT } from "./support/browser.js";
import { graphqlData } from "./support/graphql-client.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { PASSWORD, uniqueName } from "./support/users.js";

// .tmp/ is ignored by git; the screenshot stays there for a person to look at.
const ARTIFACTS = join(resolve(import.meta.dirname, ".."), ".tmp", "graphiql");

/** Replaces the text of a GraphiQL editor as a paste would (typing would trigger its auto-closing of brackets). */
async function setEditor(page: Page, editor: string, text: string): Promise<void> {
  await page.locator(editor).click();
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.press("Delete");
  await page.keyboard.insertText(text);
}

describe("GraphiQL on GET /graphql (headless Chromium, no network beyond the gateway)", () => {
  let server: ServerProcess;
  let browser: Browser;
  let username: string;
  let token: string;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer();
    username = uniqueName("graphiql");
    const data = await graphqlData<{ signUp: { session: { accessToken: string } } }>(
      server.url,
      `mutation($input: SignUpInput!) { signUp(input: $input) { session { accessToken } } }`,
      { input: { username, password: PASSWORD } },
    );
    token = data.signUp.session.accessToken;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.kill("SIGTERM");
    if (server) removeDir(server.dataDir);
  });

  it("loads with every asset from the gateway, shows the docs, and runs a query with a token", async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    // Anything not from the gateway is refused and recorded: the page must need none of it.
    const elsewhere: string[] = [];
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith(server.url)) return route.continue();
      elsewhere.push(url);
      return route.abort();
    });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));

    await page.goto(`${server.url}/graphql`);
    expect(await page.title()).toBe("chat GraphQL");
    await page.locator(".graphiql-container").first().waitFor(WAIT);

    // The docs come from introspection of this schema.
    await page.getByRole("button", { name: /documentation explorer/i }).click();
    const docs = page.locator(".graphiql-doc-explorer");
    await docs.getByText("Query", { exact: true }).first().waitFor(WAIT);
    await docs.getByText("Mutation", { exact: true }).first().waitFor(WAIT);

    await page.getByRole("button", { name: "Headers" }).click();
    await setEditor(page, ".graphiql-editor-tool .graphiql-editor:not(.hidden)", JSON.stringify({ Authorization: `Bearer ${token}` }));
    await setEditor(page, ".graphiql-query-editor .graphiql-editor", "{ me { user { username } } }");
    await page.locator(".graphiql-execute-button").click();
    await page.locator(".graphiql-response", { hasText: username }).waitFor(WAIT);

    const path = join(ARTIFACTS, "graphiql.png");
    await page.screenshot({ path });
    expect(readFileSync(path).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(elsewhere).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  });
});
