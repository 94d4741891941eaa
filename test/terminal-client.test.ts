import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
    server = await startServer({ env: { CHAT_TYPING_TTL_MS: "60000" } });
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

  it("two clients chat: messages, unread counts, ✓/✓✓ receipts, typing and presence show on screen", async () => {
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
    await alice.waitFor("not logged in: type /login <user> <password>");
    alice.line(`/signup ${aliceName} ${PASSWORD}`);
    bob.line(`/login ${bobName} ${PASSWORD}`);
    await alice.waitFor(`signed up as ${aliceName}`);
    await bob.waitFor(`logged in as ${bobName}`);
    await bob.waitForPrompt(new RegExp(`^${bobName} ›$`));

    // Alice opens the conversation: bob, connected, shows as online in her status bar.
    alice.line(`/open ${bobName}`);
    await alice.waitFor(`── ${bobName} ──`);
    await alice.waitForPrompt(new RegExp(`^${bobName} · online ›$`));

    // Bob is elsewhere: a notification, an unread count in his inbox, and a ✓ on alice's side.
    alice.line("are you there?");
    await bob.waitFor(`● ${aliceName}: are you there?`);
    await alice.waitFor(`✓ delivered to ${bobName}: "are you there?"`);
    bob.line("/inbox");
    await bob.waitFor(new RegExp(`1\\. ${aliceName}\\s+1 unread\\s+\\d\\d:\\d\\d\\s+${aliceName}: are you there\\?`));
    expect(alice.screen()).not.toContain(`✓✓ read by ${bobName}`);

    // Bob opens it from the inbox: the message is shown and read, and alice sees ✓✓.
    bob.line("/open 1");
    await bob.waitFor(new RegExp(`── ${aliceName} ──\\n\\d\\d:\\d\\d ${aliceName}: are you there\\?`));
    await bob.waitForPrompt(new RegExp(`^${aliceName} · online ›$`));
    await alice.waitFor(`✓✓ read by ${bobName}: "are you there?"`);

    // Alice types: bob sees her typing; she sends: he sees the message and the indicator goes.
    alice.type("hello bob");
    await bob.waitForPrompt(new RegExp(`^${aliceName} · online · ${aliceName} is typing… ›$`));
    alice.enter();
    await bob.waitFor(new RegExp(`\\d\\d:\\d\\d ${aliceName}: hello bob`));
    await bob.waitForPrompt(new RegExp(`^${aliceName} · online ›$`));
    await alice.waitFor(`✓✓ read by ${bobName}: "hello bob"`);
    // The sent line replaces the typed one: the message is on screen once, as "you".
    expect(alice.screen()).toMatch(/\d\d:\d\d you: hello bob/);
    expect(alice.screen()).not.toContain("› hello bob");

    bob.line("hi alice");
    await alice.waitFor(new RegExp(`\\d\\d:\\d\\d ${bobName}: hi alice`));
    await bob.waitFor(`✓✓ read by ${aliceName}: "hi alice"`);

    // Alice quits cleanly: bob's status bar turns to "last seen" at once.
    alice.line("/quit");
    await alice.waitFor("[client exited with status 0]");
    await bob.waitForPrompt(new RegExp(`^${aliceName} · last seen \\d\\d:\\d\\d ›$`));

    bob.line("/quit");
    await bob.waitFor("[client exited with status 0]");
  });
});
