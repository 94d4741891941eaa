import { parseArgs } from "node:util";
import { TerminalChat } from "./chat.js";
import { Screen } from "./screen.js";

const USAGE = `usage: chat-terminal [--url <server url>]

A terminal chat client. The server is --url, else the CHAT_URL environment variable, else
http://127.0.0.1:8080 (the gateway's default). Type /help in the client for its commands.`;

function serverUrl(): string {
  let values: { url?: string; help?: boolean };
  try {
    ({ values } = parseArgs({ options: { url: { type: "string" }, help: { type: "boolean", short: "h" } } }));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const url = values.url ?? process.env.CHAT_URL ?? "http://127.0.0.1:8080";
  if (!/^https?:\/\/[^/]/.test(url) || !URL.canParse(url)) {
    console.error(`the server url must look like http://127.0.0.1:8080, not "${url}": fix --url or CHAT_URL`);
    process.exit(2);
  }
  return url;
}

new TerminalChat({ baseUrl: serverUrl(), screen: new Screen(), exit: (code) => process.exit(code) }).start();
