import { randomBytes } from "node:crypto";
import { ChatClient, type Protocol } from "../../clients/sdk/index.js";

export const PASSWORD = "correct horse battery";

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString("hex")}`;
}

/** Signs up a new user and returns its first device's client. */
export async function newUser(baseUrl: string, prefix = "user", protocol: Protocol = "connect"): Promise<ChatClient> {
  const client = new ChatClient({ baseUrl, protocol });
  await client.signUp(uniqueName(prefix), PASSWORD);
  return client;
}

/** Another device (a new login) of the same user. */
export async function otherDevice(of: ChatClient, protocol: Protocol = "connect"): Promise<ChatClient> {
  const client = new ChatClient({ baseUrl: of.options.baseUrl, protocol });
  await client.logIn(of.session.user!.username, PASSWORD, "second device");
  return client;
}
