import { readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import type { RequestHandler } from "./listener.js";
import { writeHead } from "./write-head.js";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
};

/**
 * The web client's files (clients/web), read once at start: a request can only ever name one of
 * them, so no path from the URL reaches the file system. `/` is index.html.
 */
export function createWebClientHandler(directory: string): { readonly paths: ReadonlySet<string>; readonly handle: RequestHandler } {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const name of readdirSync(directory)) {
    const type = CONTENT_TYPES[extname(name)];
    if (!type) continue;
    files.set(`/${name}`, { body: readFileSync(join(directory, name)), type });
  }
  const index = files.get("/index.html");
  if (index) files.set("/", index);
  return {
    paths: new Set(files.keys()),
    handle(request, response) {
      const path = (request.url ?? "").split("?", 1)[0] ?? "";
      const file = files.get(path);
      if (!file || (request.method !== "GET" && request.method !== "HEAD")) {
        writeHead(response, 404, { "content-type": "text/plain; charset=utf-8" });
        response.end("not found\n");
        return;
      }
      writeHead(response, 200, {
        "content-type": file.type,
        "content-length": String(file.body.length),
        // The client is served with the gateway that speaks its protocol; never mix versions.
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; style-src 'self'",
      });
      if (request.method === "HEAD") response.end();
      else response.end(file.body);
    },
  };
}
