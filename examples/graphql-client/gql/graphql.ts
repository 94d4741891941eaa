/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
/** The last seq you received in one conversation. */
export type ConversationCursorInput = {
  /** The conversation. */
  conversationId: string | number;
  /** The last seq you received there. */
  seq: string;
};

/** Which kind of event of the `messages` subscription. */
export type MessageFeedEventKind =
  /** Everything after your `resume` cursors has been sent; what follows is live. */
  | 'CAUGHT_UP'
  /** Last event: the server is stopping. Subscribe again with your cursors after `reconnectAfterMs`. */
  | 'GOING_AWAY'
  /** A message (`message`), in seq order within its conversation. */
  | 'MESSAGE'
  /** First event: `heads` holds the last seq of each of your conversations as the feed starts. */
  | 'READY';

/** A message to send: give `conversationId`, or `recipientUserId` to write to a user directly. */
export type SendMessageInput = {
  /** Up to 10 attachments you uploaded to this conversation (`createUpload`). */
  attachmentIds?: Array<string | number> | null | undefined;
  /** Your idempotency key: 8-64 characters of A-Z a-z 0-9 _ . : - (a UUID is fine). */
  clientMsgId: string;
  /** The conversation to send to. */
  conversationId?: string | number | null | undefined;
  /** A user: sends into your direct conversation with them, opened on first use. */
  recipientUserId?: string | number | null | undefined;
  /** 0-100000 characters (code points); empty only with attachments. */
  text?: string | null | undefined;
};

/** A new account. */
export type SignUpInput = {
  /** A name for this device ("Firefox on laptop"). */
  deviceName?: string | null | undefined;
  /** The name to show; none if left out. */
  displayName?: string | null | undefined;
  /** 8-1024 characters. */
  password: string;
  /** 3-32 characters: a-z, 0-9, '_', '.', '-' (lower-cased). */
  username: string;
};

export type SignUpMutationVariables = Exact<{
  input: SignUpInput;
}>;


export type SignUpMutation = { signUp: { session: { accessToken: string, user: { userId: string, username: string } } | null, userErrors: Array<{ code: string, field: string | null, message: string }> } };

export type SendMutationVariables = Exact<{
  input: SendMessageInput;
}>;


export type SendMutation = { sendMessage: { duplicate: boolean | null, message: { conversationId: string, seq: string, text: string } | null, userErrors: Array<{ code: string, field: string | null, message: string }> } };

export type HistoryQueryVariables = Exact<{
  conversationId: string | number;
  first?: number | null | undefined;
  after?: string | null | undefined;
  last?: number | null | undefined;
  before?: string | null | undefined;
}>;


export type HistoryQuery = { messages: { edges: Array<{ cursor: string, node: { seq: string, text: string } }>, pageInfo: { hasNextPage: boolean, hasPreviousPage: boolean, startCursor: string | null, endCursor: string | null } } | null };

export type FeedSubscriptionVariables = Exact<{
  resume?: Array<ConversationCursorInput> | ConversationCursorInput | null | undefined;
}>;


export type FeedSubscription = { messages: { kind: MessageFeedEventKind, reconnectAfterMs: number | null, heads: Array<{ conversationId: string, seq: string }> | null, message: { conversationId: string, seq: string, text: string } | null } };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}

export const SignUpDocument = new TypedDocumentString(`
    mutation SignUp($input: SignUpInput!) {
  signUp(input: $input) {
    session {
      accessToken
      user {
        userId
        username
      }
    }
    userErrors {
      code
      field
      message
    }
  }
}
    `, {"hash":"sha256:427fe634570546305947ece7586930d809a0294b894d8620c696a0ac36d948a0"}) as unknown as TypedDocumentString<SignUpMutation, SignUpMutationVariables>;
export const SendDocument = new TypedDocumentString(`
    mutation Send($input: SendMessageInput!) {
  sendMessage(input: $input) {
    duplicate
    message {
      conversationId
      seq
      text
    }
    userErrors {
      code
      field
      message
    }
  }
}
    `, {"hash":"sha256:cf20fddc53d8ea530effcd765c11492000a958198abe09049ea888dc91e958c0"}) as unknown as TypedDocumentString<SendMutation, SendMutationVariables>;
export const HistoryDocument = new TypedDocumentString(`
    query History($conversationId: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  messages(
    conversationId: $conversationId
    first: $first
    after: $after
    last: $last
    before: $before
  ) {
    edges {
      cursor
      node {
        seq
        text
      }
    }
    pageInfo {
      hasNextPage
      hasPreviousPage
      startCursor
      endCursor
    }
  }
}
    `, {"hash":"sha256:d5b4c2103049800ff5200a857387dc561e75b4d76985dbc72afd4dd1570386e2"}) as unknown as TypedDocumentString<HistoryQuery, HistoryQueryVariables>;
export const FeedDocument = new TypedDocumentString(`
    subscription Feed($resume: [ConversationCursorInput!]) {
  messages(resume: $resume) {
    kind
    heads {
      conversationId
      seq
    }
    message {
      conversationId
      seq
      text
    }
    reconnectAfterMs
  }
}
    `, {"hash":"sha256:fd4ffbd25a8bd387c0b6435492bdaaf0063699397150ece0f68a04f35d2464da"}) as unknown as TypedDocumentString<FeedSubscription, FeedSubscriptionVariables>;