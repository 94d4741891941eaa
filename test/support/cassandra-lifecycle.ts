import { sharedCassandraRunning, stopSharedCassandra } from "./cassandra.js";

/**
 * Vitest global setup: the test files that need Cassandra start the shared node on first use
 * (sharedCassandra), so a run that needs none starts none. A node this run started is stopped when
 * the run ends; one that was already running (or named by CHAT_TEST_CASSANDRA) is left alone.
 */
export default async function cassandraLifecycle(): Promise<() => Promise<void>> {
  const given = Boolean(process.env.CHAT_TEST_CASSANDRA);
  const runningBefore = given || (await sharedCassandraRunning());
  return async () => {
    if (runningBefore || !(await sharedCassandraRunning())) return;
    process.stdout.write(`test Cassandra node started by this run: ${(await stopSharedCassandra()).trim()}\n`);
  };
}
