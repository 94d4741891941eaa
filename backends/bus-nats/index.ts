export { createNatsBus } from "./nats-bus.js";
export type { BusLogger, NatsBusOptions } from "./nats-bus.js";
export { BusEventsLostError } from "./errors.js";
export { EnvelopeError } from "./envelope.js";
