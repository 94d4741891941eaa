/** What the orchestrator (run.ts) and the load generator processes (generator.ts) say to each other. */

/** A server process under test: the three relays (baselines) and the gateway. */
export type ServerKind = "ws" | "socketio" | "graphql-ws" | "chat";

/** How the generator's devices talk to a server: the gateway is reached over Connect or over graphql-ws. */
export type ClientKind = "ws" | "socketio" | "graphql-ws" | "chat" | "chat-graphql";

export interface Target {
  readonly kind: ClientKind;
  /** ws://… or http://… */
  readonly url: string;
}

export interface Device {
  readonly userId: string;
  /** The gateway's access token; empty for the relays. */
  readonly token: string;
  readonly conversations: readonly string[];
}

/** One kind of send: into `conversation`, from device `sender`, reaching `fanout` other devices. */
export type SendEntry = readonly [conversation: string, sender: number, fanout: number];

export interface StepRequest {
  readonly type: "step";
  readonly stepId: number;
  /** Offered sends per second. */
  readonly rate: number;
  readonly seconds: number;
  readonly payloadBytes: number;
  /** Cycled through in order, one entry per send. */
  readonly entries: readonly SendEntry[];
  /** How long to wait after the last send for stragglers. */
  readonly drainMs: number;
}

export interface StepResult {
  readonly sent: number;
  readonly expected: number;
  readonly delivered: number;
  readonly rejected: number;
  /** Latency percentiles in ms; NaN when nothing arrived. */
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  /** Share of one core the generator used during the step. */
  readonly generatorCpu: number;
  /** The generator's own longest event-loop stall during the step, ms. */
  readonly generatorStallMs: number;
}

export type ToGenerator =
  | { readonly type: "connect"; readonly target: Target; readonly devices: readonly Device[] }
  | StepRequest
  | { readonly type: "idle"; readonly target: Target; readonly count: number; readonly tokens: readonly string[] }
  | { readonly type: "close" };

export type FromGenerator =
  | { readonly type: "connected"; readonly ms: number }
  | { readonly type: "step"; readonly result: StepResult }
  | { readonly type: "idle"; readonly opened: number; readonly failed: number; readonly ms: number }
  | { readonly type: "closed" }
  | { readonly type: "error"; readonly message: string };
