import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { describePushStoreContract } from "../../test/contracts/push-store-contract.js";
import { createSqlitePushStore } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "push-sqlite-"));
const paths = new WeakMap<object, string>();
let count = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describePushStoreContract(
  "sqlite",
  () => {
    const path = join(dir, `push-${++count}.db`);
    const store = createSqlitePushStore({ path });
    paths.set(store, path);
    return store;
  },
  {
    reopen: (closed) => {
      const path = paths.get(closed)!;
      const store = createSqlitePushStore({ path });
      paths.set(store, path);
      return store;
    },
  },
);
