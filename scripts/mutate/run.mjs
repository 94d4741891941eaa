#!/usr/bin/env node
// Targeted mutation testing: applies each mutant of mutants.mjs to the source, runs the test files
// that should catch it, and reports which mutants the tests killed. See docs/testing.md.
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { mutants } from "./mutants.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { values: args } = parseArgs({
  options: {
    only: { type: "string" },
    list: { type: "boolean", default: false },
    baseline: { type: "boolean", default: true },
    "timeout-seconds": { type: "string", default: "240" },
    report: { type: "string", default: ".tmp/mutation/report.json" },
    help: { type: "boolean", default: false },
  },
  allowNegative: true,
});

if (args.help) {
  console.log(`npm run mutate [-- options]
  --only id,id        run only these mutants (ids from --list)
  --list              list the mutants and the tests meant to kill them
  --no-baseline       skip the first run that checks the chosen tests pass without any mutant
  --timeout-seconds N a mutant whose tests run longer than this counts as killed (timeout); default 240
  --report path       where the JSON report goes; default .tmp/mutation/report.json`);
  process.exit(0);
}

const chosen = args.only ? selectOnly(args.only.split(",").map((id) => id.trim())) : mutants;
for (const mutant of chosen) {
  const probe = mutatedSources(mutant);
  if (probe.error) fail(`mutant ${mutant.id} no longer applies: ${probe.error}`);
}
if (args.list) {
  for (const mutant of chosen) console.log(`${mutant.id.padEnd(34)} ${mutant.edits[0].file}\n${" ".repeat(35)}${mutant.tests.join(" ")}${mutant.grep ? ` -t "${mutant.grep}"` : ""}`);
  process.exit(0);
}

function selectOnly(ids) {
  const unknown = ids.filter((id) => !mutants.some((mutant) => mutant.id === id));
  if (unknown.length) fail(`unknown mutant id(s): ${unknown.join(", ")} (see --list)`);
  return mutants.filter((mutant) => ids.includes(mutant.id));
}

function fail(message) {
  console.error(`mutate: ${message}`);
  process.exit(2);
}

// Every edit must match exactly once: a mutant whose text drifted from the source is reported, never
// silently counted as killed or survived.
function mutatedSources(mutant) {
  const sources = new Map();
  for (const edit of mutant.edits) {
    const path = join(root, edit.file);
    const source = sources.get(path) ?? readFileSync(path, "utf8");
    const at = source.indexOf(edit.from);
    if (at < 0 || source.indexOf(edit.from, at + 1) >= 0) {
      return { error: `${edit.file}: the text to replace occurs ${at < 0 ? "nowhere" : "more than once"}: ${JSON.stringify(edit.from.slice(0, 80))}` };
    }
    sources.set(path, source.slice(0, at) + edit.to + source.slice(at + edit.from.length));
  }
  return { sources };
}

/** Originals of the files currently mutated, restored on every way out. */
const originals = new Map();
function restore() {
  for (const [path, text] of originals) writeFileSync(path, text);
  originals.clear();
}
let running;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    if (running) killGroup(running);
    restore();
    process.exit(130);
  });
}
process.on("exit", restore);

function killGroup(child) {
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

/** Runs vitest on the files; resolves with how it ended and the tail of its output. */
function runTests(files, grep, timeoutMs) {
  const vitest = join(root, "node_modules", ".bin", "vitest");
  const argv = ["run", "--bail=1", "--reporter=dot", ...files, ...(grep ? ["-t", grep] : [])];
  return new Promise((resolve) => {
    const child = spawn(vitest, argv, { cwd: root, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FORCE_COLOR: "0" } });
    running = child;
    let output = "";
    const keep = (chunk) => (output = (output + chunk.toString()).slice(-20_000));
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, timeoutMs);
    let timedOut = false;
    child.on("close", (code) => {
      clearTimeout(timer);
      running = undefined;
      // vitest's workers and the gateways they started live in the same process group.
      killGroup(child);
      resolve({ code, timedOut, output });
    });
  });
}

