import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Stops the test Cassandra node when this run started it.
    globalSetup: ["test/support/cassandra-lifecycle.ts"],
    projects: [
      {
        extends: true,
        test: {
          name: "main",
          include: ["test/**/*.test.ts", "backends/**/*.test.ts", "services/**/*.test.ts"],
          exclude: ["test/faults/**"],
        },
      },
      {
        // Faults and capacity under load: minutes each, and they load the whole machine.
        extends: true,
        test: { name: "faults", include: ["test/faults/**/*.test.ts"] },
      },
    ],
  },
});
