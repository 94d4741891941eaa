import { readFileSync } from "node:fs";
import net from "node:net";
import { ChatClient, ChatSession, DeviceStream, type DeviceStreamOptions } from "../../clients/sdk/index.js";
import type { StreamRequest, StreamResponse } from "../../gen/chat/v1/messaging_pb.js";
import type { Message } from "../../gen/chat/v1/types_pb.js";
import { assertAudit, type AckedSend, type AuditReport, type DeviceRecord } from "../support/audit.js";
import { PASSWORD } from "../support/users.js";
import { sleep, waitFor } from "../support/wait.js";

/** Resident set size of a process, in bytes, from /proc/<pid>/status. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/**
 * Makes every stream the client opens record the message frames exactly as the server sent them,
 * before the SDK drops seqs at or below its cursor: the audit then sees server-side duplicates too.
 */
export function tapStreams(client: ChatClient, raw: Message[]): void {
  const tap = async function* (responses: AsyncIterable<StreamResponse>): AsyncGenerator<StreamResponse> {
    for await (const response of responses) {
      if (response.frame.case === "message") raw.push(response.frame.value);
      yield response;
    }
  };
  client.openStream = (options: DeviceStreamOptions = {}) =>
    new DeviceStream((requests: AsyncIterable<StreamRequest>, signal: AbortSignal) => tap(client.messaging.stream(requests, { signal })), options);
}

/**
 * A member device run as an app runs it: a ChatSession (reconnects with backoff, resumes from its
 * cursors, re-sends its outbox), every message it is given recorded for the audit.
 */
export interface TrackedDevice {
  readonly name: string;
  readonly client: ChatClient;
  readonly session: ChatSession;
  readonly messages: Message[];
  readonly raw: Message[];
  /** Acks of what this device sent through its session. */
  readonly acked: AckedSend[];
  /** Streams that ended other than by close(): each one is followed by a reconnect. */
  readonly reconnects: () => number;
  /** Sends through the outbox; the ack is recorded. */
  send(conversationId: string, text: string): Promise<void>;
  record(fromSeq?: bigint | number): DeviceRecord;
  close(): Promise<void>;
}

export async function trackDevice(name: string, client: ChatClient): Promise<TrackedDevice> {
  const raw: Message[] = [];
  const messages: Message[] = [];
  const acked: AckedSend[] = [];
  tapStreams(client, raw);
  const session = await ChatSession.open(client, { backoff: { initialMs: 100, maxMs: 2_000 }, connectTimeoutMs: 10_000 });
  session.on("message", (message) => messages.push(message));
  let reconnects = 0;
  session.on("connection", (change) => {
    if (change.state === "reconnecting" && change.delayMs !== undefined) reconnects++;
  });
  return {
    reconnects: () => reconnects,
    name,
    client,
    session,
    messages,
    raw,
    acked,
    async send(conversationId, text) {
      const ack = await session.send({ conversationId }, text);
      acked.push({ conversationId, messageId: ack.message!.messageId, seq: ack.message!.seq });
    },
    record: (fromSeq) => ({ name, messages, raw, fromSeq }),
    close: () => session.close(),
  };
}

/** The same user on another device (a new login) through another base URL. */
export async function logInAgain(baseUrl: string, username: string, deviceName: string): Promise<ChatClient> {
  const client = new ChatClient({ baseUrl, pingIntervalMs: 2_000, pingTimeoutMs: 4_000 });
  await client.logIn(username, PASSWORD, deviceName);
  return client;
}

/**
 * A TCP load balancer on a port of its own: each connection goes to the first backend, starting at
 * `preferred`, that accepts it. A backend that dies takes its connections with it, so clients
 * reconnect and land on a live one, as behind any L4 balancer in front of the gateways.
 */
export interface Balancer {
  readonly port: number;
  readonly url: string;
  /** Backend index of each connection made so far, in order. */
  readonly routed: number[];
  close(): Promise<void>;
}

export async function startBalancer(backends: () => readonly (number | undefined)[], preferred: number): Promise<Balancer> {
  const routed: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.once("close", () => sockets.delete(client));
    client.pause();
    const ports = backends();
    const order = ports.map((_, offset) => (preferred + offset) % ports.length);
    const attempt = (index: number) => {
      if (index >= order.length) return client.destroy();
      const target = order[index]!;
      const port = ports[target];
      if (port === undefined) return attempt(index + 1);
      const upstream = net.connect(port, "127.0.0.1");
      upstream.once("error", () => {
        if (!upstream.remoteAddress) attempt(index + 1);
        else client.destroy();
      });
      upstream.once("connect", () => {
        routed.push(target);
        sockets.add(upstream);
        upstream.once("close", () => {
          sockets.delete(upstream);
          client.destroy();
        });
        client.once("close", () => upstream.destroy());
        client.on("error", () => upstream.destroy());
        upstream.on("error", () => client.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    attempt(0);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    routed,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Normal traffic alongside a fault or abuse: `members` users in one group, each a tracked device;
 * every member sends in turn through its ChatSession outbox until stopped. `audit()` waits until every
 * device has every acknowledged message and checks the delivery contract against the server history.
 */
export interface Traffic {
  readonly conversationId: string;
  readonly devices: TrackedDevice[];
  readonly acked: () => AckedSend[];
  /** Stops sending and waits for the messages already queued to be acknowledged. */
  stop(): Promise<void>;
  audit(historyClient?: ChatClient): Promise<AuditReport>;
  close(): Promise<void>;
}

export async function startTraffic(
  members: readonly ChatClient[],
  options: { pauseMs?: number; name?: string; groupName?: string } = {},
): Promise<Traffic> {
  const [creator, ...others] = members;
  const { group } = await creator!.groups.createGroup({ name: options.groupName ?? "traffic", memberUserIds: others.map((member) => member.userId) });
  const conversationId = group!.groupId;
  const devices = await Promise.all(members.map((member, index) => trackDevice(`${options.name ?? "member"}${index}`, member)));
  await waitFor(() => devices.every((device) => device.session.state === "connected"), 60_000, "the traffic devices to connect");
  let stopping = false;
  const sendErrors: unknown[] = [];
  const loops = devices.map((device, index) =>
    (async () => {
      for (let i = 1; !stopping; i++) {
        await device.send(conversationId, `${device.name} #${i}`).catch((error: unknown) => sendErrors.push(error));
        await sleep(options.pauseMs ?? 25);
      }
    })().then(() => index),
  );
  return {
    conversationId,
    devices,
    acked: () => devices.flatMap((device) => device.acked),
    async stop() {
      stopping = true;
      await Promise.all(loops);
      if (sendErrors.length) throw new Error(`normal traffic had ${sendErrors.length} failed send(s), first: ${String(sendErrors[0])}`);
    },
    async audit(historyClient = creator!) {
      const acked = devices.flatMap((device) => device.acked);
      const last = Math.max(...acked.map((send) => Number(send.seq)));
      await waitFor(
        () => devices.every((device) => device.messages.some((message) => message.conversationId === conversationId && Number(message.seq) >= last)),
        90_000,
        () => `every device to receive up to seq ${last} (${devices.map((d) => `${d.name}: ${d.messages.length}`).join(", ")})`,
      );
      const history = await historyClient.allMessages(conversationId);
      return assertAudit({ conversationId, acked, devices: devices.map((device) => device.record()), history });
    },
    close: async () => {
      stopping = true;
      await Promise.all(devices.map((device) => device.close()));
    },
  };
}
