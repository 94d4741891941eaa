import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import type { ClientKind } from "./protocol.js";

const RESULTS = resolve(import.meta.dirname, "results");

export interface Step {
  /** Delivered messages per second offered (the send rate times the fan-out). */
  readonly offered: number;
  readonly sendRate: number;
  readonly delivered: number;
  /** Counted at the receivers, over the sending time. */
  readonly deliveredPerSecond: number;
  readonly deliveredShare: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly rejected: number;
  readonly serverCpuMicrosPerMessage: number;
  readonly serverCpuShare: number;
  readonly generatorCpuShare: number;
  /** Longest event-loop stall (ms, beyond the 10 ms sampling interval) during the step and its drain. */
  readonly serverStallMs: number;
  readonly generatorStallMs: number;
  /** 2 when the first try failed and this is the second; 0 for the extra step at half the knee. */
  readonly tries: number;
  readonly pass: boolean;
}

export interface Series {
  readonly server: string;
  readonly workload: string;
  readonly payloadBytes: number;
  readonly fanout: number;
  readonly steps: Step[];
  /** Highest passing offered rate; 0 when even the first step failed. */
  readonly knee: number;
  /** Every step passed: the knee is above the highest rate tried. */
  readonly ceiling: boolean;
  /** A step at half the knee, run after the series when the series did not reach that rate. */
  readonly halfKnee?: Step;
}

export interface IdleResult {
  readonly server: string;
  /** The gateway is measured twice: over Connect ("chat") and over graphql-ws ("chat-graphql"). */
  readonly client: ClientKind;
  readonly connections: number;
  readonly opened: number;
  readonly failed: number;
  readonly processes: number;
  readonly rssPerConnection: number;
  readonly heapPerConnection: number;
  readonly rssTotal: number;
}

export interface BenchResults {
  readonly startedAt: string;
  finishedAt?: string;
  /** The load average shows how much else ran on the machine: ratios within a run stay comparable, absolute figures do not. */
  readonly machine: { readonly cpus: number; readonly model: string; readonly node: string; readonly loadAverageAtStart?: number };
  readonly settings: Record<string, unknown>;
  readonly series: Series[];
  readonly idle: IdleResult[];
  readonly catchUp: { readonly server: string; readonly messages: number; readonly ms: number; readonly fillMs: number }[];
  leanClientCheck: string;
}

const WORKLOAD_NAMES: Record<string, string> = {
  direct: "1:1",
  group10: "10-member groups + 1:1",
  group500: "500-member group",
  graphql: "1:1 over GraphQL subscriptions (graphql-ws)",
};
const BASELINES = ["ws", "socketio", "graphql-ws"] as const;
const BASELINE_NAMES: Record<string, string> = { ws: "raw ws", socketio: "Socket.IO", "graphql-ws": "graphql-ws relay" };
/** Idle memory rows: the gateway over each of its device transports, against the baselines that speak alike. */
const IDLE_ROWS: { client: ClientKind; what: string; baselines: readonly string[]; targetKb: number }[] = [
  { client: "chat", what: "device stream over Connect/HTTP/2", baselines: ["ws", "socketio"], targetKb: 16 },
  { client: "chat-graphql", what: "live GraphQL subscription over graphql-ws", baselines: ["graphql-ws"], targetKb: 10 },
];
const NONE = "—";

const fmt = (value: number | undefined, digits = 0) =>
  value === undefined || Number.isNaN(value) ? NONE : value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ratio = (value: number | undefined, base: number | undefined) =>
  value === undefined || base === undefined || !Number.isFinite(value) || !Number.isFinite(base) || base === 0 ? NONE : `${(value / base).toFixed(2)}×`;

function kneeText(series: Series | undefined): string {
  if (!series) return NONE;
  if (series.knee === 0) return `< ${fmt(series.steps[0]?.offered)}`;
  return series.ceiling ? `≥ ${fmt(series.knee)}` : fmt(series.knee);
}

/** The step of `series` at `offered`, if it got that far. */
const stepAt = (series: Series | undefined, offered: number) => series?.steps.find((step) => step.offered === offered);

const halfKneeStep = (series: Series | undefined) => (series?.knee ? (stepAt(series, series.knee / 2) ?? series.halfKnee) : undefined);

/** Results written before the gateway was measured over graphql-ws name no client. */
const clientOf = (idle: IdleResult): ClientKind => idle.client ?? (idle.server.startsWith("chat") ? "chat" : (idle.server as ClientKind));

