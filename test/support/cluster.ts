import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sharedCassandra } from "./cassandra.js";
import { removeDir, startServer, type ServerProcess } from "./server-process.js";
import { startNats, startRedis } from "./services.js";

export interface Cluster {
  readonly gateways: ServerProcess[];
  readonly nats: Awaited<ReturnType<typeof startNats>>;
  readonly redis: Awaited<ReturnType<typeof startRedis>>;
  /** Starts (again) the gateway at this index with the same id and configuration. */
  startGateway(index: number): Promise<ServerProcess>;
  dispose(): Promise<void>;
}

/**
 * Real engines on loopback: our own nats-server and redis-server (so tests may restart them), the
 * run's shared Cassandra node with a keyspace of this cluster's own, and `count` gateway processes.
 */
export async function startCluster(count: number, env: Record<string, string> = {}): Promise<Cluster> {
  const [nats, redis, cassandra] = await Promise.all([startNats(), startRedis(), sharedCassandra()]);
  const keyspace = `chat_it_${randomBytes(4).toString("hex")}`;
  const secret = randomBytes(32).toString("hex");
  const dataDir = mkdtempSync(join(tmpdir(), "chat-cluster-"));
  const gateways: ServerProcess[] = [];
  const startGateway = async (index: number) => {
    const gateway = await startServer({
      dataDir: join(dataDir, `gw${index + 1}`),
      env: {
        CHAT_STORE: `cassandra://${cassandra.contactPoint}/${keyspace}`,
        CHAT_BUS: nats.url,
        CHAT_PRESENCE: redis.url,
        CHAT_GATEWAY_ID: `gw${index + 1}`,
        // Every gateway must accept the tokens the others issue.
        CHAT_TOKEN_SECRET: secret,
        ...env,
      },
    });
    gateways[index] = gateway;
    return gateway;
  };
  // One at a time: the first creates the keyspace and applies the migrations.
  for (let index = 0; index < count; index++) await startGateway(index);
  return {
    gateways,
    nats,
    redis,
    startGateway,
    async dispose() {
      await Promise.all(gateways.map((gateway) => gateway.kill("SIGKILL")));
      await Promise.all([nats.dispose(), redis.dispose()]);
      removeDir(dataDir);
    },
  };
}
