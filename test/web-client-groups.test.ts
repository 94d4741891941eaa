import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser, Page, WebSocketRoute } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, newPage, signUp, WAIT, type Person } from "./support/browser.js";
import { graphqlData } from "./support/graphql-client.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser } from "./support/users.js";

const ROOT = resolve(import.meta.dirname, "..");
// .tmp/ is ignored by git; the screenshots stay there for a person to look at.
const ARTIFACTS = join(ROOT, ".tmp", "web-client-groups");
/**
 * A group limit small enough to run into and see the server's words for it; presence that notices a
 * vanished browser within seconds (a closed page does not always close its socket cleanly), so the
 * wait for "last seen" is about the client, not the server's timeout.
 */
const SERVER_ENV = { CHAT_GROUP_MAX_MEMBERS: "3", CHAT_HEARTBEAT_INTERVAL_MS: "2000", CHAT_PRESENCE_TIMEOUT_MS: "6000" };
const GROUP_MAX_MEMBERS = Number(SERVER_ENV.CHAT_GROUP_MAX_MEMBERS);

const inboxRow = (person: Person, name: string) => person.page.locator(".inbox-item", { hasText: name });
const messageTexts = (person: Person) => person.page.locator("#messages .message .text").allTextContents();

/**
 * The inbox as laid out on screen: every row, its name, time and preview inside the sidebar, nothing
 * wider than its box except a preview cut with an ellipsis. Returns the rows whose preview is cut.
 */
async function expectInboxFits(page: Page): Promise<string[]> {
  const report = await page.evaluate(() => {
    const box = (element: Element) => element.getBoundingClientRect();
    const sidebar = box(document.querySelector(".sidebar")!);
    const problems: string[] = [];
    const cut: string[] = [];
    for (const row of document.querySelectorAll<HTMLElement>(".inbox-item")) {
      const name = row.querySelector(".inbox-name")!.textContent!;
      const rowBox = box(row);
      if (rowBox.left < sidebar.left - 0.5 || rowBox.right > sidebar.right + 0.5) problems.push(`${name}: row ${rowBox.left}-${rowBox.right} outside the sidebar ${sidebar.left}-${sidebar.right}`);
      if (row.scrollWidth > row.clientWidth + 1) problems.push(`${name}: row content ${row.scrollWidth}px wide in ${row.clientWidth}px`);
      for (const part of row.querySelectorAll<HTMLElement>(".inbox-time, .badge, .inbox-name, .inbox-preview")) {
        const partBox = box(part);
        if (partBox.right > rowBox.right + 0.5 || partBox.left < rowBox.left - 0.5) problems.push(`${name}: ${part.className} at ${partBox.left}-${partBox.right} outside its row ${rowBox.left}-${rowBox.right}`);
      }
      const preview = row.querySelector<HTMLElement>(".inbox-preview")!;
      if (preview.scrollWidth > preview.clientWidth) {
        if (getComputedStyle(preview).textOverflow !== "ellipsis") problems.push(`${name}: the preview overflows without an ellipsis`);
        cut.push(name);
      }
    }
    return { problems, cut };
  });
  expect(report.problems).toEqual([]);
  return report.cut;
}

async function screenshot(person: Person, name: string): Promise<void> {
  const path = join(ARTIFACTS, `${name}.png`);
  await person.page.screenshot({ path });
  const png = readFileSync(path);
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
}

