import { ErrorReason, invalidArgument } from "../../services/errors.js";
import type { PushTargetInput } from "../../services/push/index.js";
import type { Builder } from "../builder.js";
import { attempt, type Outcome } from "./payloads.js";
import type { SharedTypes } from "./types.js";

interface PushSettings {
  readonly vapidPublicKey: string;
  readonly previews: boolean;
  readonly mutedConversationIds: readonly string[];
}

/** Push notifications for devices that are not connected: PushService. */
export function registerPush(builder: Builder, types: SharedTypes): void {
  const settings = builder.objectRef<PushSettings>("PushSettings").implement({
    description: "What a client needs to subscribe to pushes, and your push preferences.",
    fields: (t) => ({
      vapidPublicKey: t.exposeString("vapidPublicKey", {
        description: "The server's VAPID public key (uncompressed P-256 point, base64url): a browser's applicationServerKey.",
      }),
      previews: t.exposeBoolean("previews", { description: "Whether pushes to your devices may carry a preview of the message text." }),
      mutedConversationIds: t.exposeIDList("mutedConversationIds", { description: "The conversations you muted." }),
    }),
  });

  builder.queryField("pushSettings", (t) =>
    t.field({
      type: settings,
      description: "The VAPID key and your push preferences.",
      resolve: async (_root, _args, ctx) => ctx.services.push.settings(await ctx.principal()),
    }),
  );

  const webhook = builder.inputType("WebhookTargetInput", {
    description: "A webhook the server POSTs signed JSON to.",
    fields: (t) => ({ url: t.string({ required: true, description: "An http:// or https:// URL." }) }),
  });

  const webPush = builder.inputType("WebPushSubscriptionInput", {
    description: "A browser's PushSubscription (`PushSubscription.toJSON()`).",
    fields: (t) => ({
      endpoint: t.string({ required: true, description: "`endpoint`." }),
      p256dh: t.string({ required: true, description: "`keys.p256dh`: the subscription's P-256 public key, base64url." }),
      auth: t.string({ required: true, description: "`keys.auth`: the subscription's 16-byte auth secret, base64url." }),
    }),
  });

  const registerInput = builder.inputType("RegisterPushTargetInput", {
    description: "Where this device's pushes go: exactly one of `webhook` and `webPush`.",
    fields: (t) => ({
      webhook: t.field({ type: webhook, required: false, description: "A webhook." }),
      webPush: t.field({ type: webPush, required: false, description: "A browser's Web Push subscription." }),
    }),
  });

  const donePayload = (name: string, description: string) =>
    builder.objectRef<Outcome<true>>(name).implement({
      description,
      fields: (t) => ({
        ok: t.boolean({ nullable: true, description: "true when done; null when `userErrors` says why not.", resolve: (o) => o.value }),
        userErrors: t.field({ type: [types.userError], description: "Why it failed; empty on success.", resolve: (o) => [...o.userErrors] }),
      }),
    });

  builder.mutationField("registerPushTarget", (t) =>
    t.field({
      type: donePayload("RegisterPushTargetPayload", "Whether the target was set, or why not (PUSH_TARGET_INVALID)."),
      description: "Sets this device's push target, replacing the one it had.",
      args: { input: t.arg({ type: registerInput, required: true, description: "The target." }) },
      resolve: (_root, { input }, ctx) =>
        attempt(async () => {
          const principal = await ctx.principal();
          if ((input.webhook == null) === (input.webPush == null)) {
            throw invalidArgument(ErrorReason.PUSH_TARGET_INVALID, "give webhook or webPush (exactly one)", "webhook");
          }
          const target: PushTargetInput = input.webhook ? { case: "webhook", value: { url: input.webhook.url } } : { case: "webPush", value: { ...input.webPush! } };
          await ctx.services.push.registerTarget(principal, target);
          return true as const;
        }, { web_push: "webPush" }),
    }),
  );

  builder.mutationField("unregisterPushTarget", (t) =>
    t.field({
      type: donePayload("UnregisterPushTargetPayload", "Whether the target was removed."),
      description: "Removes this device's push target; pending pushes for it are dropped.",
      resolve: (_root, _args, ctx) =>
        attempt(async () => {
          await ctx.services.push.unregisterTarget(await ctx.principal());
          return true as const;
        }),
    }),
  );

  const mutedInput = builder.inputType("SetConversationMutedInput", {
    description: "Whether a conversation sends you pushes.",
    fields: (t) => ({
      conversationId: t.id({ required: true, description: "The conversation." }),
      muted: t.boolean({ required: true, description: "true: no pushes for it on any of your devices." }),
    }),
  });

  builder.mutationField("setConversationMuted", (t) =>
    t.field({
      type: donePayload("SetConversationMutedPayload", "Whether it was set, or why not (NOT_A_MEMBER)."),
      description: "Mutes or unmutes one conversation for you (all devices).",
      args: { input: t.arg({ type: mutedInput, required: true, description: "The conversation." }) },
      resolve: (_root, { input }, ctx) =>
        attempt(async () => {
          await ctx.services.push.setMuted(await ctx.principal(), String(input.conversationId), input.muted);
          return true as const;
        }),
    }),
  );

  const previewsInput = builder.inputType("SetPushPreviewsInput", {
    description: "Whether pushes may show message text.",
    fields: (t) => ({ enabled: t.boolean({ required: true, description: "true: pushes carry the first characters of the text." }) }),
  });

  builder.mutationField("setPushPreviews", (t) =>
    t.field({
      type: donePayload("SetPushPreviewsPayload", "Whether it was set."),
      description: "Whether pushes to your devices may carry a preview of the message text.",
      args: { input: t.arg({ type: previewsInput, required: true, description: "On or off." }) },
      resolve: (_root, { input }, ctx) =>
        attempt(async () => {
          await ctx.services.push.setPreviews(await ctx.principal(), input.enabled);
          return true as const;
        }),
    }),
  );
}
