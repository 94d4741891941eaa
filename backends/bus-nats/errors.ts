/**
 * Ends a subscription when events for its user were published but could not be carried to this
 * gateway (NATS was unreachable longer than the publisher's outbox could hold them). Like an overflow,
 * the subscriber resumes from the store; unlike one, it was not the subscriber's fault.
 */
export class BusEventsLostError extends Error {
  override readonly name = "BusEventsLostError";
}
