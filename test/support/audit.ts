import type { Message } from "../../gen/chat/v1/types_pb.js";

/**
 * The end-of-run audit of the delivery contract: every acknowledged message is present exactly once,
 * in seq order, with no gap, for every member device, and the server's history agrees.
 *
 * What a device "received" is whatever the test recorded across all of its streams (reconnects and
 * resumes included). Record it below the SDK's own de-duplication (see `raw`) to also catch a server
 * that sends a message twice; the SDK drops anything at or below its cursor, which would hide that.
 */

/** One acknowledged send: what the server promised to keep. */
export interface AckedSend {
  readonly conversationId: string;
  readonly messageId: string;
  readonly seq: bigint | number;
}

/** Everything one member device received in one conversation. */
export interface DeviceRecord {
  /** For the failure message, e.g. "carol/phone". */
  readonly name: string;
  /** Messages as the app saw them, in arrival order, across every stream the device had. */
  readonly messages: readonly Message[];
  /**
   * Optional: message frames exactly as the server sent them (before the SDK drops seqs at or below
   * its cursor), across every stream. No message id may appear twice here.
   */
  readonly raw?: readonly Message[];
  /**
   * The first seq this device must have. Default: the lowest acknowledged seq of the conversation (a
   * device that started live may have missed what came before it joined the run).
   */
  readonly fromSeq?: bigint | number;
}

export interface AuditInput {
  readonly conversationId: string;
  readonly acked: readonly AckedSend[];
  readonly devices: readonly DeviceRecord[];
  /** The conversation's full history from the server (e.g. ChatClient.allMessages), oldest first. */
  readonly history: readonly Message[];
}

export interface AuditReport {
  readonly problems: string[];
  /** Acked messages checked, and devices checked. */
  readonly acked: number;
  readonly devices: number;
  readonly historyLength: number;
}

const n = (seq: bigint | number) => Number(seq);

function describeSeqs(seqs: readonly number[]): string {
  if (seqs.length <= 12) return `[${seqs.join(", ")}]`;
  return `[${seqs.slice(0, 6).join(", ")}, ... (${seqs.length - 12} more) ..., ${seqs.slice(-6).join(", ")}]`;
}

