/**
 * A device in its own process, so a test can kill it with SIGKILL: the server then sees a connection
 * die, not a clean goodbye. Usage: presence-client.ts <baseUrl> <username> <password> <heartbeatMs>
 */
import { ChatClient } from "../../clients/sdk/index.js";

const [baseUrl, username, password, heartbeatMs] = process.argv.slice(2);
const client = new ChatClient({ baseUrl: baseUrl! });
await client.logIn(username!, password!, "killable");
const stream = client.openStream();
await stream.ready;
setInterval(() => stream.heartbeat(), Number(heartbeatMs));
process.stdout.write("ready\n");
