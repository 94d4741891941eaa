import { ConfigError, describeSettings, loadConfig } from "./config.js";
import { startChatServer } from "./app.js";
import { createLogger } from "./logger.js";
import { checkArguments, checkDataDir, checkEnvironment, checkServices, describeStartupFailure, StartupError } from "./startup-checks.js";

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  process.stdout.write(`chat gateway: Connect, gRPC and gRPC-web on one port\n\n${describeSettings()}\n`);
  process.exit(0);
}

let config;
try {
  checkArguments(process.argv.slice(2));
  checkEnvironment(process.env);
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError || error instanceof StartupError) {
    process.stderr.write(`configuration error: ${error.message}\nRun with --help to list every setting.\n`);
    process.exit(2);
  }
  throw error;
}

const logger = createLogger(config.logLevel);
let server;
try {
  checkDataDir(config);
  await checkServices(config);
  server = await startChatServer(config, logger);
} catch (error) {
  // One line for the operator; the stack only helps when debugging the gateway itself.
  logger.debug({ err: error }, "start-up failed");
  process.stderr.write(`${describeStartupFailure(error, config)}\n`);
  process.exit(2);
}

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