const plain = (text) => text.replace(/\x1b\[[0-9;]*m/g, "");

function firstFailure(output) {
  const line = plain(output).split("\n").find((text) => /AssertionError|Error:|FAIL .*>/.test(text));
  return line?.trim().slice(0, 200) ?? "";
}

/** A run that passed without running a test (a `grep` that matches none) proves nothing either way. */
const ranNoTest = (output) => !/Tests\s+.*\d+ (passed|failed)/.test(plain(output));

const timeoutMs = Number(args["timeout-seconds"]) * 1000;

if (args.baseline) {
  const groups = new Map();
  for (const mutant of chosen) {
    const key = `${mutant.tests.join(" ")}\0${mutant.grep ?? ""}`;
    groups.set(key, { tests: mutant.tests, grep: mutant.grep });
  }
  // One run per distinct file set; a test filter is dropped, so the whole files must pass.
  const files = [...new Set([...groups.values()].flatMap((group) => group.tests))].sort();
  console.log(`baseline: ${files.length} test files without any mutant`);
  const baseline = await runTests(files, undefined, timeoutMs * 2);
  if (baseline.code !== 0) {
    console.error(baseline.output.slice(-4_000));
    fail("the tests fail without any mutant; fix them first (or pass --no-baseline)");
  }
}

const results = [];
const started = Date.now();
for (const [index, mutant] of chosen.entries()) {
  const { sources } = mutatedSources(mutant);
  for (const [path, text] of sources) {
    originals.set(path, readFileSync(path, "utf8"));
    writeFileSync(path, text);
  }
  const t0 = Date.now();
  let outcome;
  try {
    outcome = await runTests(mutant.tests, mutant.grep, timeoutMs);
  } finally {
    restore();
  }
  if (outcome.code === 0 && ranNoTest(outcome.output)) {
    restore();
    fail(`mutant ${mutant.id}: no test ran (${mutant.tests.join(" ")}${mutant.grep ? ` -t "${mutant.grep}"` : ""}); fix its tests or grep`);
  }
  const status = outcome.timedOut ? "killed (timeout)" : outcome.code === 0 ? "SURVIVED" : "killed";
  const seconds = ((Date.now() - t0) / 1000).toFixed(0);
  results.push({ id: mutant.id, area: mutant.area, files: [...new Set(mutant.edits.map((edit) => edit.file))], what: mutant.what, tests: mutant.tests, grep: mutant.grep, status, seconds: Number(seconds), failure: status === "killed" ? firstFailure(outcome.output) : "" });
  console.log(`[${String(index + 1).padStart(2)}/${chosen.length}] ${status.padEnd(16)} ${mutant.id.padEnd(34)} ${seconds.padStart(4)} s  ${mutant.what}`);
}

const killed = results.filter((result) => result.status !== "SURVIVED");
const rate = results.length ? (100 * killed.length) / results.length : 0;
console.log(`\n${killed.length} of ${results.length} mutants killed: kill rate ${rate.toFixed(1)} % (${((Date.now() - started) / 60_000).toFixed(1)} min)`);
for (const area of [...new Set(results.map((result) => result.area))]) {
  const inArea = results.filter((result) => result.area === area);
  console.log(`  ${area.padEnd(12)} ${inArea.filter((result) => result.status !== "SURVIVED").length}/${inArea.length}`);
}
const survivors = results.filter((result) => result.status === "SURVIVED");
if (survivors.length) {
  console.log("survivors:");
  for (const survivor of survivors) console.log(`  ${survivor.id}: ${survivor.what} (${survivor.files.join(", ")})`);
}
const reportPath = join(root, args.report);
mkdirSync(dirname(reportPath), { recursive: true });
writeFileSync(reportPath, `${JSON.stringify({ date: new Date().toISOString(), command: `npm run mutate${args.only ? ` -- --only ${args.only}` : ""}`, killed: killed.length, total: results.length, killRate: Number(rate.toFixed(1)), results }, null, 2)}\n`);
console.log(`report: ${relative(root, reportPath)}`);
process.exit(survivors.length ? 1 : 0);
