import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { GraphQLError, Kind, type ValueNode } from "graphql";
import type { Builder } from "../builder.js";

const MAX_UINT64 = 2n ** 64n - 1n;
const DIGITS = /^(0|[1-9][0-9]{0,19})$/;

function badUInt64(value: unknown): GraphQLError {
  return new GraphQLError(`UInt64 is a decimal string of an integer 0-18446744073709551615 (or a JSON number up to 2^53-1); got ${JSON.stringify(value)}`, {
    extensions: { code: "BAD_USER_INPUT", grpcCode: "invalid_argument" },
  });
}

function parseUInt64(value: unknown): bigint {
  let parsed: bigint | undefined;
  if (typeof value === "string" && DIGITS.test(value)) parsed = BigInt(value);
  else if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) parsed = BigInt(value);
  if (parsed === undefined || parsed > MAX_UINT64) throw badUInt64(value);
  return parsed;
}

function literalUInt64(node: ValueNode): bigint {
  // An integer literal is exact in the document's text, so it may go past 2^53 like a string.
  if (node.kind === Kind.STRING || node.kind === Kind.INT) return parseUInt64(node.value);
  throw badUInt64(node.kind);
}

/**
 * The project's convention for 64-bit numbers in JSON: seqs are uint64 (bigint in TypeScript), sent
 * as decimal strings so no client loses precision past 2^53.
 */
export function registerScalars(builder: Builder): void {
  builder.scalarType("UInt64", {
    description:
      "An unsigned 64-bit integer (a message seq, a count), serialized as a decimal string such as \"42\". " +
      "As input: a decimal string, an integer literal in the document, or a JSON number up to 2^53-1 in variables.",
    serialize: (value) => {
      const bigint = typeof value === "bigint" ? value : BigInt(value as number);
      if (bigint < 0n || bigint > MAX_UINT64) throw new GraphQLError(`${bigint} does not fit UInt64`);
      return bigint.toString();
    },
    specifiedByURL: "https://protobuf.dev/programming-guides/json/",
    parseValue: parseUInt64,
    parseLiteral: literalUInt64,
  });

  builder.scalarType("DateTime", {
    description: "A point in time, as an RFC 3339 string in UTC with milliseconds: \"2025-01-31T12:00:00.000Z\".",
    specifiedByURL: "https://scalars.graphql.org/andimarek/date-time",
    serialize: (value) => (value instanceof Date ? value : timestampDate(value as Timestamp)).toISOString(),
    parseValue: (value) => {
      const date = typeof value === "string" ? new Date(value) : undefined;
      if (!date || Number.isNaN(date.getTime())) throw new GraphQLError(`DateTime is an RFC 3339 string; got ${JSON.stringify(value)}`);
      return date;
    },
  });
}