export function markdown(results: BenchResults): string {
  const named = [...results.series.map((series) => series.server), ...results.idle.map((idle) => idle.server), ...results.catchUp.map((entry) => entry.server)];
  const chatServers = [...new Set(named.filter((server) => server.startsWith("chat")))];
  const servers = [...BASELINES, ...chatServers];
  const stallLimit = Number(results.settings.stallLimitMs ?? 50);
  const header = ["figure", ...servers.map((server) => BASELINE_NAMES[server] ?? server)];
  for (const chat of chatServers) header.push(...BASELINES.map((baseline) => `${chat} ÷ ${BASELINE_NAMES[baseline]}`));
  const rows: string[][] = [];
  const row = (figure: string, values: Record<string, number | undefined>, text: (server: string) => string) => {
    const cells = [figure, ...servers.map(text)];
    for (const chat of chatServers) cells.push(...BASELINES.map((baseline) => ratio(values[chat], values[baseline])));
    rows.push(cells);
  };

  const groups = [...new Set(results.series.map((series) => `${series.workload}|${series.payloadBytes}`))];
  for (const group of groups) {
    const [workload, payload] = group.split("|");
    const find = (server: string) => results.series.find((series) => series.server === server && `${series.workload}|${series.payloadBytes}` === group);
    const label = `${WORKLOAD_NAMES[workload!] ?? workload}, ${payload} B`;
    const knees = Object.fromEntries(servers.map((server) => [server, find(server)?.knee || undefined]));
    row(`${label}: knee, delivered msg/s offered`, knees, (server) => kneeText(find(server)));
    const kneeSteps = Object.fromEntries(servers.map((server) => [server, stepAt(find(server), find(server)?.knee ?? -1)]));
    row(`${label}: delivered msg/s at the knee (counted at receivers)`, Object.fromEntries(servers.map((server) => [server, kneeSteps[server]?.deliveredPerSecond])), (server) =>
      fmt(kneeSteps[server]?.deliveredPerSecond),
    );
    // Latency and CPU compared at one rate for all: the first chat server's knee (or its first step).
    const reference = find(chatServers[0] ?? "") ;
    const at = reference ? (reference.knee || reference.steps[0]!.offered) : undefined;
    if (at === undefined) continue;
    const steps = Object.fromEntries(servers.map((server) => [server, stepAt(find(server), at)]));
    for (const [key, name] of [["p50", "p50"], ["p99", "p99"], ["p999", "p99.9"]] as const) {
      row(`${label}: ${name} ms at ${fmt(at)} msg/s`, Object.fromEntries(servers.map((server) => [server, steps[server]?.[key]])), (server) => fmt(steps[server]?.[key], 1));
    }
    row(
      `${label}: server CPU µs per delivered message at ${fmt(at)} msg/s`,
      Object.fromEntries(servers.map((server) => [server, steps[server]?.serverCpuMicrosPerMessage])),
      (server) => fmt(steps[server]?.serverCpuMicrosPerMessage, 1),
    );
    // Each server at half its own knee: how long it stalls with twice the headroom it needs.
    const halves = Object.fromEntries(servers.map((server) => [server, halfKneeStep(find(server))]));
    row(
      `${label}: longest event-loop stall at half the knee, ms (check ≤ ${stallLimit} ms; at msg/s)`,
      Object.fromEntries(servers.map((server) => [server, halves[server]?.serverStallMs])),
      (server) => {
        const step = halves[server];
        if (step?.serverStallMs === undefined) return NONE;
        return `${fmt(step.serverStallMs, 1)} ${step.serverStallMs <= stallLimit ? "✓" : "✗"} at ${fmt(step.offered)}`;
      },
    );
  }
  for (const count of [...new Set(results.idle.map((idle) => idle.connections))]) {
    for (const { client, what, baselines, targetKb } of IDLE_ROWS) {
      const find = (server: string) =>
        results.idle.find((idle) => idle.connections === count && idle.server === server && (server.startsWith("chat") ? clientOf(idle) === client : baselines.includes(server)));
      if (!chatServers.some((server) => find(server))) continue;
      const processes = Math.max(...servers.map((server) => find(server)?.processes ?? 1));
      const where = processes > 1 ? `over ${processes} server processes of ${fmt(count / processes)}` : "in 1 server process";
      const values = (key: "rssPerConnection" | "heapPerConnection") => Object.fromEntries(servers.map((server) => [server, find(server)?.[key]]));
      row(`RSS KB per idle ${what}, ${fmt(count)} open ${where} (target ≤ ${targetKb} KB)`, values("rssPerConnection"), (server) =>
        fmt((find(server)?.rssPerConnection ?? Number.NaN) / 1024, 1),
      );
      row(`V8 heap KB per idle ${what}, ${fmt(count)} open ${where}`, values("heapPerConnection"), (server) => fmt((find(server)?.heapPerConnection ?? Number.NaN) / 1024, 1));
    }
  }
  for (const catchUp of results.catchUp.slice(0, 1)) {
    const values = Object.fromEntries(results.catchUp.map((entry) => [entry.server, entry.ms]));
    row(`catch-up of ${fmt(catchUp.messages)} missed messages, ms (relays keep nothing)`, values, (server) => fmt(values[server]));
  }
  // A server or ratio with nothing in any row (a baseline not run, a ratio to a baseline of other workloads) is left out.
  const keep = header.map((_, column) => column === 0 || rows.some((cells) => cells[column] !== NONE));
  const render = (cells: string[]) => `| ${cells.filter((_, column) => keep[column]).join(" | ")} |`;
  const rule = header.map((_, column) => (column === 0 ? "---" : "---:"));
  return [render(header), render(rule), ...rows.map(render)].join("\n");
}

