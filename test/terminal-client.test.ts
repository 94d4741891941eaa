import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConversationKind } from "../gen/chat/v1/types_pb.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser, PASSWORD, uniqueName } from "./support/users.js";

const ROOT = resolve(import.meta.dirname, "..");
/** A private tmux server (its own socket, no config): the test never sees or touches anyone else's sessions. */
const TMUX_DIR = mkdtempSync(join(tmpdir(), "chat-terminal-tmux-"));
const WAIT_MS = 20_000;

function tmux(...args: string[]): string {
  return execFileSync("tmux", ["-S", join(TMUX_DIR, "socket"), "-f", "/dev/null", ...args], { encoding: "utf8" });
}

/**
 * The pane's command, then a line with its exit status: tmux here does not always notice a pane's
 * process has exited (its SIGCHLD can go unhandled until another child exits), the shell always does.
 */
const exitReported = (command: string) => `${command}; echo "[client exited with status $?]"`;

const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;

/** One terminal client in a tmux pane, driven by keystrokes and read off the screen. */
class Pane {
  /** "session:" names the session's pane exactly; a bare name may be matched against windows first. */
  private readonly target: string;

  constructor(readonly name: string) {
    this.target = `${name}:`;
  }

  /** Types text without pressing Enter. */
  type(text: string): void {
    tmux("send-keys", "-t", this.target, "-l", text);
  }

  enter(): void {
    tmux("send-keys", "-t", this.target, "Enter");
  }

  line(text: string): void {
    this.type(text);
    this.enter();
  }

  /** What the screen shows, scrollback included, wrapped lines joined. */
  screen(): string {
    return tmux("capture-pane", "-p", "-J", "-t", this.target, "-S", "-1000");
  }

  /** The input line at the bottom: its prompt is the client's status bar. */
  prompt(): string {
    return this.screen().trimEnd().split("\n").at(-1)!;
  }

