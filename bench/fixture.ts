import { randomBytes } from "node:crypto";
import { ChatClient } from "../clients/sdk/index.js";
import type { Device, SendEntry } from "./protocol.js";

/** `graphql` is `direct` (1:1) with every device on graphql-ws: a live subscription, sends as mutations. */
export type Workload = "direct" | "group10" | "group500" | "graphql";

/**
 * Who talks to whom, the same for every server: device i has one 1:1 conversation (with its
 * neighbour), one 10-member group and the big group, so one set of connections serves every workload.
 */
export interface Fixture {
  readonly devices: Device[];
  readonly entries: Record<Workload, SendEntry[]>;
}

/** Average number of receivers per send. */
export function fanoutOf(entries: readonly SendEntry[]): number {
  return entries.reduce((sum, [, , fanout]) => sum + fanout, 0) / entries.length;
}

interface Ids {
  readonly direct: (pair: number) => string;
  readonly group: (group: number) => string;
  readonly big: string;
  readonly user: (index: number) => { userId: string; token: string };
}

function layout(count: number, ids: Ids): Fixture {
  const devices: Device[] = [];
  const entries: Record<Exclude<Workload, "graphql">, SendEntry[]> = { direct: [], group10: [], group500: [] };
  for (let index = 0; index < count; index++) {
    const direct = ids.direct(Math.floor(index / 2));
    const group = ids.group(Math.floor(index / 10));
    devices.push({ ...ids.user(index), conversations: [direct, group, ids.big] });
    entries.direct.push([direct, index, 1]);
    entries.group10.push([direct, index, 1], [group, index, 9]);
    entries.group500.push([ids.big, index, count - 1]);
  }
  return { devices, entries: { ...entries, graphql: entries.direct } };
}

/** The relays need no accounts: conversation ids are room names. */
export function relayFixture(count: number): Fixture {
  return layout(count, { direct: (pair) => `d${pair}`, group: (group) => `g${group}`, big: "big", user: () => ({ userId: "", token: "" }) });
}

/** Runs `task` for 0..count-1, `parallel` at a time. */
export async function inParallel<T>(count: number, parallel: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, count) }, async () => {
      while (next < count) {
        const index = next++;
        results[index] = await task(index);
      }
    }),
  );
  return results;
}

/** Signs up `count` users (one device each) through the SDK. */
export async function signUpUsers(baseUrl: string, count: number): Promise<ChatClient[]> {
  const tag = randomBytes(3).toString("hex");
  return inParallel(count, 8, async (index) => {
    const client = new ChatClient({ baseUrl, timeoutMs: 60_000 });
    await client.signUp(`bench_${tag}_${index}`, "bench password 123");
    return client;
  });
}

/** `count` (a multiple of 10) users on the gateway, with their conversations created through the SDK. */
export async function chatFixture(baseUrl: string, count: number): Promise<{ fixture: Fixture; clients: ChatClient[] }> {
  const clients = await signUpUsers(baseUrl, count);
  const direct = await inParallel(count / 2, 8, async (pair) => (await clients[pair * 2]!.openDirect(clients[pair * 2 + 1]!.userId)).conversationId);
  const groups = await inParallel(count / 10, 8, async (group) => {
    const members = clients.slice(group * 10 + 1, group * 10 + 10).map((client) => client.userId);
    return (await clients[group * 10]!.groups.createGroup({ name: `group ${group}`, memberUserIds: members })).group!.groupId;
  });
  const big = (await clients[0]!.groups.createGroup({ name: "big", memberUserIds: clients.slice(1).map((client) => client.userId) })).group!.groupId;
  const user = (index: number) => ({ userId: clients[index]!.userId, token: clients[index]!.session.accessToken });
  return { fixture: layout(count, { direct: (pair) => direct[pair]!, group: (group) => groups[group]!, big, user }), clients };
}