/**
 * Whether the load generator could have been the limit: its CPU and its own longest stall in the
 * steps that passed, and in the failed steps that ended a series (where it would have to be idle
 * enough for the failure to be the server's).
 */
function generatorLine(results: BenchResults): string {
  const steps = results.series.flatMap((series) => series.steps.map((step) => ({ series, step })));
  const where = ({ series, step }: (typeof steps)[number]) => `${series.server}, ${series.workload} ${series.payloadBytes} B at ${fmt(step.offered)} msg/s`;
  const worst = (subset: typeof steps) => {
    if (subset.length === 0) return "none";
    const cpu = subset.reduce((a, b) => (b.step.generatorCpuShare > a.step.generatorCpuShare ? b : a));
    const stall = subset.reduce((a, b) => ((b.step.generatorStallMs ?? 0) > (a.step.generatorStallMs ?? 0) ? b : a));
    return `at most ${fmt(cpu.step.generatorCpuShare * 100)} % of a core (${where(cpu)}), longest stall ${fmt(stall.step.generatorStallMs, 1)} ms (${where(stall)})`;
  };
  if (steps.length === 0) return "";
  return (
    `Load generator (one process, so one core at most): in the steps that passed ${worst(steps.filter(({ step }) => step.pass))}; ` +
    `in the failed steps that ended a series ${worst(steps.filter(({ series, step }) => !step.pass && step === series.steps.at(-1)))}.`
  );
}

