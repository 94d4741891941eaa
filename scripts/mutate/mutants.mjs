// Hand-made mutants: each is a plausible bug in services/ or backends/store-sqlite/, with the test
// files that should catch it. `edits` replace text that must occur exactly once in `file`; `grep`
// narrows a slow file to the tests that matter (vitest -t). Areas: durability (ack after the fsync),
// delivery (dedupe, order, catch-up), authz (membership, visibility, tokens, roles), input (bad
// requests), accounts (what is stored).

const WRITER = "backends/store-sqlite/writer.ts";
const GROUP_COMMIT = "backends/store-sqlite/group-commit.ts";
const LOG = "backends/store-sqlite/log.ts";
const MESSAGING = "services/messaging/messaging-service.ts";
const SESSION = "services/messaging/device-session.ts";
const GROUPS = "services/groups/groups-service.ts";
const ACCOUNTS = "services/accounts/accounts-service.ts";
const SYNC = "services/sync/sync-service.ts";

const STORE_TEST = "backends/store-sqlite/store-sqlite.test.ts";
const WRITER_TEST = "backends/store-sqlite/writer-durability.test.ts";
const GROUP_COMMIT_TEST = "backends/store-sqlite/group-commit.test.ts";
const SESSION_TEST = "services/messaging/device-session.test.ts";
const JOIN_TEST = "services/messaging/group-join-visibility.test.ts";
const MESSAGING_UNIT = "services/messaging/messaging-service.test.ts";
const ACCOUNTS_TEST = "services/accounts/accounts-service.test.ts";
const GROUPS_UNIT = "services/groups/groups-service.test.ts";
const BAD_INPUT = "test/bad-input.test.ts";
const CONTRACT = "test/delivery-contract.test.ts";
const GROUPS_TEST = "test/groups.test.ts";
const RECEIPTS = "test/receipts-inbox.test.ts";
const ATTACHMENTS_TEST = "test/attachments.test.ts";
const PUSH_WEBHOOK = "test/push-webhook.test.ts";
const PUSH_WEBPUSH = "test/push-webpush.test.ts";
const ATTACHMENTS = "services/attachments/attachments-service.ts";
const PUSH = "services/push/push-service.ts";

const one = (file, from, to) => [{ file, from, to }];

