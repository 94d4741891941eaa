import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { pino } from "pino";
import { createBlobRoutes } from "../../gateway/blob-routes.js";
import { describeBlobStoreContract } from "../../test/contracts/blob-store-contract.js";
import { createLocalBlobStore } from "./index.js";

describeBlobStoreContract(
  "local directory",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "blob-local-"));
    let baseUrl = "";
    const store = createLocalBlobStore({ dir, secret: randomBytes(32), baseUrl: () => baseUrl });
    // The gateway's own route serves the URLs, as in the running server.
    const routes = createBlobRoutes(store, pino({ level: "silent" }));
    const server = createServer((request, response) => routes.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
      store,
      async dispose() {
        await new Promise((resolve) => server.close(resolve));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  { enforcesSignatures: true, enforcesExpiry: true },
);
