import { createServer } from "node:http";
import { Server } from "socket.io";
import { answerProbes } from "./probe.js";

/**
 * The Socket.IO baseline: the same relay with Socket.IO's rooms. A client names its conversations in
 * the handshake query (`c=a,b`) and emits `m(conversation, payload)`; the other members get `m(payload)`.
 */
const httpServer = createServer();
const io = new Server(httpServer, { transports: ["websocket"], perMessageDeflate: false, serveClient: false });

io.on("connection", (socket) => {
  const joined = String(socket.handshake.query.c ?? "").split(",").filter(Boolean);
  void socket.join(joined);
  socket.on("m", (room: string, payload: string) => {
    socket.to(room).emit("m", payload);
  });
});

httpServer.listen(0, "127.0.0.1", () => {
  process.send?.({ type: "listening", port: (httpServer.address() as { port: number }).port });
});
answerProbes();
