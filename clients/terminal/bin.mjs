#!/usr/bin/env node
// The client is TypeScript run from source, like the gateway: tsx compiles it as it loads.
import { register } from "tsx/esm/api";

register();
await import("./main.ts");
