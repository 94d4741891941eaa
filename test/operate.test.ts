import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { freePort } from "./support/services.js";
import { newUser, PASSWORD } from "./support/users.js";

const N = 25;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

describe("operate: Prometheus metrics and JSON logs", () => {
  let server: ServerProcess;
  let prometheus: ChildProcess;
  let prometheusUrl: string;
  let prometheusDir: string;

  /** The value of a single-series instant query, once Prometheus has scraped it at least once. */
  async function query(expr: string): Promise<number | undefined> {
    const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as { status: string; data: { result: { value: [number, string] }[] } };
    if (body.status !== "success" || body.data.result.length !== 1) return undefined;
    return Number(body.data.result[0]!.value[1]);
  }

  beforeAll(async () => {
    server = await startServer({ env: { CHAT_LOG_LEVEL: "debug" } });
    prometheusDir = mkdtempSync(join(tmpdir(), "chat-prometheus-"));
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    writeFileSync(
      join(prometheusDir, "prometheus.yml"),
      ["global:", "  scrape_interval: 1s", "scrape_configs:", "  - job_name: chat", "    static_configs:", `      - targets: ["127.0.0.1:${server.port}"]`, ""].join("\n"),
    );
    prometheus = spawn(
      "prometheus",
      [`--config.file=${join(prometheusDir, "prometheus.yml")}`, `--storage.tsdb.path=${join(prometheusDir, "data")}`, `--web.listen-address=127.0.0.1:${port}`],
      { stdio: "ignore" },
    );
    await waitFor("Prometheus to be ready", async () => ((await fetch(`${prometheusUrl}/-/ready`)).ok ? true : undefined));
  }, 60_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill("SIGTERM");
      await once(prometheus, "exit");
    }
    await server?.kill("SIGTERM");
    if (server) removeDir(server.dataDir);
    if (prometheusDir) removeDir(prometheusDir);
  });

  it("1. a real Prometheus sees the delivered counter and the latency histograms move by exactly the messages sent", async () => {
    const [alice, bob] = await Promise.all([newUser(server.url, "alice"), newUser(server.url, "bob")]);
    const stream = bob.openStream();
    await stream.ready;
    // A baseline only counts once a scrape has happened since bob connected.
    await waitFor("a scrape showing bob's stream", async () => ((await query('chat_connected_devices{surface="connect"}')) === 1 ? true : undefined));
    const series = ["chat_messages_accepted_total", "chat_messages_delivered_total", "chat_send_to_ack_seconds_count", "chat_send_to_deliver_seconds_count"];
    const before = await Promise.all(series.map(async (name) => (await query(name)) ?? 0));

    // Unary sends: the sender has no stream, so each message is delivered once, to bob's stream.
    for (let i = 1; i <= N; i++) await alice.send({ recipientUserId: bob.userId }, `metric message ${i}`);
    expect(await stream.takeMessages(N)).toHaveLength(N);

    await waitFor("Prometheus to see every message", async () => {
      const now = await Promise.all(series.map((name) => query(name)));
      return now.every((value, i) => value === before[i]! + N) ? now : undefined;
    });
    // Nothing counted twice: one more message, and once Prometheus has counted it, every series is
    // exactly one further on (a late second count of the first N would be counted by then too).
    await alice.send({ recipientUserId: bob.userId }, "metric marker");
    expect(await stream.takeMessages(1)).toHaveLength(1);
    let seen: (number | undefined)[] = [];
    await waitFor(`Prometheus to count the marker`, async () => {
      seen = await Promise.all(series.map((name) => query(name)));
      return seen.every((value, i) => value !== undefined && value >= before[i]! + N + 1) ? seen : undefined;
    });
    for (const [i, name] of series.entries()) expect(seen[i], name).toBe(before[i]! + N + 1);
    const slow = await query('chat_send_to_deliver_seconds_bucket{le="+Inf"} - ignoring(le) chat_send_to_deliver_seconds_bucket{le="5"}');
    expect(slow).toBe(0);
    stream.close();

    const body = await (await fetch(`${server.url}/metrics`)).text();
    const check = spawnSync("promtool", ["check", "metrics"], { input: body, encoding: "utf8" });
    expect(check.stdout + check.stderr).toBe("");
    expect(check.status).toBe(0);
    // Bounded labels: no user or conversation ids.
    expect(body).not.toContain(bob.userId);
    expect(body).not.toContain(alice.userId);
    for (const name of ["nodejs_eventloop_lag_seconds", "nodejs_gc_duration_seconds", "nodejs_heap_size_used_bytes", "chat_store_write_seconds", "chat_fanout_lag_seconds", "chat_presence_watchers"]) {
      expect(body).toContain(name);
    }
  }, 90_000);

  it("2. logs are JSON lines with level, time and message, follow a message from send to delivery, and hold no text, password or token", async () => {
    const secret = `secret-text-${randomBytes(8).toString("hex")}`;
    const [alice, bob] = await Promise.all([newUser(server.url, "alice"), newUser(server.url, "bob")]);
    const token = alice.session.accessToken;
    const refresh = alice.session.refreshToken;
    const stream = bob.openStream();
    const sender = alice.openStream();
    await Promise.all([stream.ready, sender.ready]);
    const ack = await sender.send({ recipientUserId: bob.userId }, secret);
    await alice.send({ recipientUserId: bob.userId }, `${secret} unary`);
    await stream.takeMessages(2);
    await expect(alice.logIn(alice.session.user!.username, `${PASSWORD} wrong`)).rejects.toThrow();
    stream.close();
    sender.close();
    const messageId = ack.message!.messageId;
    await waitFor("the delivery to be logged", async () =>
      server.logs.filter((line) => line.event === "message_delivered" && line.messageId === messageId).length >= 2 ? true : undefined,
    );

    for (const line of server.logs) {
      expect(line.unparsed, String(line.unparsed)).toBeUndefined();
      expect(typeof line.level).toBe("number");
      expect(typeof line.time).toBe("string");
      expect(typeof line.msg).toBe("string");
    }
    const all = JSON.stringify(server.logs);
    expect(all).not.toContain(secret);
    expect(all).not.toContain(token);
    expect(all).not.toContain(refresh);
    expect(all).not.toContain(PASSWORD);

    // The sender's stream id is on the accept line; the receiver's on the delivery line, by message id.
    const accepted = server.logs.find((line) => line.event === "message_accepted" && line.messageId === messageId)!;
    expect(accepted).toMatchObject({ conversationId: ack.message!.conversationId, seq: String(ack.message!.seq) });
    const streamOf = (userId: string) => server.logs.find((line) => line.event === "stream_open" && line.userId === userId)!.streamId;
    expect(accepted.traceId).toBe(streamOf(alice.userId));
    const deliveredTo = server.logs.filter((line) => line.event === "message_delivered" && line.messageId === messageId).map((line) => line.traceId);
    expect(deliveredTo).toContain(streamOf(bob.userId));

    // The wrong password was counted by code and reason, without the user it was for.
    const body = await (await fetch(`${server.url}/metrics`)).text();
    expect(body).toMatch(/^chat_errors_total\{code="unauthenticated",reason="[a-z_]+"\} [1-9]/m);
  }, 60_000);
});
