/* eslint-disable */
import * as types from './graphql.js';



/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  mutation SignUp($input: SignUpInput!) {\n    signUp(input: $input) {\n      session { accessToken user { userId username } }\n      userErrors { code field message }\n    }\n  }\n": typeof types.SignUpDocument,
    "\n  mutation Send($input: SendMessageInput!) {\n    sendMessage(input: $input) {\n      duplicate\n      message { conversationId seq text }\n      userErrors { code field message }\n    }\n  }\n": typeof types.SendDocument,
    "\n  query History($conversationId: ID!, $first: Int, $after: String, $last: Int, $before: String) {\n    messages(conversationId: $conversationId, first: $first, after: $after, last: $last, before: $before) {\n      edges { cursor node { seq text } }\n      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }\n    }\n  }\n": typeof types.HistoryDocument,
    "\n  subscription Feed($resume: [ConversationCursorInput!]) {\n    messages(resume: $resume) {\n      kind\n      heads { conversationId seq }\n      message { conversationId seq text }\n      reconnectAfterMs\n    }\n  }\n": typeof types.FeedDocument,
};
const documents: Documents = {
    "\n  mutation SignUp($input: SignUpInput!) {\n    signUp(input: $input) {\n      session { accessToken user { userId username } }\n      userErrors { code field message }\n    }\n  }\n": types.SignUpDocument,
    "\n  mutation Send($input: SendMessageInput!) {\n    sendMessage(input: $input) {\n      duplicate\n      message { conversationId seq text }\n      userErrors { code field message }\n    }\n  }\n": types.SendDocument,
    "\n  query History($conversationId: ID!, $first: Int, $after: String, $last: Int, $before: String) {\n    messages(conversationId: $conversationId, first: $first, after: $after, last: $last, before: $before) {\n      edges { cursor node { seq text } }\n      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }\n    }\n  }\n": types.HistoryDocument,
    "\n  subscription Feed($resume: [ConversationCursorInput!]) {\n    messages(resume: $resume) {\n      kind\n      heads { conversationId seq }\n      message { conversationId seq text }\n      reconnectAfterMs\n    }\n  }\n": types.FeedDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SignUp($input: SignUpInput!) {\n    signUp(input: $input) {\n      session { accessToken user { userId username } }\n      userErrors { code field message }\n    }\n  }\n"): typeof import('./graphql.js').SignUpDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation Send($input: SendMessageInput!) {\n    sendMessage(input: $input) {\n      duplicate\n      message { conversationId seq text }\n      userErrors { code field message }\n    }\n  }\n"): typeof import('./graphql.js').SendDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query History($conversationId: ID!, $first: Int, $after: String, $last: Int, $before: String) {\n    messages(conversationId: $conversationId, first: $first, after: $after, last: $last, before: $before) {\n      edges { cursor node { seq text } }\n      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }\n    }\n  }\n"): typeof import('./graphql.js').HistoryDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription Feed($resume: [ConversationCursorInput!]) {\n    messages(resume: $resume) {\n      kind\n      heads { conversationId seq }\n      message { conversationId seq text }\n      reconnectAfterMs\n    }\n  }\n"): typeof import('./graphql.js').FeedDocument;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
