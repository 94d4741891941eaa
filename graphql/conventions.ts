import { nestedTypes } from "@bufbuild/protobuf/reflect";
import type { DescFile } from "@bufbuild/protobuf";
import {
  getNamedType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  isSpecifiedScalarType,
  type GraphQLField,
  type GraphQLSchema,
} from "graphql";
import { file_chat_v1_accounts } from "../gen/chat/v1/accounts_pb.js";
import { file_chat_v1_attachments } from "../gen/chat/v1/attachments_pb.js";
import { file_chat_v1_errors } from "../gen/chat/v1/errors_pb.js";
import { file_chat_v1_groups } from "../gen/chat/v1/groups_pb.js";
import { file_chat_v1_messaging } from "../gen/chat/v1/messaging_pb.js";
import { file_chat_v1_presence } from "../gen/chat/v1/presence_pb.js";
import { file_chat_v1_push } from "../gen/chat/v1/push_pb.js";
import { file_chat_v1_sync } from "../gen/chat/v1/sync_pb.js";
import { file_chat_v1_types } from "../gen/chat/v1/types_pb.js";
import type { Counterpart, MessageParity } from "./parity.js";

/** Every file of the Connect API. */
export const PROTO_FILES: readonly DescFile[] = [
  file_chat_v1_accounts,
  file_chat_v1_attachments,
  file_chat_v1_errors,
  file_chat_v1_groups,
  file_chat_v1_messaging,
  file_chat_v1_presence,
  file_chat_v1_push,
  file_chat_v1_sync,
  file_chat_v1_types,
];

const camelCase = (name: string) => name.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());

/** Whether `Type.field` or `Type.field(argument)` exists in the schema. */
function exists(schema: GraphQLSchema, counterpart: string): boolean {
  const match = /^(\w+)\.(\w+)(?:\((\w+)\))?$/.exec(counterpart);
  if (!match) return false;
  const [, typeName, fieldName, argument] = match;
  const type = schema.getType(typeName!);
  if (!(isObjectType(type) || isInterfaceType(type) || isInputObjectType(type))) return false;
  const field = type.getFields()[fieldName!];
  if (!field) return false;
  return argument === undefined || ("args" in field && field.args.some((arg) => arg.name === argument));
}

function checkCounterpart(schema: GraphQLSchema, what: string, counterpart: Counterpart | undefined): string[] {
  if (counterpart === undefined) return [`${what} has no GraphQL counterpart and no reason why not (graphql/parity.ts)`];
  if (typeof counterpart !== "string") return counterpart.reason.trim() === "" ? [`${what}: the reason is empty`] : [];
  return exists(schema, counterpart) ? [] : [`${what}: its counterpart ${counterpart} is not in the schema`];
}

/**
 * Every RPC and every message field of the proto files against the parity table: the problems
 * found, none when every part has a counterpart that exists or a stated reason.
 */
export function checkParity(
  schema: GraphQLSchema,
  rpcs: Readonly<Record<string, Counterpart>>,
  messages: Readonly<Record<string, MessageParity>>,
  files: readonly DescFile[] = PROTO_FILES,
): string[] {
  const problems: string[] = [];
  for (const file of files) {
    for (const desc of nestedTypes(file)) {
      if (desc.kind === "service") {
        for (const method of desc.methods) problems.push(...checkCounterpart(schema, `rpc ${desc.typeName}.${method.name}`, rpcs[`${desc.typeName}.${method.name}`]));
      }
      if (desc.kind !== "message") continue;
      const parity = messages[desc.typeName];
      if (!parity) {
        problems.push(`message ${desc.typeName} is not in graphql/parity.ts`);
        continue;
      }
      if ("reason" in parity) continue;
      for (const field of desc.fields) {
        const what = `field ${desc.typeName}.${field.name}`;
        const given = parity.fields?.[field.name];
        const counterpart = given ?? (parity.type ? `${parity.type}.${camelCase(field.name)}` : parity.args ? `${parity.args}(${camelCase(field.name)})` : undefined);
        problems.push(...checkCounterpart(schema, what, counterpart));
      }
    }
  }
  return problems;
}

const described = (description: string | null | undefined) => typeof description === "string" && description.trim() !== "";

/**
 * The conventions an integrator expects (GitHub's and Shopify's APIs): a description on every type,
 * field, argument, input field and enum value; @specifiedBy on custom scalars; mutations with one
 * `input` and a payload with `userErrors`; Relay connections and the Node interface.
 */
export function checkConventions(schema: GraphQLSchema): string[] {
  const problems: string[] = [];
  const types = Object.values(schema.getTypeMap()).filter((type) => !type.name.startsWith("__") && !isSpecifiedScalarType(type));
  for (const type of types) {
    if (!described(type.description)) problems.push(`type ${type.name} has no description`);
    if (isScalarType(type) && !type.specifiedByURL) problems.push(`scalar ${type.name} has no @specifiedBy`);
    if (isEnumType(type)) {
      for (const value of type.getValues()) if (!described(value.description)) problems.push(`enum value ${type.name}.${value.name} has no description`);
    }
    if (isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (!described(field.description)) problems.push(`field ${type.name}.${field.name} has no description`);
        for (const arg of "args" in field ? field.args : []) {
          if (!described(arg.description)) problems.push(`argument ${type.name}.${field.name}(${arg.name}) has no description`);
        }
      }
    }
    if (isObjectType(type) && type.name.endsWith("Connection")) {
      const fields = type.getFields();
      for (const name of ["edges", "nodes", "pageInfo"]) if (!fields[name]) problems.push(`connection ${type.name} has no ${name}`);
      const edge = fields.edges && getNamedType(fields.edges.type);
      if (isObjectType(edge) && (!edge.getFields().cursor || !edge.getFields().node)) problems.push(`edge ${edge.name} needs cursor and node`);
    }
  }

  for (const mutation of Object.values(schema.getMutationType()?.getFields() ?? {})) {
    const args = mutation.args;
    if (args.length > 1 || (args.length === 1 && (args[0]!.name !== "input" || !isNonNullType(args[0]!.type) || !isInputObjectType(args[0]!.type.ofType)))) {
      problems.push(`mutation ${mutation.name} must take one argument, input: <Name>Input!`);
    }
    const payload = getNamedType(mutation.type);
    const userErrors = isObjectType(payload) ? payload.getFields().userErrors : undefined;
    if (!isObjectType(payload) || payload.name !== `${mutation.name[0]!.toUpperCase()}${mutation.name.slice(1)}Payload` || !userErrors || !isListOfUserErrors(userErrors)) {
      problems.push(`mutation ${mutation.name} must return ${mutation.name[0]!.toUpperCase()}${mutation.name.slice(1)}Payload with userErrors: [UserError!]!`);
    }
  }

  const node = schema.getType("Node");
  if (!isInterfaceType(node) || !schema.getQueryType()?.getFields().node) problems.push("the Node interface and Query.node are missing");
  for (const name of ["conversation", "group", "node"]) {
    const field = schema.getQueryType()?.getFields()[name];
    if (field && isNonNullType(field.type)) problems.push(`Query.${name} is a lookup: it must be nullable, so a miss keeps the rest of the data`);
  }
  return problems;
}

function isListOfUserErrors(field: GraphQLField<unknown, unknown>): boolean {
  const list = isNonNullType(field.type) ? field.type.ofType : undefined;
  return isListType(list) && isNonNullType(list.ofType) && getNamedType(list.ofType).name === "UserError";
}
