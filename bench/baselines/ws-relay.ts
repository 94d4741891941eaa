import { WebSocketServer, type WebSocket } from "ws";
import { answerProbes } from "./probe.js";

/**
 * The upper bound: a `ws` relay that keeps nothing. A client names its conversations in the URL
 * (`?c=a,b`); a text frame `<conversation>\t<payload>` goes as it is to the conversation's other
 * members.
 */
const rooms = new Map<string, Set<WebSocket>>();
const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });

server.on("connection", (socket, request) => {
  const joined = (new URL(request.url ?? "/", "http://relay").searchParams.get("c") ?? "").split(",").filter(Boolean);
  for (const room of joined) {
    let members = rooms.get(room);
    if (!members) rooms.set(room, (members = new Set()));
    members.add(socket);
  }
  socket.on("message", (data, isBinary) => {
    const text = isBinary ? data.toString() : String(data);
    const members = rooms.get(text.slice(0, text.indexOf("\t")));
    if (!members) return;
    for (const member of members) if (member !== socket) member.send(text);
  });
  socket.on("close", () => {
    for (const room of joined) rooms.get(room)?.delete(socket);
  });
});

server.on("listening", () => {
  process.send?.({ type: "listening", port: (server.address() as { port: number }).port });
});
answerProbes();
