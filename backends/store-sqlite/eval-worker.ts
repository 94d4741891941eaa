import { Worker } from "node:worker_threads";

/**
 * A worker running `source` as CommonJS. A worker inherits its process's flags, and a process started
 * with `--input-type=module -e` would make the source ESM, where `require` does not exist: that flag
 * (for the main script only) is left out. Otherwise the flags are inherited as they are: given
 * explicitly, per-process ones such as V8's heap sizes are refused.
 */
export function startEvalWorker(source: string, workerData: unknown): Worker {
  const execArgv: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const arg = process.execArgv[i]!;
    if (arg === "--input-type") i++;
    else if (!arg.startsWith("--input-type=")) execArgv.push(arg);
  }
  const inherit = execArgv.length === process.execArgv.length;
  return new Worker(source, { eval: true, workerData, ...(inherit ? {} : { execArgv }) });
}
