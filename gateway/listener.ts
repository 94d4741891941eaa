import http, { type IncomingMessage, type ServerResponse } from "node:http";
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import net, { type AddressInfo, type Socket } from "node:net";
import { readFileSync } from "node:fs";
import type { Duplex } from "node:stream";

export type RequestHandler = (
  request: IncomingMessage | Http2ServerRequest,
  response: ServerResponse | Http2ServerResponse,
) => void;

/** Takes over HTTP/1.1 `Upgrade` requests (WebSocket); HTTP/2 has no upgrade. */
export interface UpgradeHandler {
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Asks every upgraded connection to close (part of `drain`). */
  closeConnections(): void;
}

export interface ListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly tlsCertFile: string;
  readonly tlsKeyFile: string;
  readonly handler: RequestHandler;
  /** Absent: upgrade requests are refused. */
  readonly upgrade?: UpgradeHandler;
  /** An HTTP/2 connection with no open stream and no frame for this long is closed. */
  readonly idleConnectionTimeoutMs: number;
  /**
   * Offered each HTTP/2 stream before Node's compatibility layer wraps it in a request and a response
   * (which costs memory per stream); returns true when it serves the stream itself.
   */
  readonly takeStream?: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;
}

export interface Listener {
  readonly port: number;
  readonly tls: boolean;
  /** Stops accepting; resolves when every connection is gone (after `destroyAll` at the latest). */
  close(): Promise<void>;
  /** Asks every connection to finish: HTTP/2 GOAWAY (open streams may end), idle HTTP/1.1 sockets closed, WebSockets closed. */
  drain(): void;
  /** Ends every open connection now. */
  destroyAll(): void;
  connectionCount(): number;
}

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n");

// Small windows and header tables keep the per-connection native memory low; chat frames are small.
const HTTP2_SETTINGS: http2.Settings = { maxConcurrentStreams: 100, initialWindowSize: 65_535, headerTableSize: 4096 };

/**
 * One port for everything. With TLS, ALPN chooses h2 or HTTP/1.1. Without TLS, Node's HTTP/2 server
 * speaks only prior-knowledge h2c, so the first bytes of each connection are read to hand it to the
 * HTTP/2 or the HTTP/1.1 server.
 */
export async function listen(options: ListenerOptions): Promise<Listener> {
  const sessions = new Set<Http2Session>();
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    // `on` rather than `once` here and below: each fires once, and a once-wrapper is memory per connection.
    socket.on("close", () => sockets.delete(socket));
  };
  const trackSession = (session: Http2Session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    // Also how a connection whose peer sent garbage ends: nghttp2 answers it with GOAWAY, but Node
    // (20) neither closes the socket nor tells us, so without this it would hold a descriptor for good.
    let openStreams = 0;
    session.on("stream", (stream) => {
      openStreams++;
      stream.on("close", () => openStreams--);
    });
    session.setTimeout(options.idleConnectionTimeoutMs, () => {
      if (openStreams === 0) session.close();
    });
  };

  // Upgraded sockets stay in `sockets` (tracked per connection), so connectionCount and destroyAll cover them.
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (options.upgrade) return options.upgrade.upgrade(request, socket, head);
    socket.end("HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
  };

  const tls = Boolean(options.tlsCertFile);
  let server: net.Server;
  let closeIdleHttp1 = () => {};
  if (tls) {
    const secure = http2.createSecureServer(
      { allowHTTP1: true, cert: readFileSync(options.tlsCertFile), key: readFileSync(options.tlsKeyFile), settings: HTTP2_SETTINGS },
      options.handler,
    );
    secure.on("session", trackSession);
    offerStreams(secure, options.takeStream);
    secure.on("secureConnection", track);
    // With allowHTTP1, an HTTP/1.1 connection is served by Node's HTTP/1.1 code, which emits `upgrade` here.
    secure.on("upgrade", onUpgrade);
    closeIdleHttp1 = () => (secure as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
    server = secure;
  } else {
    const h2 = http2.createServer({ settings: HTTP2_SETTINGS }, options.handler);
    h2.on("session", trackSession);
    offerStreams(h2, options.takeStream);
    const h1 = http.createServer(options.handler);
    h1.keepAliveTimeout = 5_000;
    h1.on("upgrade", onUpgrade);
    // Node tracks idle HTTP/1.1 connections only for a server that listens itself; this one is handed
    // sockets by the sniffer below, so closeIdleConnections() would see none. Count requests per socket.
    const inFlight = new Map<Socket, number>();
    let http1Draining = false;
    h1.on("connection", (socket: Socket) => {
      inFlight.set(socket, 0);
      socket.once("close", () => inFlight.delete(socket));
    });
    h1.on("request", (request: IncomingMessage, response: ServerResponse) => {
      const socket = request.socket;
      inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
      response.once("close", () => {
        const left = (inFlight.get(socket) ?? 1) - 1;
        inFlight.set(socket, left);
        if (http1Draining && left === 0) socket.end();
      });
    });
    // An upgraded socket belongs to the WebSocket server from then on; it closes it on drain.
    h1.on("upgrade", (request: IncomingMessage) => inFlight.delete(request.socket));
    closeIdleHttp1 = () => {
      http1Draining = true;
      for (const [socket, requests] of inFlight) if (requests === 0) socket.end();
    };
    server = net.createServer((socket) => {
      track(socket);
      socket.once("readable", () => {
        const head: Buffer | null = socket.read(Math.min(HTTP2_PREFACE.length, socket.readableLength)) ?? socket.read();
        if (head) socket.unshift(head);
        const isHttp2 = head !== null && HTTP2_PREFACE.subarray(0, head.length).equals(head.subarray(0, HTTP2_PREFACE.length));
        (isHttp2 ? h2 : h1).emit("connection", socket);
      });
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });

  const destroyAll = () => {
    for (const session of sessions) session.destroy();
    for (const socket of sockets) socket.destroy();
  };

  return {
    port: (server.address() as AddressInfo).port,
    tls,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    drain() {
      for (const session of sessions) if (!session.closed) session.close();
      closeIdleHttp1();
      options.upgrade?.closeConnections();
    },
    destroyAll,
    connectionCount: () => sockets.size,
  };
}

/**
 * Node's HTTP/2 server turns every stream into a request and a response through its own `stream`
 * listener, installed with the request handler; this puts `take` in front of it.
 */
function offerStreams(server: http2.Http2Server | http2.Http2SecureServer, take: ListenerOptions["takeStream"]): void {
  if (!take) return;
  const compatibility = server.listeners("stream") as ((...args: unknown[]) => void)[];
  server.removeAllListeners("stream");
  server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => {
    if (take(stream, headers)) return;
    for (const listener of compatibility) listener.call(server, stream, headers, ...rest);
  });
}
