import { performance } from "node:perf_hooks";
import { io as ioClient, type Socket } from "socket.io-client";
import { WebSocket } from "ws";
import { LeanGraphQL } from "./lean-graphql.js";
import { LeanStream } from "./lean-stream.js";
import { loopDelayMonitor, stallMs } from "./loop-stall.js";
import type { Device, FromGenerator, StepRequest, StepResult, Target, ToGenerator } from "./protocol.js";

/**
 * The load generator, its own process (forked by run.ts). Every server gets the same treatment:
 * one connection per device, sends scheduled by a timer at the offered rate whatever the answers
 * (open loop), and each message's scheduled send time written into its text, read back at every
 * receiver. Stamping the scheduled time, not the moment the write happened, keeps a stalled
 * generator or server from hiding its backlog (coordinated omission).
 */

interface Connection {
  send(conversation: string, text: string, clientMsgId: string): void;
  close(): void;
}

type OnText = (text: string) => void;

let connections: Connection[] = [];
let idle: Connection[] = [];
let current: { stepId: string; delivered: number; rejected: number; latencies: number[] } | undefined;

const reply = (message: FromGenerator): void => void process.send!(message);
const takeLoopDelay = loopDelayMonitor();

/**
 * The documents a device sends over graphql-ws: the gateway's device feed and sendMessage
 * (graphql/schema/messaging.ts), and the relay's equivalents (baselines/graphql-ws-relay.ts). Each
 * is one fixed text, as a real client's are, so both servers' document caches hit.
 */
const CHAT_FEED = "subscription Feed { messages { kind message { senderUserId text } } }";
const CHAT_SEND =
  "mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { duplicate userErrors { code } } }";
const RELAY_FEED = "subscription Feed($conversationIds: [ID!]!) { messages(conversationIds: $conversationIds) { text } }";
const RELAY_SEND = "mutation Send($conversationId: ID!, $text: String!) { send(conversationId: $conversationId, text: $text) }";

const countRejected = () => {
  if (current) current.rejected++;
};

/** Text is `<step>:<scheduled ms>:` padded to the payload size. */
const onText: OnText = (text) => {
  const step = current;
  if (!step || !text.startsWith(step.stepId)) return;
  const end = text.indexOf(":", step.stepId.length);
  step.latencies.push(performance.now() - Number(text.slice(step.stepId.length, end)));
  step.delivered++;
};

async function connectOne(target: Target, device: Device, receive: OnText): Promise<Connection> {
  switch (target.kind) {
    case "ws": {
      const socket = new WebSocket(`${target.url}/?c=${device.conversations.join(",")}`, { perMessageDeflate: false });
      socket.on("message", (data) => {
        const text = String(data);
        receive(text.slice(text.indexOf("\t") + 1));
      });
      await new Promise<void>((resolve, reject) => (socket.once("open", resolve), socket.once("error", reject)));
      socket.on("error", () => undefined);
      return { send: (conversation, text) => socket.send(`${conversation}\t${text}`), close: () => socket.terminate() };
    }
    case "socketio": {
      const socket: Socket = ioClient(target.url, {
        transports: ["websocket"],
        query: { c: device.conversations.join(",") },
        reconnection: false,
        forceNew: true,
      });
      socket.on("m", (payload: string) => receive(payload));
      await new Promise<void>((resolve, reject) => (socket.once("connect", resolve), socket.once("connect_error", reject)));
      return { send: (conversation, text) => socket.emit("m", conversation, text), close: () => socket.disconnect() };
    }
    case "chat": {
      const stream = new LeanStream(
        target.url,
        device.token,
        (frame) => {
          if (frame.frame.case === "message") {
            if (frame.frame.value.senderUserId !== device.userId) receive(frame.frame.value.text);
          } else if (frame.frame.case === "rejected") countRejected();
        },
      );
      await stream.ready;
      return { send: (conversation, text, clientMsgId) => stream.send(conversation, text, clientMsgId), close: () => stream.close() };
    }
    case "chat-graphql": {
      const connection = new LeanGraphQL(
        `${target.url.replace(/^http/, "ws")}/graphql`,
        { authorization: `Bearer ${device.token}` },
        { query: CHAT_FEED },
        (data) => {
          const message = (data.messages as { message?: { senderUserId: string; text: string } | null } | null)?.message;
          if (message && message.senderUserId !== device.userId) receive(message.text);
        },
        countRejected,
      );
      await connection.ready;
      return {
        send: (conversationId, text, clientMsgId) => connection.mutate({ query: CHAT_SEND, variables: { input: { clientMsgId, conversationId, text } } }),
        close: () => connection.close(),
      };
    }
    case "graphql-ws": {
      const connection = new LeanGraphQL(
        target.url,
        {},
        { query: RELAY_FEED, variables: { conversationIds: device.conversations } },
        (data) => {
          const text = (data.messages as { text: string | null } | null)?.text;
          if (text) receive(text);
        },
        countRejected,
      );
      await connection.ready;
      return { send: (conversationId, text) => connection.mutate({ query: RELAY_SEND, variables: { conversationId, text } }), close: () => connection.close() };
    }
  }
}