/** @type {{ id: string, area: string, what: string, edits: { file: string, from: string, to: string }[], tests: string[], grep?: string }[]} */
export const mutants = [
  // durability: an ack promises the message survives a crash
  {
    id: "writer-ack-before-fsync",
    area: "durability",
    what: "the writer starts the WAL fsync but acks without waiting for it",
    edits: one(WRITER, "    afterCommit: wal?.sync,", "    afterCommit: wal && (() => (void wal.sync().catch(() => {}), Promise.resolve())),"),
    tests: [WRITER_TEST],
  },
  {
    id: "writer-no-fsync",
    area: "durability",
    what: "the writer commits with synchronous = NORMAL and never fsyncs the WAL",
    edits: one(WRITER, "    afterCommit: wal?.sync,", "    afterCommit: undefined,"),
    tests: [WRITER_TEST],
  },
  {
    id: "writer-leaves-normal",
    area: "durability",
    what: "after a batch the connection stays at synchronous = NORMAL for every other write",
    edits: one(WRITER, `          } finally {
            db.pragma("synchronous = FULL");
          }`, `          } finally {
            void 0;
          }`),
    tests: [WRITER_TEST],
  },
  {
    id: "connection-synchronous-normal",
    area: "durability",
    what: "connections open with synchronous = NORMAL instead of FULL",
    edits: one("backends/store-sqlite/connection.ts", `db.pragma("synchronous = FULL");`, `db.pragma("synchronous = NORMAL");`),
    tests: [STORE_TEST],
    grep: "runs WAL, synchronous FULL",
  },
  {
    id: "group-commit-settles-before-sync",
    area: "durability",
    what: "a batch settles as soon as it commits, before its afterCommit (the fsync)",
    edits: one(GROUP_COMMIT, "    if (!options.afterCommit) return settle();", "    settle();\n    if (!options.afterCommit) return;"),
    tests: [GROUP_COMMIT_TEST, WRITER_TEST],
  },
  {
    id: "group-commit-ignores-sync-failure",
    area: "durability",
    what: "a failed fsync acks the batch anyway",
    edits: one(GROUP_COMMIT, `      .then(settle, (error: unknown) => {
        for (const pending of batch) pending.reject(error);
      })`, `      .then(settle, () => settle())`),
    tests: [GROUP_COMMIT_TEST, WRITER_TEST],
  },
  {
    id: "group-commit-commits-during-sync",
    area: "durability",
    what: "the next batch commits while the previous fsync still runs",
    edits: one(GROUP_COMMIT, "    if (queue.length === 0 || syncing) return;", "    if (queue.length === 0) return;"),
    tests: [GROUP_COMMIT_TEST, WRITER_TEST],
  },

  // delivery: gapless seqs in send order, one copy per client_msg_id, catch-up in order
  {
    id: "group-commit-reorders-batch",
    area: "delivery",
    what: "a batch is written in reverse call order",
    edits: one(GROUP_COMMIT, "    const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);", "    const batch = queue.length <= maxBatch ? [...queue].reverse() : queue.slice(0, maxBatch);"),
    tests: [GROUP_COMMIT_TEST],
  },
  {
    id: "log-seq-skips",
    area: "delivery",
    what: "each append takes the seq after next, leaving gaps",
    edits: one(LOG, "SET last_seq = last_seq + 1 WHERE", "SET last_seq = last_seq + 2 WHERE"),
    tests: [STORE_TEST],
    grep: "assigns 1, 2, 3",
  },
  {
    id: "log-no-dedupe",
    area: "delivery",
    what: "a retried (sender, client_msg_id) stores a second copy",
    edits: one(LOG, "      if (original) return { message: original, duplicate: true };\n", ""),
    tests: [CONTRACT],
    grep: "retried client_msg_id",
  },
  {
    id: "send-fans-out-duplicate",
    area: "delivery",
    what: "a retried send is delivered to the members again",
    edits: one(MESSAGING, "if (!duplicate) {", "if (true) {"),
    tests: [MESSAGING_UNIT],
  },
  {
    id: "send-no-fan-out",
    area: "delivery",
    what: "a stored message is never published to the members' devices",
    edits: one(MESSAGING, `await bus.publish(memberIds, { kind: "message", message });`, ""),
    tests: [MESSAGING_UNIT],
  },
  {
    id: "session-forgets-delivered",
    area: "delivery",
    what: "a session does not record what it delivered, so the next catch-up sends it again",
    edits: one(SESSION, "    this.delivered.set(message.conversationId, message.seq);\n    // Measured", "    // Measured"),
    tests: [SESSION_TEST],
  },
  {
    id: "session-delivers-ahead-of-gap",
    area: "delivery",
    what: "a live message is delivered although an earlier seq is not readable yet (out of order)",
    edits: one(SESSION, "    if ((this.delivered.get(message.conversationId) ?? 0n) === message.seq - 1n) yield this.delivering(message);", "    yield this.delivering(message);"),
    tests: [SESSION_TEST],
  },
  {
    id: "session-skips-gap",
    area: "delivery",
    what: "catch-up delivers past a seq the store does not show yet, losing it",
    edits: one(SESSION, "          if (message.seq !== next) return this.retryLater();\n", ""),
    tests: [SESSION_TEST],
  },
  {
    id: "session-resume-ignores-cursor",
    area: "delivery",
    what: "a resuming device gets its conversations from the start, not from its cursor",
    edits: one(SESSION, "          if (from !== undefined) delivered.set(head.conversationId, from);\n", ""),
    tests: [SESSION_TEST],
  },
  {
    id: "session-resume-no-catch-up",
    area: "delivery",
    what: "a resuming device gets nothing it missed, only live traffic",
    edits: one(SESSION, "          if (head.lastSeq > (from ?? 0n)) yield* this.catchUp(head.conversationId, head.lastSeq + 1n);", "          if (from !== undefined) delivered.set(head.conversationId, head.lastSeq);"),
    tests: [CONTRACT],
    grep: "resumes a device",
  },
  {
    id: "read-mark-moves-back",
    area: "delivery",
    what: "a read watermark can move backwards",
    edits: one(LOG, "    if (seq <= readSeq(conversationId, userId)) return false;", "    if (seq === readSeq(conversationId, userId)) return false;"),
    tests: [STORE_TEST],
    grep: "only forwards",
  },

  {
    id: "delivery-cursor-moves-back",
    area: "delivery",
    what: "a device's delivery cursor can move backwards",
    edits: one("backends/store-sqlite/receipts.ts", "      WHERE excluded.seq > delivery_cursors.seq`", "      WHERE excluded.seq <> delivery_cursors.seq`"),
    tests: [STORE_TEST],
    grep: "monotone delivery cursor",
  },
  {
    id: "append-leaves-sender-unread",
    area: "delivery",
    what: "writing a message does not move its sender's read watermark",
    edits: one(LOG, "    moveReadMark(stored.conversationId, stored.senderUserId, seq, stored.sentAt.getTime());\n", ""),
    tests: [STORE_TEST],
    grep: "sender's read watermark on append",
  },
  {
    id: "read-range-includes-after",
    area: "delivery",
    what: "a read after seq N returns N again",
    edits: one("backends/store-sqlite/messages.ts", "`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?`", "`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq >= ? AND seq < ? ORDER BY seq ASC LIMIT ?`"),
    tests: [STORE_TEST],
    grep: "reads after a seq",
  },

  // authz: who may read, send and change what
  {
    id: "visible-range-no-member-check",
    area: "authz",
    what: "a non-member reads a foreign conversation's history",
    edits: one(MESSAGING, "    if (!member) throw notMember();", "    if (!member) return { afterSeq: 0n };"),
    tests: [BAD_INPUT],
    grep: "not in",
  },
  {
    id: "send-no-member-check",
    area: "authz",
    what: "a non-member sends into a foreign conversation",
    edits: one(MESSAGING, "await requireMember(conversationId, principal.userId);", ""),
    tests: [BAD_INPUT],
    grep: "not in",
  },
  {
    id: "visible-range-from-zero",
    area: "authz",
    what: "history is read from seq 0 instead of the member's joining",
    edits: one(MESSAGING, "      afterSeq: member.joinedSeq > 0n ? member.joinedSeq - 1n : 0n,", "      afterSeq: 0n,"),
    tests: [JOIN_TEST],
  },
  {
    id: "session-catch-up-from-zero",
    area: "authz",
    what: "catch-up reads from seq 0 instead of the member's joining",
    edits: one(SESSION, "      range = await messaging.visibleRange(conversationId, this.principal.userId);", "      range = { ...(await messaging.visibleRange(conversationId, this.principal.userId)), afterSeq: 0n };"),
    tests: [JOIN_TEST],
  },
  {
    id: "history-ignores-join",
    area: "authz",
    what: "a history page asked from seq 0 is not cut at the member's joining",
    edits: one(MESSAGING, "const clampAfter = (range: VisibleRange, afterSeq: bigint | undefined) => (afterSeq === undefined || afterSeq < range.afterSeq ? range.afterSeq : afterSeq);", "const clampAfter = (range: VisibleRange, afterSeq: bigint | undefined) => (afterSeq === undefined ? range.afterSeq : afterSeq);"),
    tests: [JOIN_TEST],
  },
  {
    id: "visible-range-ignores-leaving",
    area: "authz",
    what: "a removed member keeps reading the group after their removal",
    edits: one(MESSAGING, "      beforeSeq: member.leftSeq === undefined ? undefined : member.leftSeq + 1n,", "      beforeSeq: undefined,"),
    tests: [JOIN_TEST],
  },
  {
    id: "groups-no-role-check",
    area: "authz",
    what: "a plain member may add, remove and rename",
    edits: one(GROUPS, "    if (RANK[me.role] < RANK[role]) {", "    if (false) {"),
    tests: [GROUPS_TEST],
    grep: "refuses a non-member",
  },
  {
    id: "groups-former-member-acts",
    area: "authz",
    what: "a removed member may still change the group",
    edits: one(GROUPS, "    if (!group || !me || me.leftSeq !== undefined) {", "    if (!group || !me) {"),
    tests: [GROUPS_UNIT],
  },
  {
    id: "groups-admin-removes-owner",
    area: "authz",
    what: "an admin may remove the owner (or another admin)",
    edits: one(GROUPS, "      if (RANK[target.role] >= RANK[me.role]) {", "      if (false) {"),
    tests: [GROUPS_UNIT],
  },
  {
    id: "auth-accepts-revoked-device",
    area: "authz",
    what: "a logged-out device's access token still works",
    edits: one(ACCOUNTS, "      if (!device || device.revokedAt || device.userId !== principal.userId) {", "      if (!device) {"),
    tests: [BAD_INPUT],
    grep: "logged-out token",
  },
  {
    id: "logout-keeps-cached-device",
    area: "authz",
    what: "the store's device cache keeps a revoked device as logged in",
    edits: one("backends/store-sqlite/accounts.ts", `    async revokeDevice(deviceId, at) {
      devices.delete(deviceId);`, `    async revokeDevice(deviceId, at) {`),
    tests: [BAD_INPUT],
    grep: "logged-out token",
  },
  {
    id: "token-signature-unchecked",
    area: "authz",
    what: "an access token with a forged signature of the right length is accepted",
    edits: one("services/accounts/access-tokens.ts", "      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {", "      if (given.length !== expected.length) {"),
    tests: [BAD_INPUT],
    grep: "forged",
  },
  {
    id: "token-expiry-unchecked",
    area: "authz",
    what: "an expired access token is accepted",
    edits: one("services/accounts/access-tokens.ts", "      if (claims.exp * 1000 <= now.getTime()) {", "      if (false) {"),
    tests: [BAD_INPUT],
    grep: "expired token",
  },
  {
    id: "refresh-token-reusable",
    area: "authz",
    what: "a refresh token works more than once",
    edits: one(ACCOUNTS, "      if (!rotated) throw invalid();\n", ""),
    tests: [ACCOUNTS_TEST],
  },
  {
    id: "readers-include-later-joiners",
    area: "authz",
    what: "members who joined after a message are listed as having read it",
    edits: one(SYNC, ".filter((reader, index) => couldSee[index] && reader.userId !== message?.senderUserId)", ".filter((reader) => reader.userId !== message?.senderUserId)"),
    tests: [RECEIPTS],
    grep: "who read a group message",
  },

  {
    id: "store-removal-keeps-member",
    area: "authz",
    what: "the store records no leaving: a removed member stays a member",
    edits: one("backends/store-sqlite/conversations.ts", "`UPDATE members SET left_seq = ? WHERE conversation_id = ? AND user_id = ? AND left_seq IS NULL`", "`UPDATE members SET left_seq = left_seq WHERE ? IS NOT NULL AND conversation_id = ? AND user_id = ? AND left_seq IS NULL`"),
    tests: [JOIN_TEST, GROUPS_UNIT],
  },
  {
    id: "store-group-cap-unchecked",
    area: "authz",
    what: "the store lets a membership change pass the group's cap",
    edits: one("backends/store-sqlite/conversations.ts", "      if (after.size > change.maxMembers && after.size > current.length) throw new GroupFullError(conversationId, change.maxMembers);", ""),
    tests: [STORE_TEST],
    grep: "maxMembers",
  },
  {
    id: "store-rotation-ignores-old-token",
    area: "authz",
    what: "a refresh token rotates from any old token, not only the current one",
    edits: one("backends/store-sqlite/accounts.ts", "      WHERE device_id = ? AND refresh_token_hash = ? AND revoked_at IS NULL`", "      WHERE device_id = ? AND ? IS NOT NULL AND revoked_at IS NULL`"),
    tests: [ACCOUNTS_TEST],
  },

  // input: every bad request gets a typed error and changes nothing
  {
    id: "send-client-msg-id-unchecked",
    area: "input",
    what: "a malformed client_msg_id is accepted",
    edits: one(MESSAGING, "if (!CLIENT_MSG_ID.test(input.clientMsgId)) {", "if (false) {"),
    tests: [BAD_INPUT],
    grep: "bad client_msg_id",
  },
  {
    id: "send-blank-text",
    area: "input",
    what: "blank text (spaces only) is accepted",
    edits: one(MESSAGING, "if (input.text.trim().length === 0 && attachmentIds.length === 0) {", "if (input.text.length === 0 && attachmentIds.length === 0) {"),
    tests: [BAD_INPUT],
    grep: "empty and blank",
  },
  {
    id: "send-text-limit-off-by-one",
    area: "input",
    what: "text of exactly the maximum length is refused",
    edits: one(MESSAGING, "  for (const _ of text) if (++count > max) return true;", "  for (const _ of text) if (++count >= max) return true;"),
    tests: [BAD_INPUT],
    grep: "100,000 characters",
  },
  {
    id: "send-no-rate-limit",
    area: "input",
    what: "the send rate limit is never applied",
    edits: one(MESSAGING, "if (!decision.allowed) {", "if (false) {"),
    tests: [BAD_INPUT],
    grep: "rate-limits",
  },
  {
    id: "history-page-size-uncapped",
    area: "input",
    what: "a history page over the cap is served",
    edits: one(MESSAGING, "      if (input.limit > MAX_PAGE_SIZE) {", "      if (false) {"),
    tests: [BAD_INPUT],
    grep: "page size over the cap",
  },
  {
    id: "history-both-cursors",
    area: "input",
    what: "before_seq and after_seq together are accepted",
    edits: one(MESSAGING, "      if (input.beforeSeq !== undefined && input.afterSeq !== undefined) {", "      if (false) {"),
    tests: [BAD_INPUT],
    grep: "page size over the cap",
  },
  {
    id: "stream-hello-not-required",
    area: "input",
    what: "a stream may start with a frame other than hello",
    edits: one(SESSION, `    if (first.value.frame.case !== "hello") {`, "    if (false) {"),
    tests: [BAD_INPUT],
    grep: "requires hello first",
  },
  {
    id: "mark-read-past-head",
    area: "input",
    what: "a read mark past the conversation's last seq is accepted",
    edits: one(SYNC, "    if (seq < 1n || seq > head) {", "    if (seq < 1n) {"),
    tests: [RECEIPTS],
  },
  {
    id: "signup-short-password",
    area: "input",
    what: "a password under 8 characters is accepted",
    edits: one(ACCOUNTS, "    if (password.length < MIN_PASSWORD || password.length > MAX_PASSWORD) {", "    if (password.length > MAX_PASSWORD) {"),
    tests: [ACCOUNTS_TEST],
  },
  {
    id: "signup-username-unchecked",
    area: "input",
    what: "a username outside a-z 0-9 _ . - is accepted",
    edits: one(ACCOUNTS, "      if (!USERNAME.test(username)) {", "      if (username.length === 0) {"),
    tests: [ACCOUNTS_TEST],
  },
  {
    id: "lookup-uncapped",
    area: "input",
    what: "a lookup of more than 200 users is served",
    edits: one(ACCOUNTS, "      if (input.usernames.length + input.userIds.length > MAX_LOOKUP) {", "      if (false) {"),
    tests: [ACCOUNTS_TEST],
  },
  {
    id: "group-empty-name",
    area: "input",
    what: "a blank group name is accepted",
    edits: one(GROUPS, "    if (name.length === 0 || name.length > MAX_NAME) {", "    if (name.length > MAX_NAME) {"),
    tests: [GROUPS_UNIT],
  },
  {
    id: "group-add-unknown-user",
    area: "input",
    what: "adding a user id nobody has is accepted",
    edits: one(GROUPS, "      await requireUsers(joining);\n", ""),
    tests: [GROUPS_UNIT],
  },

  // attachments, typing, presence and push: the same rules on the other services
  {
    id: "upload-by-non-member",
    area: "authz",
    what: "a non-member may upload into a conversation",
    edits: one(ATTACHMENTS, "      if (!input.conversationId || !(await conversations.isMember(input.conversationId, principal.userId))) {", "      if (!input.conversationId) {"),
    tests: [ATTACHMENTS_TEST],
    grep: "only members upload",
  },
  {
    id: "download-by-non-member",
    area: "authz",
    what: "a non-member may download a conversation's attachment",
    edits: one(ATTACHMENTS, "      if (!info || !conversationId || !(await conversations.getMember(conversationId, principal.userId))) {", "      if (!info || !conversationId) {"),
    tests: [ATTACHMENTS_TEST],
    grep: "only members upload",
  },
  {
    id: "attach-someone-elses-upload",
    area: "authz",
    what: "a message may carry another user's upload",
    edits: one(ATTACHMENTS, " || info.metadata[META_UPLOADER] !== principal.userId", ""),
    tests: [ATTACHMENTS_TEST],
    grep: "only members upload",
  },
  {
    id: "attachment-size-uncapped",
    area: "input",
    what: "an upload over the size limit is accepted at CreateUpload",
    edits: one(ATTACHMENTS, "      if (input.sizeBytes > BigInt(options.maxBytes)) {", "      if (false) {"),
    tests: [ATTACHMENTS_TEST],
    grep: "oversize uploads",
  },
  {
    id: "typing-by-non-member",
    area: "authz",
    what: "a non-member may send typing into a conversation",
    edits: one("services/messaging/typing.ts", "      if (!conversationId || !(await options.conversations.isMember(conversationId, principal.userId))) {", "      if (!conversationId) {"),
    tests: ["test/graphql-bad-input.test.ts"],
    grep: "another user's conversation",
  },
  {
    id: "push-to-connected-device",
    area: "delivery",
    what: "a device that has the message on its stream also gets a push",
    edits: one(PUSH, "      .filter((target) => !muted.has(target.userId) && !connected.has(target.deviceId))", "      .filter((target) => !muted.has(target.userId))"),
    tests: [PUSH_WEBHOOK],
    grep: "none to one that is",
  },
  {
    id: "push-when-muted",
    area: "delivery",
    what: "a muted conversation still pushes",
    edits: one(PUSH, "      .filter((target) => !muted.has(target.userId) && !connected.has(target.deviceId))", "      .filter((target) => !connected.has(target.deviceId))"),
    tests: [PUSH_WEBHOOK],
    grep: "muted conversation",
  },
  {
    id: "push-no-retry",
    area: "delivery",
    what: "a push that failed once is dead-lettered without a retry",
    edits: one("services/push/push-worker.ts", "    } else if (job.attempts >= retry.maxAttempts) {", "    } else if (true) {"),
    tests: [PUSH_WEBHOOK],
    grep: "retries a failing receiver",
  },
  {
    id: "push-keeps-gone-target",
    area: "delivery",
    what: "a subscription the push service says is gone (410) is kept and pushed to again",
    edits: one("services/push/push-worker.ts", "      await store.targets.removeTarget(job.deviceId);\n", ""),
    tests: [PUSH_WEBPUSH],
    grep: "gone",
  },

  {
    id: "push-not-withdrawn-on-read",
    area: "delivery",
    what: "reading a message on one device leaves its pending push to the others in place",
    edits: one(PUSH, "      await push.readUpTo(principal.userId, conversationId, watermark).catch((error: unknown) => onError(error, \"push withdrawal\"));", ""),
    tests: [PUSH_WEBHOOK],
    grep: "withdraws a pending push",
  },

  // accounts: what is stored for a secret
  {
    id: "password-plaintext",
    area: "accounts",
    what: "passwords are stored and compared in plaintext",
    edits: [
      { file: ACCOUNTS, from: "passwordHash: await hasher.hash(input.password, options.passwordCost),", to: "passwordHash: input.password," },
      { file: ACCOUNTS, from: "if (!(await hasher.verify(input.password, user.passwordHash))) throw badCredentials();", to: "if (input.password !== user.passwordHash) throw badCredentials();" },
    ],
    tests: [ACCOUNTS_TEST],
  },
  {
    id: "password-any-same-length",
    area: "accounts",
    what: "any password whose key has the right length logs in",
    edits: one("services/accounts/password-hash.ts", "  return actual.length === expected.length && timingSafeEqual(actual, expected);", "  return actual.length === expected.length;"),
    tests: [ACCOUNTS_TEST],
  },
  {
    id: "refresh-token-plaintext",
    area: "accounts",
    what: "the refresh token is stored as is, not as its SHA-256",
    edits: [
      { file: ACCOUNTS, from: "      refreshTokenHash: sha256(refreshToken),", to: "      refreshTokenHash: refreshToken," },
      { file: ACCOUNTS, from: "        sha256(refreshToken),\n        sha256(next),", to: "        refreshToken,\n        next," },
    ],
    tests: [ACCOUNTS_TEST],
  },
];
