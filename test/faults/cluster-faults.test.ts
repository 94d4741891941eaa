import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatClient } from "../../clients/sdk/index.js";
import { assertAudit } from "../support/audit.js";
import { startCassandra, type CassandraNode } from "../support/cassandra.js";
import { startCluster, type Cluster } from "../support/cluster.js";
import { PASSWORD, uniqueName } from "../support/users.js";
import { waitFor } from "../support/wait.js";
import { startBalancer, startTraffic, type Balancer, type Traffic } from "./helpers.js";

/**
 * Faults during steady traffic, one after another on one cluster: three gateways, our own
 * nats-server and redis-server, and a Cassandra node of this test's own (the run's shared node is never
 * touched: other test files use it at the same time). Five members of a group, each device behind a
 * TCP load balancer that prefers "its" gateway and fails over to the next, each a ChatSession (it
 * reconnects, resumes from its cursors and re-sends its outbox), all of them sending. After each fault
 * the delivery audit runs over everything acknowledged so far; at the end, over everything.
 */

const MEMBERS = 5;

describe("faults during steady traffic in a three-gateway cluster", () => {
  let cassandra: CassandraNode | undefined;
  let cluster: Cluster | undefined;
  const balancers: Balancer[] = [];
  let traffic: Traffic | undefined;

  /** A gateway's port while its process runs; undefined once it is dead. */
  const livePorts = () =>
    cluster!.gateways.map((gateway) => (gateway && gateway.child.exitCode === null && gateway.child.signalCode === null ? gateway.port : undefined));

  beforeAll(async () => {
    // 512 MB heap: a Cassandra node of its own next to the run's shared one, within CI's memory.
    cassandra = await startCassandra({ heap: "512m" });
    const keyspace = `chat_faults_${randomBytes(4).toString("hex")}`;
    cluster = await startCluster(3, { CHAT_STORE: `cassandra://${cassandra.contactPoint}/${keyspace}` });
  }, 420_000);

  afterAll(async () => {
    await traffic?.close().catch(() => undefined);
    await Promise.all(balancers.map((balancer) => balancer.close()));
    await cluster?.dispose();
    await cassandra?.dispose();
  }, 180_000);

  it("kill -9 a gateway, restart nats-server, redis-server and Cassandra, freeze and wake a gateway, drain one: every acked message reaches every member device once, in order", async () => {
    const members: ChatClient[] = [];
    for (let index = 0; index < MEMBERS; index++) {
      const balancer = await startBalancer(livePorts, index % 3);
      balancers.push(balancer);
      // PINGs find a connection whose gateway vanished without a FIN.
      const client = new ChatClient({ baseUrl: balancer.url, pingIntervalMs: 2_000, pingTimeoutMs: 4_000, timeoutMs: 20_000 });
      await client.signUp(uniqueName(`fault${index}`), PASSWORD);
      members.push(client);
    }
    traffic = await startTraffic(members, { pauseMs: 40, name: "member", groupName: "under fire" });
    const running = traffic;

    /** Waits for `count` new acks: traffic is flowing right now. */
    const flowing = async (count: number, what: string) => {
      const from = running.acked().length;
      await waitFor(() => running.acked().length >= from + count, 180_000, () => `${count} new acks ${what} (${running.acked().length - from} so far)`);
    };
    /** The audit of everything acknowledged so far; traffic keeps running meanwhile. */
    const checkpoint = async (label: string) => {
      const acked = [...running.acked()];
      const last = Math.max(...acked.map((send) => Number(send.seq)));
      await waitFor(
        () => running.devices.every((device) => device.messages.some((message) => Number(message.seq) >= last)),
        180_000,
        () => `every device to receive up to seq ${last} after ${label} (${running.devices.map((d) => `${d.name}: ${d.messages.length}`).join(", ")})`,
      );
      const history = await members[0]!.allMessages(running.conversationId);
      const report = assertAudit({ conversationId: running.conversationId, acked, history, devices: running.devices.map((device) => device.record()) });
      console.info(
        `cluster faults: audit after ${label}: ${report.acked} acked, ${report.historyLength} in history, ${report.devices} devices: ok; ` +
          `reconnects so far per device: ${running.devices.map((device) => device.reconnects()).join(", ")}`,
      );
    };

    await flowing(30, "before any fault");

    // 1. kill -9 the second gateway. Members 1 and 4 were on it; their balancers move them to gw3.
    const onVictim = [1, 4];
    const routedBefore = onVictim.map((index) => balancers[index]!.routed.length);
    expect(onVictim.every((index) => balancers[index]!.routed.includes(1))).toBe(true);
    await cluster!.gateways[1]!.kill("SIGKILL");
    await flowing(30, "after the gateway kill");
    await waitFor(
      () => onVictim.every((index) => balancers[index]!.routed.slice(routedBefore[onVictim.indexOf(index)]!).some((target) => target !== 1)),
      60_000,
      "the killed gateway's devices to reconnect through another gateway",
    );
    await checkpoint("kill -9 of gw2");
    await cluster!.startGateway(1);

    // 2. nats-server restarted (JetStream keeps its storage).
    await flowing(20, "before the NATS restart");
    await cluster!.nats.restart();
    await flowing(30, "after the NATS restart");
    await checkpoint("the nats-server restart");

    // 3. redis-server restarted (it keeps nothing: presence, sessions and rate buckets are rebuilt).
    await flowing(20, "before the Redis restart");
    await cluster!.redis.restart();
    await flowing(30, "after the Redis restart");
    await checkpoint("the redis-server restart");

    // 4. Cassandra restarted (stop, start on the same data): sends wait in the outboxes meanwhile.
    await flowing(20, "before the Cassandra restart");
    const restartStarted = Date.now();
    await cassandra!.restart();
    console.info(`cluster faults: Cassandra was down and back in ${Date.now() - restartStarted} ms (informational)`);
    await flowing(30, "after the Cassandra restart");
    await checkpoint("the Cassandra restart");

    // 5. A gateway frozen (SIGSTOP) with appends in flight while the others number and ack the same
    //    group's messages, then woken: its stale appends are refused by the log, none of its late
    //    writes replaces an acked message.
    await flowing(20, "before freezing gw1");
    const frozen = cluster!.gateways[0]!;
    frozen.child.kill("SIGSTOP");
    try {
      await flowing(30, "through the other gateways while gw1 is frozen");
    } finally {
      frozen.child.kill("SIGCONT");
    }
    await flowing(30, "after gw1 woke up");
    await checkpoint("SIGSTOP and SIGCONT of gw1");

    // 6. A gateway drained with SIGTERM under traffic: the sends it read are answered, its devices move.
    await flowing(20, "before draining gw3");
    expect(await cluster!.gateways[2]!.kill("SIGTERM")).toBe(0);
    await flowing(30, "after draining gw3");
    await checkpoint("the SIGTERM drain of gw3");

    await running.stop();
    const report = await running.audit();
    console.info(`cluster faults: final audit: ${report.acked} acked, ${report.historyLength} in history, ${report.devices} devices`);
    expect(report.devices).toBe(MEMBERS);
  }, 900_000);
});
