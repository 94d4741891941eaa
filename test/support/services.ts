import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A real server process of our own, so a test may stop and restart it. */
export interface ServiceProcess {
  readonly port: number;
  readonly url: string;
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port (and, for NATS, the same storage). */
  restart(): Promise<void>;
}

async function supervise(name: string, port: number, url: string, command: string, args: string[]): Promise<ServiceProcess> {
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("exit", (code, signal) => {
      if (code && code !== 0 && !signal) process.stderr.write(`${name} exited with ${code}: ${stderr}\n`);
    });
    await waitForPort(port);
  };
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill(signal);
    await exited;
  };
  await start();
  return {
    port,
    url,
    stop: async (signal) => {
      await stop(signal);
    },
    restart: async () => {
      await stop();
      await start();
    },
  };
}

/** nats-server with JetStream on a free loopback port, storage in a temporary directory. */
export async function startNats(): Promise<ServiceProcess & { dispose(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "chat-nats-"));
  const service = await supervise("nats-server", port, `nats://127.0.0.1:${port}`, "nats-server", ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir]);
  return {
    ...service,
    async dispose() {
      await service.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** redis-server on a free loopback port, keeping nothing on disk (a restart loses everything). */
export async function startRedis(): Promise<ServiceProcess & { dispose(): Promise<void> }> {
  const port = await freePort();
  const service = await supervise(
    "redis-server",
    port,
    `redis://127.0.0.1:${port}`,
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
  );
  return { ...service, dispose: () => service.stop() };
}
