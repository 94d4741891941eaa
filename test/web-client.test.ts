import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser, Page, WebSocketRoute } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { launchChromium, signUp, WAIT, type Person } from "./support/browser.js";
import { graphqlData } from "./support/graphql-client.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { PASSWORD } from "./support/users.js";

const ROOT = resolve(import.meta.dirname, "..");
// .tmp/ is ignored by git; the screenshots stay there for a person to look at.
const ARTIFACTS = join(ROOT, ".tmp", "web-client");

const inboxRow = (person: Person, name: string) => person.page.locator(".inbox-item", { hasText: name });
const message = (person: Person, side: "mine" | "theirs", text: string) => person.page.locator(`.message.${side}`, { has: person.page.locator(".text", { hasText: text }) });
const typingText = (page: Page) => page.evaluate(() => document.getElementById("typing")!.textContent);

describe("web client (headless Chromium)", () => {
  let server: ServerProcess;
  let browser: Browser;
  let alice: Person;
  let bob: Person;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer();
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.kill("SIGTERM");
    if (server) removeDir(server.dataDir);
  });

  it("two people chat: live messages, unread badge, presence, typing, read ticks, text shown as text", async () => {
    const [alicePage, bobPage] = await Promise.all([1, 2].map(async () => (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage()));
    const problems: string[] = [];
    for (const page of [alicePage!, bobPage!]) {
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      page.on("console", (entry) => entry.type() === "error" && problems.push(`console: ${entry.text()}`));
    }
    [alice, bob] = await Promise.all([signUp(alicePage!, server.url, "alice"), signUp(bobPage!, server.url, "bob")]);

    // Alice starts a chat with Bob by username; the header shows him, and that he is online (his page is connected).
    await alice.page.getByLabel("Start a chat with username").fill(bob.username);
    await alice.page.getByRole("button", { name: "Start" }).click();
    await alice.page.locator("#thread-title", { hasText: bob.displayName }).waitFor(WAIT);
    await alice.page.locator("#thread-status", { hasText: /^online$/ }).waitFor(WAIT);

    // Markup in a message is text, on both sides.
    const hello = "Hello Bob <b>not bold</b> <img src=x>";
    await alice.page.getByRole("textbox", { name: "Message" }).fill(hello);
    await alice.page.getByRole("textbox", { name: "Message" }).press("Enter");
    await message(alice, "mine", hello).locator(".tick.sent", { hasText: /^✓$/ }).waitFor(WAIT);

    // Bob, with no conversation open, sees it arrive live in his inbox with an unread badge.
    await inboxRow(bob, alice.displayName).locator(".badge", { hasText: /^1$/ }).waitFor(WAIT);
    await inboxRow(bob, alice.displayName).locator(".inbox-preview", { hasText: hello }).waitFor(WAIT);
    expect(await bob.page.title()).toBe("(1) Chat");

    // Bob opens it: he reads the message, his badge goes, and Alice's tick turns into ✓✓.
    await inboxRow(bob, alice.displayName).click();
    await message(bob, "theirs", hello).waitFor(WAIT);
    expect(await message(bob, "theirs", hello).locator(".text").textContent()).toBe(hello);
    expect(await bob.page.locator("#messages b, #messages img").count()).toBe(0);
    await bob.page.locator("#thread-status", { hasText: /^online$/ }).waitFor(WAIT);
    await message(alice, "mine", hello).locator(".tick.read", { hasText: /^✓✓$/ }).waitFor(WAIT);
    await inboxRow(bob, alice.displayName).locator(".badge").waitFor({ ...WAIT, state: "detached" });

    // Bob types: Alice sees it.
    await bob.page.getByRole("textbox", { name: "Message" }).pressSequentially("Hi Alice", { delay: 20 });
    await alice.page.locator("#typing", { hasText: `${bob.displayName} is typing…` }).waitFor(WAIT);
    await alice.page.screenshot({ path: join(ARTIFACTS, "alice-sees-typing.png") });

    // Bob sends: Alice sees the reply live, the typing line goes, and she reads it while it is on her screen.
    await bob.page.getByRole("textbox", { name: "Message" }).press("Enter");
    await message(alice, "theirs", "Hi Alice").waitFor(WAIT);
    await alice.page.waitForFunction(() => document.getElementById("typing")!.textContent === "", undefined, WAIT);
    await message(bob, "mine", "Hi Alice").locator(".tick.read", { hasText: /^✓✓$/ }).waitFor(WAIT);
    expect(await bob.page.getByRole("textbox", { name: "Message" }).inputValue()).toBe("");

    // Both inboxes hold the one conversation, latest message first.
    await inboxRow(alice, bob.displayName).locator(".inbox-preview", { hasText: "Hi Alice" }).waitFor(WAIT);
    await inboxRow(bob, alice.displayName).locator(".inbox-preview", { hasText: "You: Hi Alice" }).waitFor(WAIT);
    expect(await alice.page.locator(".inbox-item").count()).toBe(1);
    expect(await typingText(bob.page)).toBe("");

    const shots = { alice: join(ARTIFACTS, "alice.png"), bob: join(ARTIFACTS, "bob.png") };
    await alice.page.screenshot({ path: shots.alice });
    await bob.page.screenshot({ path: shots.bob });
    for (const path of [...Object.values(shots), join(ARTIFACTS, "alice-sees-typing.png")]) {
      const png = readFileSync(path);
      expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      expect(png.length).toBeGreaterThan(10_000);
    }
    expect(problems).toEqual([]);
  });

  /** Bob's WebSockets run through this: the test can cut them, keep new ones out, and see or drop the feed's READY. */
  const network = { blocked: false, dropReady: false, readies: 0, current: undefined as WebSocketRoute | undefined };
  const sendAs = async (person: Person, text: string) => {
    await person.page.getByRole("textbox", { name: "Message" }).fill(text);
    await person.page.getByRole("textbox", { name: "Message" }).press("Enter");
    await message(person, "mine", text).locator(".tick").filter({ hasNotText: "…" }).waitFor(WAIT);
  };
  const cutBob = async () => {
    network.blocked = true;
    await network.current!.close({ code: 1011, reason: "test: network down" });
    await bob.page.locator("#connection.offline").waitFor(WAIT);
  };
  const away = (text: string) => bob.page.locator(".message .text", { hasText: text });

  it("renews a refused access token, and after losing its connection resumes the feed from its cursors", async () => {
    await bob.page.routeWebSocket(/\/graphql$/, (route) => {
      if (network.blocked) {
        void route.close({ code: 1011, reason: "test: network down" });
        return;
      }
      network.current = route;
      const server = route.connectToServer();
      server.onMessage((frame) => {
        if (String(frame).includes(`"kind":"READY"`)) {
          if (network.dropReady) return;
          network.readies++;
        }
        route.send(frame);
      });
    });

    // A token the server refuses (as an expired one is): the client trades its refresh token and carries on.
    const stored = await bob.page.evaluate(() => localStorage.getItem("chat.session"));
    const session = JSON.parse(stored!) as { accessToken: string; refreshToken: string };
    await bob.page.evaluate((value) => localStorage.setItem("chat.session", value), JSON.stringify({ ...session, accessToken: "not-a-valid-token" }));
    await bob.page.reload();
    await inboxRow(bob, alice.displayName).locator(".inbox-preview", { hasText: "You: Hi Alice" }).waitFor(WAIT);
    const renewed = JSON.parse((await bob.page.evaluate(() => localStorage.getItem("chat.session")))!) as { accessToken: string; refreshToken: string };
    expect(renewed.accessToken).not.toBe("not-a-valid-token");
    expect(renewed.refreshToken).not.toBe(session.refreshToken);
    // The feed has started (its READY gave Bob his cursors).
    await vi.waitFor(() => expect(network.readies).toBeGreaterThan(0), WAIT);

    // Bob has the conversation open (its history loaded) when his connection drops and stays down
    // while Alice writes twice. Nothing reloads the history: only the feed can bring those messages.
    await inboxRow(bob, alice.displayName).click();
    await message(bob, "mine", "Hi Alice").waitFor(WAIT);
    await cutBob();
    await sendAs(alice, "While you were away 1");
    await sendAs(alice, "While you were away 2");
    expect(await away("While you were away").count()).toBe(0);

    // Back online: the feed resumes from Bob's cursors, so he gets both, once each, and reads them.
    network.blocked = false;
    await message(bob, "theirs", "While you were away 2").waitFor(WAIT);
    expect(await away("While you were away").allTextContents()).toEqual(["While you were away 1", "While you were away 2"]);
    await message(alice, "mine", "While you were away 2").locator(".tick.read").waitFor(WAIT);
    await bob.page.screenshot({ path: join(ARTIFACTS, "bob-resumed.png") });
  });

  it("misses nothing when the connection drops before the feed's first READY", async () => {
    // The page starts over; its feed's READY is held back, so it never gets cursors to resume from.
    network.dropReady = true;
    await bob.page.reload();
    await inboxRow(bob, alice.displayName).click();
    await message(bob, "theirs", "While you were away 2").waitFor(WAIT);
    await cutBob();
    await sendAs(alice, "Before the feed was ready");
    expect(await away("Before the feed was ready").count()).toBe(0);

    // Reconnected, the feed starts live from its (first) READY; the open conversation is caught up from history.
    network.dropReady = false;
    network.blocked = false;
    await message(bob, "theirs", "Before the feed was ready").waitFor(WAIT);
    expect(await away("Before the feed was ready").count()).toBe(1);
    await message(alice, "mine", "Before the feed was ready").locator(".tick.read").waitFor(WAIT);
  });

  it("logs in on another device, scrolls back through history, and logs out", async () => {
    const { accessToken } = JSON.parse((await bob.page.evaluate(() => localStorage.getItem("chat.session")))!) as { accessToken: string };
    const [conversation] = (await graphqlData<{ inbox: { nodes: { conversation: { id: string; lastSeq: string } }[] } }>(server.url, "{ inbox { nodes { conversation { id: conversationId lastSeq } } } }", {}, accessToken)).inbox.nodes;
    const total = Number(conversation!.conversation.lastSeq) + 60;
    const send = (i: number) =>
      graphqlData(server.url, `mutation($c: ID!, $id: String!, $t: String!) { sendMessage(input: { conversationId: $c, clientMsgId: $id, text: $t }) { duplicate } }`, { c: conversation!.conversation.id, id: `paging-${i}-${alice.username}`, t: `Numbered ${i}` }, accessToken);
    for (let batch = 0; batch < 6; batch++) await Promise.all(Array.from({ length: 10 }, (_, i) => send(batch * 10 + i + 1)));

    const page = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage();
    const laptop: Person = { ...alice, page, context: page.context() };
    await page.goto(server.url);
    await page.getByLabel("Username", { exact: true }).fill(alice.username);
    await page.getByLabel("Password", { exact: true }).fill("not the password");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.locator("#login-error", { hasText: "Wrong username or password." }).waitFor(WAIT);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();

    // The newest page of history first (50), then the rest on request: the earlier messages and 60 numbered ones.
    await inboxRow(laptop, bob.displayName).click();
    await message(laptop, "theirs", "Numbered 60").waitFor(WAIT);
    expect(await page.locator("#messages > li[data-seq]").count()).toBe(50);
    // Scrolling up to the top brings the rest (the button does the same for the keyboard).
    await page.getByRole("button", { name: "Load older messages" }).waitFor(WAIT);
    await page.locator("#scroller").evaluate((scroller) => (scroller.scrollTop = 0));
    await message(laptop, "mine", "Hello Bob").waitFor(WAIT);
    expect(await page.locator("#messages > li[data-seq]").count()).toBe(total);
    await page.getByRole("button", { name: "Load older messages" }).waitFor({ ...WAIT, state: "hidden" });
    const seqs = await page.locator("#messages > li[data-seq]").evaluateAll((items) => items.map((item) => Number((item as HTMLElement).dataset.seq)));
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i + 1));

    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("button", { name: "Log in" }).waitFor(WAIT);
    expect(await page.evaluate(() => localStorage.getItem("chat.session"))).toBeNull();
    await page.context().close();
  }, 120_000);
});