/** p99 against offered rate, one panel per workload, one line per server; rendered by headless Chromium. */
function svg(results: BenchResults): string {
  const groups = [...new Set(results.series.map((series) => `${series.workload}|${series.payloadBytes}`))];
  const colours: Record<string, string> = { ws: "#2a7ab0", socketio: "#e08a1e", "graphql-ws": "#27ae60", "chat-embedded": "#c0392b", "chat-cluster": "#7d3c98" };
  const width = 420;
  const height = 300;
  const pad = { left: 56, right: 16, top: 34, bottom: 44 };
  const offered = results.series.flatMap((series) => series.steps.map((step) => step.offered));
  const [low, high] = [Math.min(...offered), Math.max(...offered, Math.min(...offered) * 2)];
  const rates = [...new Set([...(results.settings.clusterRates as number[]), ...(results.settings.rates as number[])])].filter((rate) => rate >= low && rate <= high).sort((a, b) => a - b);
  const x = (rate: number) => pad.left + ((Math.log2(rate) - Math.log2(low)) / (Math.log2(high) - Math.log2(low))) * (width - pad.left - pad.right);
  const y = (ms: number) => pad.top + (1 - (Math.log10(Math.min(Math.max(ms, 0.1), 10_000)) + 1) / 5) * (height - pad.top - pad.bottom);
  const panels = groups.map((group, index) => {
    const [workload, payload] = group.split("|");
    const ox = (index % 2) * width;
    const oy = Math.floor(index / 2) * height;
    const parts: string[] = [`<g transform="translate(${ox},${oy})">`, `<text x="${pad.left}" y="20" font-size="14" font-weight="bold">${WORKLOAD_NAMES[workload!] ?? workload}, ${payload} B: p99 latency</text>`];
    for (const ms of [0.1, 1, 10, 100, 1000, 10_000]) {
      parts.push(`<line x1="${pad.left}" x2="${width - pad.right}" y1="${y(ms)}" y2="${y(ms)}" stroke="${ms === 100 ? "#999" : "#eee"}" ${ms === 100 ? 'stroke-dasharray="4 3"' : ""}/>`);
      parts.push(`<text x="${pad.left - 6}" y="${y(ms) + 4}" font-size="11" text-anchor="end">${ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`}</text>`);
    }
    for (const rate of rates) {
      parts.push(`<text x="${x(rate)}" y="${height - pad.bottom + 16}" font-size="10" text-anchor="middle">${rate >= 1000 ? `${rate / 1000}k` : rate}</text>`);
    }
    parts.push(`<text x="${(width + pad.left) / 2}" y="${height - 8}" font-size="11" text-anchor="middle">offered delivered msg/s</text>`);
    let legend = 0;
    for (const series of results.series.filter((entry) => `${entry.workload}|${entry.payloadBytes}` === group)) {
      const colour = colours[series.server] ?? "#333";
      const points = series.steps.map((step) => `${x(step.offered).toFixed(1)},${y(step.p99).toFixed(1)}`).join(" ");
      parts.push(`<polyline points="${points}" fill="none" stroke="${colour}" stroke-width="2"/>`);
      for (const step of series.steps) parts.push(`<circle cx="${x(step.offered)}" cy="${y(step.p99)}" r="3" fill="${step.pass ? colour : "white"}" stroke="${colour}"/>`);
      parts.push(`<text x="${pad.left + 8}" y="${pad.top + 14 + legend * 14}" font-size="11" fill="${colour}">${BASELINE_NAMES[series.server] ?? series.server}</text>`);
      legend++;
    }
    parts.push("</g>");
    return parts.join("");
  });
  const rows = Math.ceil(groups.length / 2);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width * 2}" height="${height * rows}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${panels.join("")}</svg>`;
}

async function png(results: BenchResults, path: string): Promise<void> {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] });
  try {
    const page = await browser.newPage();
    await page.setContent(`<html><body style="margin:0">${svg(results)}</body></html>`);
    await page.locator("svg").screenshot({ path });
  } finally {
    await browser.close();
  }
}

export async function writeReport(results: BenchResults): Promise<string[]> {
  mkdirSync(RESULTS, { recursive: true });
  const stamp = results.startedAt.replace(/[:.]/g, "-");
  const json = `${JSON.stringify(results, null, 2)}\n`;
  const table = markdown(results);
  const load = results.machine.loadAverageAtStart === undefined ? "" : `, load average ${results.machine.loadAverageAtStart.toFixed(1)} at the start (other work shared the machine)`;
  const machine = `${results.machine.cpus} cores (${results.machine.model}), Node ${results.machine.node}${load}`;
  const md = [
    `# Benchmark ${results.startedAt.slice(0, 10)}`,
    "",
    `Machine: ${machine}. Command: \`${String(results.settings.command)}\`${results.settings.merged ? ` (${String(results.settings.merged)})` : ""}${results.settings.clusterSkipped ? ` (${String(results.settings.clusterSkipped)})` : ""}. Knee: the highest offered rate (delivered messages/s, doubling steps of ${String(results.settings.stepSeconds)} s) with p99 ≤ ${String(results.settings.p99LimitMs)} ms and ≥ 99.9 % delivered. Event-loop stall: the longest delay of the server's event loop during the step and its drain, beyond the ${String(results.settings.loopResolutionMs ?? 10)} ms sampling interval (the gateway's /metrics \`nodejs_eventloop_lag_max_seconds\`, scraped right before and right after the step; the relays: the same histogram asked over IPC). Ratios are the chat gateway's figure divided by the baseline's, measured in the same run by the same generator: above 1× is more (better for the knee and msg/s, worse for latency, CPU, stalls and memory).`,
    "",
    table,
    "",
    `Lean client check: ${results.leanClientCheck || "not run"}.`,
    "",
    generatorLine(results),
    "",
  ].join("\n");
  const paths = [join(RESULTS, `${stamp}.json`), join(RESULTS, "latest.json"), join(RESULTS, "latest.md")];
  writeFileSync(paths[0]!, json);
  writeFileSync(paths[1]!, json);
  writeFileSync(paths[2]!, md);
  // A run of idle memory only has no latency to draw.
  if (results.series.length > 0) {
    paths.push(join(RESULTS, "latest.png"));
    await png(results, paths[3]!);
  }
  return paths;
}
