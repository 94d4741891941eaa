import SchemaBuilder from "@pothos/core";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { GraphQLContext } from "./context.js";

export interface ChatSchemaTypes {
  Context: GraphQLContext;
  Scalars: {
    UInt64: { Input: bigint; Output: bigint };
    DateTime: { Input: Date; Output: Timestamp | Date };
  };
  // Output fields are non-null unless a module says otherwise: the services always answer in full.
  DefaultFieldNullability: false;
}

export type Builder = PothosSchemaTypes.SchemaBuilder<PothosSchemaTypes.ExtendDefaultTypes<ChatSchemaTypes>>;

/**
 * A fresh builder per schema build (no module-level builder): each schema module gets it as an
 * argument and registers its own types and fields.
 */
export function createBuilder(): Builder {
  return new SchemaBuilder<ChatSchemaTypes>({ defaultFieldNullability: false });
}

/**
 * How big a list field's result can be, for the cost limit (graphql/limits.ts). Modelled on the
 * `@listSize` directive of the GraphQL cost spec: the size is the value of the first slicing
 * argument given (`first: 20`, from a literal or a variable), or the number of items in the counted
 * list arguments (`userIds: [...]`), else `defaultSize`; never more than `maxSize` (the services
 * refuse larger pages anyway). With `sizedFields` the size applies to those child fields (a
 * connection's `edges` and `nodes`) instead of the field itself.
 */
export interface ListSize {
  readonly slicingArguments?: readonly string[];
  readonly countArguments?: readonly string[];
  readonly defaultSize: number;
  readonly maxSize: number;
  readonly sizedFields?: readonly string[];
}

export const listSize = (size: ListSize) => ({ listSize: size });
