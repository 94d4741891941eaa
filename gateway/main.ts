import { ConfigError, describeSettings, loadConfig } from "./config.js";
import { startChatServer } from "./app.js";
import { createLogger } from "./logger.js";

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  process.stdout.write(`chat gateway: Connect, gRPC and gRPC-web on one port\n\n${describeSettings()}\n`);
  process.exit(0);
}

let config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`configuration error: ${error.message}\nRun with --help to list every setting.\n`);
    process.exit(2);
  }
  throw error;
}

const logger = createLogger(config.logLevel);
const server = await startChatServer(config, logger);

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    logger.info({ event: "draining", signal }, "draining: clients are told to reconnect elsewhere");
    server.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "stop failed");
        process.exit(1);
      },
    );
  });
}