/** Opens `count` connections, at most `parallel` at a time; `opened[i]` is connection i (or undefined when it failed). */
async function openMany(count: number, parallel: number, open: (index: number) => Promise<Connection>): Promise<{ opened: (Connection | undefined)[]; failed: number }> {
  const opened: (Connection | undefined)[] = new Array(count);
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, count) }, async () => {
      while (next < count) {
        const index = next++;
        try {
          opened[index] = await open(index);
        } catch {
          failed++;
        }
      }
    }),
  );
  return { opened, failed };
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

async function runStep(request: StepRequest): Promise<StepResult> {
  const stepId = `s${request.stepId}:`;
  const padding = "x".repeat(request.payloadBytes);
  const step = { stepId, delivered: 0, rejected: 0, latencies: [] as number[] };
  current = step;
  const total = Math.round(request.rate * request.seconds);
  const cpuStart = process.cpuUsage();
  takeLoopDelay();
  const start = performance.now();
  let sent = 0;
  let expected = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * request.rate) + 1);
      while (sent < due) {
        const [conversation, sender, fanout] = request.entries[sent % request.entries.length]!;
        const head = `${stepId}${(start + (sent * 1000) / request.rate).toFixed(3)}:`;
        connections[sender]!.send(conversation, head + padding.slice(head.length), `bench-${stepId}${String(sent).padStart(8, "0")}`);
        expected += fanout;
        sent++;
      }
      if (sent >= total) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(tick, 1);
    tick();
  });
  const drainUntil = performance.now() + request.drainMs;
  while (step.delivered < expected && performance.now() < drainUntil) await new Promise((resolve) => setTimeout(resolve, 20));
  const cpu = process.cpuUsage(cpuStart);
  const wall = performance.now() - start;
  current = undefined;
  const sorted = Float64Array.from(step.latencies).sort();
  return {
    sent,
    expected,
    delivered: step.delivered,
    rejected: step.rejected,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    p999: percentile(sorted, 0.999),
    max: percentile(sorted, 1),
    generatorCpu: (cpu.user + cpu.system) / 1000 / wall,
    generatorStallMs: stallMs(takeLoopDelay()),
  };
}

async function handle(message: ToGenerator): Promise<void> {
  switch (message.type) {
    case "connect": {
      const started = performance.now();
      const { opened, failed } = await openMany(message.devices.length, 50, (index) => connectOne(message.target, message.devices[index]!, onText));
      if (failed) throw new Error(`${failed} of ${message.devices.length} devices could not connect to ${message.target.kind}`);
      connections = opened as Connection[];
      return reply({ type: "connected", ms: performance.now() - started });
    }
    case "step":
      return reply({ type: "step", result: await runStep(message) });
    case "idle": {
      const started = performance.now();
      const { tokens } = message;
      const { opened, failed } = await openMany(message.count, 100, (index) =>
        connectOne(message.target, { userId: "", token: tokens[index % tokens.length]!, conversations: [] }, () => undefined),
      );
      idle = opened.filter((connection) => connection !== undefined);
      return reply({ type: "idle", opened: idle.length, failed, ms: performance.now() - started });
    }
    case "close":
      for (const connection of [...connections, ...idle]) connection.close();
      connections = [];
      idle = [];
      return reply({ type: "closed" });
  }
}

process.on("message", (message: ToGenerator) => {
  handle(message).catch((error: unknown) => reply({ type: "error", message: error instanceof Error ? error.message : String(error) }));
});
process.on("disconnect", () => process.exit(0));
