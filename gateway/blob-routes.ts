import { createReadStream } from "node:fs";
import { isRefusal, type BlobRefusal, type LocalBlobStore } from "../backends/blob-local/index.js";
import type { RequestHandler } from "./listener.js";
import type { Logger } from "./logger.js";
import { writeHead } from "./write-head.js";

/** A file name safe in a quoted header parameter, plus the exact one in RFC 5987 form. */
function contentDisposition(fileName: string): string {
  if (!fileName) return "attachment";
  const plain = fileName.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${plain}"; filename*=UTF-8''${encodeURIComponent(fileName)}`;
}

/**
 * PUT and GET of the local blob store's signed URLs (`/blobs/<key>?...`). Refusals answer JSON with
 * the ErrorReason name and what to do: `{"reason":"SIGNED_URL_EXPIRED","message":"..."}`.
 */
export function createBlobRoutes(store: LocalBlobStore, logger: Logger): { readonly pathPrefix: string; readonly handle: RequestHandler } {
  return {
    pathPrefix: store.pathPrefix,
    handle(request, response) {
      const [path = "", search = ""] = (request.url ?? "").split("?", 2);
      const key = path.slice(store.pathPrefix.length);
      const query = new URLSearchParams(search);
      const refuse = (refusal: BlobRefusal) => {
        if (response.headersSent) return;
        // HTTP/1.1: the rest of a refused body is not wanted; closing is cheaper than reading it.
        const close = request.httpVersionMajor === 1 && !request.complete ? { connection: "close" } : {};
        writeHead(response, refusal.status, { "content-type": "application/json", "cache-control": "no-store", ...close });
        response.end(JSON.stringify({ reason: refusal.reason, message: refusal.message }));
        request.resume();
      };
      const failed = (error: unknown) => {
        logger.error({ err: error, event: "blob_request_failed" }, "blob request failed");
        if (response.headersSent) response.destroy();
        else refuse({ status: 500, reason: "INVALID_ARGUMENT", message: "the server could not handle the file; retry later" });
      };

      if (request.method === "PUT") {
        const length = request.headers["content-length"];
        store
          .receive(key, query, request.headers["content-type"], Array.isArray(length) ? length[0] : length, request)
          .then((result) => {
            if (isRefusal(result)) return refuse(result);
            writeHead(response, 201, { "content-type": "application/json", "cache-control": "no-store" });
            response.end(JSON.stringify({ attachment_id: result.key, size_bytes: result.size, content_type: result.contentType }));
          })
          .catch(failed);
        return;
      }
      if (request.method === "GET" || request.method === "HEAD") {
        store
          .open(key, query)
          .then((result) => {
            if (isRefusal(result)) return refuse(result);
            writeHead(response, 200, {
              "content-type": result.info.contentType,
              "content-length": String(result.info.size),
              "content-disposition": contentDisposition(decodeURIComponent(result.info.metadata["file-name"] ?? "")),
              // The bytes are whatever a user uploaded: never let a browser run them as this origin's page.
              "x-content-type-options": "nosniff",
              "content-security-policy": "sandbox",
              "cache-control": "private, max-age=60",
            });
            if (request.method === "HEAD") return void response.end();
            createReadStream(result.path).on("error", failed).pipe(response as NodeJS.WritableStream);
          })
          .catch(failed);
        return;
      }
      refuse({ status: 405, reason: "INVALID_ARGUMENT", message: "signed blob URLs take PUT (upload) or GET (download)" });
    },
  };
}