/** Runs every check and returns what failed (empty: the contract held). */
export function auditConversation(input: AuditInput): AuditReport {
  const problems: string[] = [];
  const { conversationId } = input;
  const acked = input.acked.filter((send) => send.conversationId === conversationId);

  // 1. Acks: each message id once, each seq once.
  const ackById = new Map<string, number>();
  const ackBySeq = new Map<number, string>();
  for (const send of acked) {
    const seq = n(send.seq);
    const before = ackById.get(send.messageId);
    if (before !== undefined && before !== seq) problems.push(`message ${send.messageId} was acked with two seqs: ${before} and ${seq}`);
    ackById.set(send.messageId, seq);
    const other = ackBySeq.get(seq);
    if (other !== undefined && other !== send.messageId) problems.push(`seq ${seq} was acked for two messages: ${other} and ${send.messageId}`);
    ackBySeq.set(seq, send.messageId);
  }

  // 2. History: seqs 1..N with no gap or duplicate, every acked message at its acked seq.
  const history = input.history.filter((message) => message.conversationId === conversationId);
  const historySeqs = history.map((message) => n(message.seq));
  const firstBad = historySeqs.findIndex((seq, index) => seq !== index + 1);
  if (firstBad !== -1) problems.push(`history is not 1..${history.length} without gaps: at index ${firstBad} seq ${historySeqs[firstBad]} (${describeSeqs(historySeqs)})`);
  const historyIds = new Set(history.map((message) => message.messageId));
  if (historyIds.size !== history.length) problems.push(`history holds ${history.length - historyIds.size} duplicate message id(s)`);
  const historyBySeq = new Map(history.map((message) => [n(message.seq), message]));
  const missingFromHistory: string[] = [];
  for (const [messageId, seq] of ackById) {
    const stored = historyBySeq.get(seq);
    if (!stored) missingFromHistory.push(`${messageId}@${seq}`);
    else if (stored.messageId !== messageId) problems.push(`acked ${messageId} at seq ${seq}, but history has ${stored.messageId} there`);
  }
  if (missingFromHistory.length) problems.push(`${missingFromHistory.length} acked message(s) missing from history: ${missingFromHistory.slice(0, 10).join(", ")}`);

  const maxAcked = Math.max(0, ...ackById.values());
  const minAcked = ackById.size ? Math.min(...ackById.values()) : 1;

  // 3. Every device: from its first seq, exactly the history in order, at least up to the last ack.
  for (const device of input.devices) {
    const from = device.fromSeq === undefined ? minAcked : n(device.fromSeq);
    const got = device.messages.filter((message) => message.conversationId === conversationId && n(message.seq) >= from);
    const gotSeqs = got.map((message) => n(message.seq));
    const seen = new Map<string, number>();
    for (const message of got) seen.set(message.messageId, (seen.get(message.messageId) ?? 0) + 1);
    const duplicated = [...seen].filter(([, count]) => count > 1);
    if (duplicated.length) problems.push(`${device.name}: ${duplicated.length} message(s) received more than once, e.g. ${duplicated[0]![0]} x${duplicated[0]![1]}`);
    const orderBreak = gotSeqs.findIndex((seq, index) => seq !== from + index);
    if (orderBreak !== -1) {
      problems.push(
        `${device.name}: not seq ${from}, ${from + 1}, ... in order: at position ${orderBreak} got seq ${gotSeqs[orderBreak]}, expected ${from + orderBreak} (${describeSeqs(gotSeqs)})`,
      );
    }
    const last = gotSeqs.length ? gotSeqs[gotSeqs.length - 1]! : from - 1;
    if (last < maxAcked) problems.push(`${device.name}: received up to seq ${last} only, the last acked seq is ${maxAcked}`);
    const missingAcked = [...ackById].filter(([messageId, seq]) => seq >= from && !seen.has(messageId));
    if (missingAcked.length) problems.push(`${device.name}: ${missingAcked.length} acked message(s) never received, e.g. ${missingAcked.slice(0, 5).map(([id, seq]) => `${id}@${seq}`).join(", ")}`);
    for (const message of got) {
      const stored = historyBySeq.get(n(message.seq));
      if (stored && stored.messageId !== message.messageId) {
        problems.push(`${device.name}: seq ${message.seq} is ${message.messageId} here but ${stored.messageId} in history`);
        break;
      }
      if (stored && stored.text !== message.text) {
        problems.push(`${device.name}: seq ${message.seq} has other text than in history`);
        break;
      }
    }
    if (device.raw) {
      const rawCounts = new Map<string, number>();
      for (const message of device.raw) if (message.conversationId === conversationId) rawCounts.set(message.messageId, (rawCounts.get(message.messageId) ?? 0) + 1);
      const rawDuplicates = [...rawCounts].filter(([, count]) => count > 1);
      if (rawDuplicates.length) {
        problems.push(`${device.name}: the server sent ${rawDuplicates.length} message(s) more than once, e.g. ${rawDuplicates[0]![0]} x${rawDuplicates[0]![1]}`);
      }
    }
  }
  return { problems, acked: ackById.size, devices: input.devices.length, historyLength: history.length };
}

/** Throws, listing every problem, unless the audit holds. Returns the report for logging. */
export function assertAudit(input: AuditInput): AuditReport {
  const report = auditConversation(input);
  if (report.problems.length) {
    throw new Error(`delivery audit of ${input.conversationId} failed (${report.acked} acked, ${report.devices} devices):\n- ${report.problems.join("\n- ")}`);
  }
  if (report.acked === 0) throw new Error(`delivery audit of ${input.conversationId}: nothing was acknowledged, so nothing was checked`);
  return report;
}