describe("web client: groups, attachments, the outbox (headless Chromium)", () => {
  let server: ServerProcess;
  let browser: Browser;
  const problems: string[] = [];
  let alice: Person;
  let bob: Person;
  let carol: Person;
  const group = "Weekend plans";

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer({ env: SERVER_ENV });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.kill("SIGTERM");
    if (server) removeDir(server.dataDir);
  });

  it("signs up with capitals as the lower-cased name, shows an empty inbox at the top, and creates a group with two others", async () => {
    const pages = await Promise.all([1, 2, 3].map(() => newPage(browser, problems)));
    // Alice types her name with capitals: the server stores it lower-cased, and she is in.
    [alice, bob, carol] = await Promise.all([
      signUp(pages[0]!, server.url, "alice", (name) => name.replace("alice", "Alice")),
      signUp(pages[1]!, server.url, "bob"),
      signUp(pages[2]!, server.url, "carol"),
    ]);
    expect(await alice.page.locator("#me").getAttribute("title")).toBe(`@${alice.username}`);

    // Nothing yet: the sidebar says so right under its forms, not at the bottom of the column.
    await carol.page.locator("#inbox-empty").waitFor(WAIT);
    const [empty, sidebar] = await Promise.all([carol.page.locator("#inbox-empty").boundingBox(), carol.page.locator(".sidebar").boundingBox()]);
    expect(empty!.y - sidebar!.y).toBeLessThan(160);
    await screenshot(carol, "carol-empty-inbox");

    // The server's refusals are shown as it words them: an empty name, then an unknown user.
    await alice.page.getByRole("button", { name: "+ New group" }).click();
    const dialog = alice.page.getByRole("dialog", { name: "New group" });
    await dialog.getByRole("textbox", { name: "Members" }).fill(`${bob.username}, ${carol.username}`);
    await dialog.getByRole("button", { name: "Create group" }).click();
    await dialog.locator("#group-error", { hasText: "A group name is 1-100 characters" }).waitFor(WAIT);
    await dialog.getByRole("textbox", { name: "Members" }).fill(`${bob.username}, nobody_${carol.username}`);
    await dialog.getByRole("textbox", { name: "Group name" }).fill(group);
    await dialog.getByRole("button", { name: "Create group" }).click();
    await dialog.locator("#group-error", { hasText: `There is no user named “nobody_${carol.username}”` }).waitFor(WAIT);
    // Capitals and an @ in a member's name are fine too.
    await dialog.getByRole("textbox", { name: "Members" }).fill(`@${bob.username.toUpperCase()} ${carol.username}`);
    await dialog.getByRole("button", { name: "Create group" }).click();
    await dialog.waitFor({ ...WAIT, state: "hidden" });
    await alice.page.locator("#thread-title", { hasText: group }).waitFor(WAIT);
    await alice.page.locator("#thread-status", { hasText: "3 members" }).waitFor(WAIT);
    expect(alice.page.url()).toMatch(/#c\/g_/);

    // Bob and Carol, who did nothing, find the group in their inbox, live.
    for (const person of [bob, carol]) {
      await inboxRow(person, group).waitFor(WAIT);
      await inboxRow(person, group).click();
      await person.page.locator("#messages .system", { hasText: `${alice.displayName} created the group “${group}”` }).waitFor(WAIT);
    }

    // The group is full at three: adding a fourth shows the server's limit.
    const dave = await newUser(server.url, "dave");
    await alice.page.getByRole("button", { name: /^Members/ }).click();
    const panel = alice.page.getByRole("complementary", { name: "Group members" });
    await panel.locator(".member", { hasText: bob.displayName }).locator(".member-role", { hasText: "member" }).waitFor(WAIT);
    await panel.locator(".member", { hasText: "(you)" }).locator(".member-role", { hasText: "owner" }).waitFor(WAIT);
    await panel.getByRole("textbox", { name: /Add people/ }).fill(dave.session.user!.username);
    await panel.getByRole("button", { name: "Add" }).click();
    await panel.locator("#members-error", { hasText: `A group has at most ${GROUP_MAX_MEMBERS} members` }).waitFor(WAIT);
    expect(await panel.locator(".member").count()).toBe(3);
    await screenshot(alice, "alice-group-full");
    // Renaming: too long is refused in the server's words; a good name reaches everyone.
    await panel.getByRole("textbox", { name: "Rename the group" }).fill("x".repeat(101));
    await panel.getByRole("button", { name: "Rename" }).click();
    await panel.locator("#members-error", { hasText: "A group name is 1-100 characters" }).waitFor(WAIT);
    await panel.getByRole("textbox", { name: "Rename the group" }).fill(`${group}!`);
    await panel.getByRole("button", { name: "Rename" }).click();
    await alice.page.locator("#thread-title", { hasText: `${group}!` }).waitFor(WAIT);
    await bob.page.locator("#messages .system", { hasText: `${alice.displayName} renamed the group to “${group}!”` }).waitFor(WAIT);
    await bob.page.locator("#thread-title", { hasText: `${group}!` }).waitFor(WAIT);
    await panel.getByRole("textbox", { name: "Rename the group" }).fill(group);
    await panel.getByRole("button", { name: "Rename" }).click();
    await inboxRow(carol, group).locator(".inbox-name", { hasText: new RegExp(`^${group}$`) }).waitFor(WAIT);
    await alice.page.keyboard.press("Escape");
    await panel.waitFor({ ...WAIT, state: "hidden" });
  });

  it("exchanges an image and a file: the image is previewed, the file downloads with its name and size", async () => {
    // A real PNG: a corner of Alice's own screen.
    const png = await alice.page.screenshot({ clip: { x: 0, y: 0, width: 120, height: 80 } });
    await alice.page.locator("#file-input").setInputFiles({ name: "corner.png", mimeType: "image/png", buffer: png });
    await alice.page.locator("#draft-files", { hasText: "corner.png" }).waitFor(WAIT);
    await alice.page.getByRole("textbox", { name: "Message" }).fill("The view from here");
    await alice.page.getByRole("button", { name: "Send" }).click();

    for (const person of [bob, carol]) {
      const image = person.page.locator(".message.theirs", { hasText: "The view from here" }).locator("img.attachment-image");
      await image.waitFor(WAIT);
      await person.page.waitForFunction((element) => (element as HTMLImageElement).naturalWidth === 120, await image.elementHandle(), WAIT);
      expect(await image.getAttribute("alt")).toBe("corner.png");
    }
    await alice.page.locator(".message.mine", { hasText: "The view from here" }).locator("img.attachment-image").waitFor(WAIT);

    // Bob sends a file with no text: others see its name and size, and the link gives its bytes.
    const plan = Buffer.from("Saturday: hike.\n".repeat(150));
    await bob.page.locator("#file-input").setInputFiles({ name: "plan.txt", mimeType: "text/plain", buffer: plan });
    await bob.page.getByRole("button", { name: "Send" }).click();
    for (const person of [alice, carol]) {
      const link = person.page.getByRole("link", { name: "Download plan.txt, 2.3 KB" });
      await link.waitFor(WAIT);
      await person.page.waitForFunction((element) => (element as HTMLAnchorElement).href !== "", await link.elementHandle(), WAIT);
      const fetched = await person.page.evaluate(async (href) => {
        const response = await fetch(href);
        return { status: response.status, type: response.headers.get("content-type"), text: await response.text() };
      }, (await link.getAttribute("href"))!);
      expect(fetched).toEqual({ status: 200, type: "text/plain", text: plan.toString() });
    }
    await inboxRow(carol, group).locator(".inbox-preview", { hasText: `${bob.displayName}: plan.txt` }).waitFor(WAIT);

    // A file dropped on the conversation waits above the composer, and can be taken off again.
    await carol.page.evaluate(() => {
      const transfer = new DataTransfer();
      transfer.items.add(new File(["draft"], "dropped.txt", { type: "text/plain" }));
      document.getElementById("thread")!.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
    });
    await carol.page.locator("#draft-files", { hasText: "dropped.txt" }).waitFor(WAIT);
    await carol.page.getByRole("button", { name: "Remove dropped.txt" }).click();
    await carol.page.locator("#draft-files").waitFor({ ...WAIT, state: "hidden" });

    // A type the server does not take: the message stays, marked, with the server's reason.
    await bob.page.locator("#file-input").setInputFiles({ name: "tool.exe", mimeType: "application/x-msdownload", buffer: Buffer.from("MZ") });
    await bob.page.getByRole("button", { name: "Send" }).click();
    await bob.page.locator(".message.failed .send-error", { hasText: /Content type "application\/x-msdownload" is not accepted; use one of: image\/\*/ }).waitFor(WAIT);
    await bob.page.getByRole("button", { name: "Delete this unsent message" }).click();
    await bob.page.locator(".message.failed").waitFor({ ...WAIT, state: "detached" });
    await screenshot(carol, "carol-attachments");
  });

  it("keeps messages written offline, sends each once and in order on reconnect, though an answer is lost", async () => {
    // Carol's WebSockets run through the test, so it can cut them and keep new ones out.
    const network = { blocked: false, current: undefined as WebSocketRoute | undefined };
    await carol.page.routeWebSocket(/\/graphql$/, (route) => {
      if (network.blocked) return void route.close({ code: 1011, reason: "test: offline" });
      network.current = route;
      route.connectToServer();
    });
    await carol.page.reload();
    await carol.page.locator("#thread-title", { hasText: group }).waitFor(WAIT);
    await carol.page.locator("#connection.online").waitFor({ ...WAIT, state: "attached" });

    // Offline: no HTTP, no socket.
    network.blocked = true;
    await carol.context.setOffline(true);
    await network.current!.close({ code: 1011, reason: "test: offline" });
    await carol.page.locator("#connection.offline").waitFor(WAIT);
    const written = ["Offline one", "Offline two", "Offline three"];
    for (const text of written) {
      await carol.page.getByRole("textbox", { name: "Message" }).fill(text);
      await carol.page.getByRole("textbox", { name: "Message" }).press("Enter");
    }
    // Shown at once, in order, as waiting.
    await carol.page.locator(".message.pending.waiting", { hasText: "Offline one" }).waitFor(WAIT);
    expect(await carol.page.locator(".message.pending .text").allTextContents()).toEqual(written);
    await carol.page.locator(".message.pending", { hasText: "Offline one" }).getByRole("img", { name: /Waiting for the connection|Sending/ }).waitFor(WAIT);
    await inboxRow(carol, group).locator(".inbox-preview", { hasText: "You: Offline three" }).waitFor(WAIT);
    await screenshot(carol, "carol-offline-pending");
    expect((await messageTexts(alice)).filter((text) => text.startsWith("Offline"))).toEqual([]);

    // The network is back, but Carol's feed stays down for now, so only the sends' answers can
    // settle her messages; the first send reaches the server and its answer is lost on the way back.
    const sent: string[] = [];
    let dropped = 0;
    await carol.page.route("**/graphql", async (route) => {
      const body = route.request().postDataJSON() as { query?: string; variables?: { input?: { clientMsgId?: string; text?: string } } } | null;
      if (!body?.query?.includes("sendMessage")) return route.continue();
      sent.push(`${body.variables!.input!.text} ${body.variables!.input!.clientMsgId}`);
      if (dropped++ > 0) return route.continue();
      await route.fetch();
      await route.abort("connectionreset");
    });
    await carol.context.setOffline(false);

    for (const person of [alice, bob]) {
      await person.page.locator(".message.theirs", { hasText: "Offline three" }).waitFor(WAIT);
      expect((await messageTexts(person)).filter((text) => text.startsWith("Offline"))).toEqual(written);
    }
    await carol.page.locator(".message.pending").first().waitFor({ ...WAIT, state: "detached" });
    // The lost one was sent again with the same clientMsgId: one key per message, the first twice.
    expect(sent.map((line) => line.split(" ").slice(0, 2).join(" "))).toEqual(["Offline one", "Offline one", "Offline two", "Offline three"]);
    const ids = sent.map((line) => line.split(" ").at(-1));
    expect(ids[0]).toBe(ids[1]);
    expect(new Set(ids).size).toBe(3);

    // Her feed back too, what it brings is what she already shows: nothing twice.
    network.blocked = false;
    await carol.page.locator("#connection.online").waitFor({ ...WAIT, state: "attached" });
    await alice.page.getByRole("textbox", { name: "Message" }).fill("Welcome back");
    await alice.page.getByRole("textbox", { name: "Message" }).press("Enter");
    await carol.page.locator(".message.theirs", { hasText: "Welcome back" }).waitFor(WAIT);
    expect((await messageTexts(carol)).filter((text) => text.startsWith("Offline"))).toEqual(written);

    // The server stored each once, in the order written.
    const { accessToken } = JSON.parse((await alice.page.evaluate(() => localStorage.getItem("chat.session")))!) as { accessToken: string };
    const groupId = decodeURIComponent(alice.page.url().split("#c/")[1]!);
    const stored = await graphqlData<{ messages: { nodes: { text: string; clientMsgId: string; seq: string }[] } }>(
      server.url,
      "query($c: ID!) { messages(conversationId: $c, last: 200) { nodes { text clientMsgId seq } } }",
      { c: groupId },
      accessToken,
    );
    const offline = stored.messages.nodes.filter((m) => m.text.startsWith("Offline"));
    expect(offline.map((m) => m.text)).toEqual(written);
    expect(offline.map((m) => m.clientMsgId)).toEqual([...new Set(ids)]);
    await carol.page.unroute("**/graphql");
    await screenshot(carol, "carol-back-online");
  });

  it("lays the inbox out without overflow, restores the open conversation after a reload, and is usable from the keyboard", async () => {
    // A direct conversation too, and a preview far longer than the sidebar.
    await bob.page.getByLabel("Start a chat with username").fill(alice.username);
    await bob.page.getByRole("button", { name: "Start" }).click();
    await bob.page.locator("#thread-title", { hasText: alice.displayName }).waitFor(WAIT);
    const long = `A very long message that goes on ${"and on ".repeat(40)}until the end`;
    await bob.page.getByRole("textbox", { name: "Message" }).fill(long);
    await bob.page.getByRole("textbox", { name: "Message" }).press("Enter");
    await inboxRow(alice, bob.displayName).locator(".badge", { hasText: /^1$/ }).waitFor(WAIT);

    expect(await expectInboxFits(alice.page)).toContain(bob.displayName);
    await screenshot(alice, "alice-inbox");
    // The same on a phone-sized screen.
    await alice.page.setViewportSize({ width: 380, height: 700 });
    await alice.page.getByRole("button", { name: "Back to conversations" }).click();
    expect(await expectInboxFits(alice.page)).toContain(bob.displayName);
    await screenshot(alice, "alice-inbox-narrow");
    await alice.page.setViewportSize({ width: 1000, height: 700 });

    // Screen readers: the unread count is words, not only a coloured badge.
    await inboxRow(alice, bob.displayName).locator(".sr-only", { hasText: ", 1 unread" }).waitFor({ ...WAIT, state: "attached" });

    // Keyboard only: arrows move through the list, Enter opens, Escape goes back to the row.
    await inboxRow(alice, group).focus();
    await alice.page.keyboard.press("Home");
    expect(await alice.page.evaluate(() => document.activeElement?.textContent)).toContain(bob.displayName);
    await alice.page.keyboard.press("ArrowDown");
    expect(await alice.page.evaluate(() => document.activeElement?.textContent)).toContain(group);
    await alice.page.keyboard.press("ArrowUp");
    await alice.page.keyboard.press("Enter");
    await alice.page.locator("#thread-title", { hasText: bob.displayName }).waitFor(WAIT);
    // Read once it is on screen: leaving before the history shows must not mark it read.
    await alice.page.locator(".message.theirs", { hasText: "A very long message" }).waitFor(WAIT);
    expect(await alice.page.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe("Message");
    await alice.page.keyboard.press("Alt+ArrowDown");
    await alice.page.locator("#thread-title", { hasText: group }).waitFor(WAIT);
    await alice.page.keyboard.press("Escape");
    await alice.page.locator("#thread").waitFor({ ...WAIT, state: "hidden" });
    expect(await alice.page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.id)).toMatch(/^g_/);

    // Alice has read Bob's message: his tick says so in words too.
    await bob.page.locator(".message.mine").last().getByRole("img", { name: "Read" }).waitFor(WAIT);

    // Bob reloads with the group open: it is open again, history, files and all.
    await inboxRow(bob, group).click();
    await bob.page.locator(".message", { hasText: "Offline three" }).waitFor(WAIT);
    await bob.page.reload();
    await bob.page.locator("#thread-title", { hasText: group }).waitFor(WAIT);
    await bob.page.locator(".message.theirs", { hasText: "Offline three" }).waitFor(WAIT);
    await bob.page.getByRole("link", { name: "Download plan.txt, 2.3 KB" }).waitFor(WAIT);
    // One day's messages under one heading.
    expect(await bob.page.locator("#messages .day").allTextContents()).toEqual(["Today"]);
    // Other days, through the page's own module (a string, so the test runner leaves its import alone).
    const labels = (await bob.page.evaluate(`import("/format.js").then(({ dayLabel }) => {
      const now = new Date();
      return [now, new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1, 12), new Date(2001, 0, 2, 12)].map((date) => dayLabel(date.getTime()));
    })`)) as string[];
    expect(labels.slice(0, 2)).toEqual(["Today", "Yesterday"]);
    expect(labels[2]).toMatch(/2001/);

    // Alice removes Carol: Carol keeps the history, and can no longer write.
    await inboxRow(alice, group).click();
    await alice.page.getByRole("button", { name: /^Members/ }).click();
    await alice.page.getByRole("button", { name: `Remove ${carol.displayName} from the group` }).click();
    await alice.page.locator("#thread-status", { hasText: "2 members" }).waitFor(WAIT);
    await carol.page.locator("#thread-status", { hasText: "You are no longer a member" }).waitFor(WAIT);
    expect(await carol.page.getByRole("textbox", { name: "Message" }).isDisabled()).toBe(true);
    await carol.page.locator(".message.theirs", { hasText: "The view from here" }).waitFor(WAIT);
    await alice.page.keyboard.press("Escape");
  });

  it("keeps a peer's last seen time across a server restart", async () => {
    // Bob leaves; Alice, in their direct conversation, sees when he was last there.
    await inboxRow(alice, bob.displayName).click();
    await alice.page.locator("#thread-status", { hasText: /^online$/ }).waitFor(WAIT);
    await bob.context.close();
    await alice.page.locator("#thread-status", { hasText: /^last seen just now$/ }).waitFor(WAIT);

    // The server restarts on the same port and data: it no longer knows, the page still does.
    const { port, dataDir } = server;
    await server.kill("SIGTERM");
    server = await startServer({ port, dataDir, env: SERVER_ENV });
    const { accessToken } = JSON.parse((await alice.page.evaluate(() => localStorage.getItem("chat.session")))!) as { accessToken: string };
    const bobId = (await graphqlData<{ users: { nodes: { id: string }[] } }>(server.url, "query($n: [String!]) { users(usernames: $n) { nodes { id: userId } } }", { n: [bob.username] }, accessToken)).users.nodes[0]!.id;
    const presence = await graphqlData<{ presence: { status: string; lastSeen: string | null }[] }>(server.url, "query($u: [ID!]!) { presence(userIds: $u) { status lastSeen } }", { u: [bobId] }, accessToken);
    expect(presence.presence, "the embedded presence keeps last seen in memory: after a restart the server has none to give").toEqual([{ status: "OFFLINE", lastSeen: null }]);
    await alice.page.reload();
    await alice.page.locator("#thread-title", { hasText: bob.displayName }).waitFor(WAIT);
    await alice.page.locator("#thread-status", { hasText: /^last seen (just now|1 min ago)$/ }).waitFor(WAIT);
    await screenshot(alice, "alice-last-seen-after-restart");
    expect(problems.filter((problem) => !/ERR_INTERNET_DISCONNECTED|ERR_CONNECTION_RESET|ERR_CONNECTION_REFUSED|WebSocket|Failed to load resource/.test(problem))).toEqual([]);
  });
});