  async waitFor(pattern: RegExp | string, read: () => string = () => this.screen()): Promise<string> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const text = read();
      if (typeof pattern === "string" ? text.includes(pattern) : pattern.test(text)) return text;
      if (Date.now() > deadline) throw new Error(`${this.name}'s screen never showed ${String(pattern)}; it shows:\n${this.screen()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  waitForPrompt(pattern: RegExp): Promise<string> {
    return this.waitFor(pattern, () => this.prompt());
  }
}

describe("terminal client in a real terminal", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    // A long typing life, so the indicator cannot expire on a slow machine before the screen is read.
    // A group limit of three, to run into it and see the server's words.
    server = await startServer({ env: { CHAT_TYPING_TTL_MS: "60000", CHAT_GROUP_MAX_MEMBERS: "3" } });
  });
  afterAll(async () => {
    try {
      tmux("kill-server");
    } catch {
      // Already gone: every pane had exited.
    }
    removeDir(TMUX_DIR);
    if (!server) return;
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  });

  it("two clients chat: messages, unread counts, ticks on the message line, typing and presence show on screen", async () => {
    const bobName = (await newUser(server.url, "bob")).session.user!.username;
    const aliceName = uniqueName("alice");
    const alice = new Pane("alice");
    const bob = new Pane("bob");
    // Alice runs the documented npx command, bob the bin itself; dead panes stay readable.
    tmux(
      ...["new-session", "-d", "-s", "alice", "-x", "160", "-y", "50", "-c", ROOT, exitReported(`npx --offline chat-terminal --url ${quote(server.url)}`)],
      ...[";", "set-option", "-g", "remain-on-exit", "on"],
      ...[";", "new-session", "-d", "-s", "bob", "-x", "160", "-y", "50", "-c", ROOT, exitReported(`${quote(process.execPath)} clients/terminal/bin.mjs --url ${quote(server.url)}`)],
    );
    await alice.waitFor("/help lists the commands");
    await bob.waitFor("/help lists the commands");

    alice.line("hello?");
    await alice.waitFor("not logged in: type /login <user> (or /signup <user>)");
    // A password typed on the command line still works, but is taken off the screen and out of the history.
    alice.line(`/signup ${aliceName} ${PASSWORD}`);
    bob.line(`/login ${bobName} ${PASSWORD}`);
    await alice.waitFor(`signed up as ${aliceName}`);
    await bob.waitFor(`logged in as ${bobName}`);
    await alice.waitFor(`next time type /signup ${aliceName} alone`);
    expect(alice.screen()).not.toContain(PASSWORD);
    expect(bob.screen()).not.toContain(PASSWORD);
    await bob.waitForPrompt(new RegExp(`^${bobName} ›$`));

    // Alice opens the conversation: bob, connected, shows as online in her status bar.
    alice.line(`/open ${bobName}`);
    await alice.waitFor(`── ${bobName} ──`);
    await alice.waitForPrompt(new RegExp(`^${bobName} · online ›$`));

    // Bob is elsewhere: a notification, an unread count in his inbox, and ✓✓ (delivered) after alice's line.
    alice.line("are you there?");
    await bob.waitFor(`● ${aliceName}: are you there?`);
    await alice.waitFor(/\d\d:\d\d you: are you there\? ✓✓ *$/m);
    bob.line("/inbox");
    await bob.waitFor(new RegExp(`1\\. ${aliceName}\\s+1 unread\\s+\\d\\d:\\d\\d\\s+${aliceName}: are you there\\?`));
    expect(alice.screen()).not.toMatch(/are you there\? ✓✓ read/);

    // Bob opens it from the inbox: the message is shown and read, and alice sees ✓✓.
    bob.line("/open 1");
    await bob.waitFor(new RegExp(`── ${aliceName} ──\\n\\d\\d:\\d\\d ${aliceName}: are you there\\?`));
    await bob.waitForPrompt(new RegExp(`^${aliceName} · online ›$`));
    await alice.waitFor(/\d\d:\d\d you: are you there\? ✓✓ read/);

    // Alice types: bob sees her typing; she sends: he sees the message and the indicator goes.
    alice.type("hello bob");
    await bob.waitForPrompt(new RegExp(`^${aliceName} · online · ${aliceName} is typing… ›$`));
    alice.enter();
    await bob.waitFor(new RegExp(`\\d\\d:\\d\\d ${aliceName}: hello bob`));
    await bob.waitForPrompt(new RegExp(`^${aliceName} · online ›$`));
    await alice.waitFor(/\d\d:\d\d you: hello bob ✓✓ read/);
    // The sent line replaces the typed one: the message is on screen once, as "you", and its receipts
    // are the tick on that line, not lines of their own.
    expect(alice.screen()).not.toContain("› hello bob");
    expect(alice.screen().match(/hello bob/g)).toHaveLength(1);
    expect(alice.screen()).not.toMatch(/read by|delivered to/);

    bob.line("hi alice");
    await alice.waitFor(new RegExp(`\\d\\d:\\d\\d ${bobName}: hi alice`));
    await bob.waitFor(/\d\d:\d\d you: hi alice ✓✓ read/);

    // Alice quits cleanly: bob's status bar turns to "last seen" at once.
    alice.line("/quit");
    await alice.waitFor("[client exited with status 0]");
    await bob.waitForPrompt(new RegExp(`^${aliceName} · last seen \\d\\d:\\d\\d ›$`));

    bob.line("/quit");
    await bob.waitFor("[client exited with status 0]");
  });

  it("hides the password, creates a group, adds people (with the server's limit), sends and saves files, with ticks on the line", async () => {
    const [bobClient, carolClient, daveClient] = await Promise.all([newUser(server.url, "bob"), newUser(server.url, "carol"), newUser(server.url, "dave")]);
    const [bobName, carolName, daveName] = [bobClient, carolClient, daveClient].map((client) => client.session.user!.username) as [string, string, string];
    const aliceName = uniqueName("alice");
    const files = join(TMUX_DIR, "files");
    mkdirSync(join(files, "saved"), { recursive: true });
    const notes = Buffer.from("Bring boots.\n".repeat(180));
    writeFileSync(join(files, "packing list.txt"), notes);
    const alice = new Pane("alice2");
    const bob = new Pane("bob2");
    tmux(
      ...["new-session", "-d", "-s", "alice2", "-x", "160", "-y", "50", "-c", files, exitReported(`${quote(process.execPath)} ${quote(join(ROOT, "clients/terminal/bin.mjs"))} --url ${quote(server.url)}`)],
      ...[";", "set-option", "-g", "remain-on-exit", "on"],
      ...[";", "new-session", "-d", "-s", "bob2", "-x", "160", "-y", "50", "-c", files, exitReported(`${quote(process.execPath)} ${quote(join(ROOT, "clients/terminal/bin.mjs"))} --url ${quote(server.url)}`)],
    );
    await alice.waitFor("/help lists the commands");
    await bob.waitFor("/help lists the commands");

    // Sign-up asks for the password twice, showing neither; a mismatch is refused.
    alice.line(`/signup ${aliceName}`);
    await alice.waitForPrompt(/^choose a password for .* \(not shown\):$/);
    alice.line(PASSWORD);
    await alice.waitForPrompt(/^the same password again:$/);
    alice.line("something else");
    await alice.waitFor(`the two passwords differ: type /signup ${aliceName} to try again`);
    alice.line(`/signup ${aliceName}`);
    await alice.waitForPrompt(/^choose a password/);
    alice.type(PASSWORD);
    // While typed, nothing of it shows.
    expect(alice.prompt()).toBe(`choose a password for ${aliceName} (not shown):`);
    alice.enter();
    await alice.waitForPrompt(/^the same password again:$/);
    alice.line(PASSWORD);
    await alice.waitFor(`signed up as ${aliceName}`);
    bob.line(`/login ${bobName}`);
    await bob.waitForPrompt(new RegExp(`^password for ${bobName} \\(not shown\\):$`));
    bob.line(PASSWORD);
    await bob.waitFor(`logged in as ${bobName}`);
    for (const pane of [alice, bob]) {
      expect(pane.screen()).not.toContain(PASSWORD);
      expect(pane.screen()).not.toContain("password for");
    }
    // Up brings back the last command, never the password.
    bob.type("\x1b[A");
    await bob.waitForPrompt(new RegExp(`› /login ${bobName}$`));
    tmux("send-keys", "-t", "bob2:", "C-u");

    // A group with two others: unknown people and the server's limit are explained.
    alice.line(`/group "Trip plans" ${bobName} nobody_${carolName}`);
    await alice.waitFor(`no user called "nobody_${carolName}": check the names`);
    alice.line(`/group "Trip plans" ${bobName} ${carolName.toUpperCase()}`);
    await alice.waitFor(`created the group "Trip plans" with `);
    await alice.waitFor("── Trip plans ──");
    await alice.waitFor(`· ${aliceName} created the group "Trip plans"`);
    await alice.waitForPrompt(/^Trip plans ›$/);
    await bob.waitFor(`● Trip plans · ${aliceName} created the group "Trip plans"`);
    alice.line(`/add ${daveName}`);
    await alice.waitFor("a group has at most 3 members");
    alice.line("/members");
    await alice.waitFor("Trip plans: 3 members");
    expect(alice.screen()).toMatch(new RegExp(`  ${aliceName} \\(you\\)  owner`));
    expect(alice.screen()).toMatch(new RegExp(`  ${carolName}  member`));

    // Bob opens it and alice writes: her line gets ✓ when stored, "✓✓ read" once bob and carol read it.
    bob.line("/open Trip plans");
    await bob.waitFor("── Trip plans ──");
    alice.line("who brings the tent?");
    await bob.waitFor(new RegExp(`\\d\\d:\\d\\d ${aliceName}: who brings the tent\\?`));
    await alice.waitFor(/\d\d:\d\d you: who brings the tent\? ✓/);
    expect(alice.screen()).not.toMatch(/tent\? ✓✓ read/);
    const groupId = (await carolClient.sync.getInbox({})).entries.find((entry) => entry.conversation!.kind === ConversationKind.GROUP)!.conversation!;
    await carolClient.sync.markRead({ conversationId: groupId.conversationId, seq: groupId.lastSeq });
    await alice.waitFor(/\d\d:\d\d you: who brings the tent\? ✓✓ read/);
    expect(alice.screen().match(/who brings the tent/g)).toHaveLength(1);

    // A file: alice attaches it with a caption, bob sees its number, name and size, and saves it.
    alice.line(`/attach "packing list.txt" for Saturday`);
    await alice.waitFor(/you: for Saturday \[#1 file: packing list\.txt, 2\.3 KB\]/);
    await bob.waitFor(new RegExp(`${aliceName}: for Saturday \\[#1 file: packing list\\.txt, 2\\.3 KB\\]`));
    bob.line("/save 1 saved");
    await bob.waitFor(`saved packing list.txt (2.3 KB) to ${join(files, "saved", "packing list.txt")}`);
    expect(readFileSync(join(files, "saved", "packing list.txt"))).toEqual(notes);
    bob.line("/save 1 saved");
    await bob.waitFor(`${join(files, "saved", "packing list.txt")} exists already: /save 1 <another path>`);
    bob.line("/save 7");
    await bob.waitFor("usage: /save <number> [path], the number of a file shown as [#number] (1-1)");
    alice.line("/attach missing.txt");
    await alice.waitFor(`no file at ${join(files, "missing.txt")}: check the path`);
    writeFileSync(join(files, "tool.exe"), "MZ");
    alice.line("/attach tool.exe");
    await alice.waitFor(/tool\.exe was not sent: content type "application\/octet-stream" is not accepted; use one of: image\/\*/);

    // Removing one makes room for another.
    alice.line(`/remove ${carolName}`);
    await alice.waitFor(`· ${aliceName} removed ${carolName}`);
    alice.line(`/add ${daveName}`);
    await alice.waitFor(`· ${aliceName} added ${daveName}`);
    await bob.waitFor(`· ${aliceName} added ${daveName}`);

    // Bob leaves; alice sees it.
    bob.line("/leave");
    await bob.waitFor(`you left "Trip plans"`);
    await alice.waitFor(`· ${bobName} left`);

    alice.line("/quit");
    bob.line("/quit");
    await alice.waitFor("[client exited with status 0]");
    await bob.waitFor("[client exited with status 0]");
  });
});
