import {
  GraphQLError,
  getNamedType,
  getOperationAST,
  getVariableValues,
  isInterfaceType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  valueFromAST,
  type ASTVisitor,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLOutputType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from "graphql";
import { isAsyncIterable, type Plugin } from "graphql-yoga";
import type { ListSize } from "./builder.js";
import { GRAPHQL_CODES } from "./errors.js";

/** A list of objects nobody annotated: assume this many, so such a list is never free. */
const UNANNOTATED_LIST_SIZE = 10;

export interface Measure {
  readonly depth: number;
  readonly cost: number;
}

type Variables = Readonly<Record<string, unknown>>;

function isList(type: GraphQLOutputType): boolean {
  return isListType(isNonNullType(type) ? type.ofType : type);
}

function listSizeOf(field: GraphQLField<unknown, unknown>): ListSize | undefined {
  return (field.extensions as { listSize?: ListSize } | undefined)?.listSize;
}

/** An argument's value as the resolver will see it (literal, variable or default). */
function argumentValue(field: GraphQLField<unknown, unknown>, node: FieldNode, name: string, variables: Variables): unknown {
  const definition = field.args.find((arg) => arg.name === name);
  if (!definition) return undefined;
  const given = node.arguments?.find((arg) => arg.name.value === name);
  if (!given) return definition.defaultValue;
  return valueFromAST(given.value, definition.type, variables as Record<string, unknown>);
}

function sizeOf(size: ListSize, field: GraphQLField<unknown, unknown>, node: FieldNode, variables: Variables): number {
  const clamp = (value: number) => Math.max(0, Math.min(value, size.maxSize));
  for (const name of size.slicingArguments ?? []) {
    const value = argumentValue(field, node, name, variables);
    if (typeof value === "number") return clamp(value);
  }
  let counted: number | undefined;
  for (const name of size.countArguments ?? []) {
    const value = argumentValue(field, node, name, variables);
    if (value !== undefined && value !== null) counted = (counted ?? 0) + (Array.isArray(value) ? value.length : 1);
  }
  return counted === undefined ? size.defaultSize : clamp(counted);
}

/**
 * Depth and cost of one operation.
 *
 * Depth: the longest chain of nested fields (`{ me { user { id } } }` is 3).
 *
 * Cost: every field selected costs 1 for each time it can appear in the result. A list multiplies
 * what is selected inside it by its size (see `ListSize`), taken from the arguments as the resolver
 * will get them: `messages(first: 100) { edges { node { id text } } }` costs 1 + 1 + 100 * (1 + 2) =
 * 302. Lists of objects without a declared size count as 10; lists of scalars cost 1.
 *
 * `__typename` costs 1 like any scalar. `__schema` and `__type` are left out of both: their nesting is
 * bounded by graphql-js's own MaxIntrospectionDepthRule (one of the specified rules) and their number
 * per document by graphql/guard.ts; turn introspection off to refuse them altogether.
 */
export function measureOperation(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  fragments: (name: string) => FragmentDefinitionNode | undefined,
  variables: Variables,
): Measure {
  function measure(selectionSet: SelectionSetNode, parent: GraphQLNamedType, multiplier: number, sized: ReadonlyMap<string, number>, seen: ReadonlySet<string>): Measure {
    let depth = 0;
    let cost = 0;
    const add = (part: Measure) => {
      depth = Math.max(depth, part.depth);
      cost += part.cost;
    };
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        add(measureField(selection, parent, multiplier, sized.get(selection.name.value), seen));
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        if (type) add(measure(selection.selectionSet, type, multiplier, sized, seen));
      } else {
        const name = selection.name.value;
        const fragment = fragments(name);
        // A cycle is NoFragmentCyclesRule's to report; here it just stops.
        if (!fragment || seen.has(name)) continue;
        const type = schema.getType(fragment.typeCondition.name.value);
        if (type) add(measure(fragment.selectionSet, type, multiplier, sized, new Set([...seen, name])));
      }
    }
    return { depth, cost };
  }

  /** `presized`: the list's size, given by its parent's `sizedFields` (a connection's page size for `edges`). */
  function measureField(node: FieldNode, parent: GraphQLNamedType, multiplier: number, presized: number | undefined, seen: ReadonlySet<string>): Measure {
    // `__typename` is a field like any other in the response (40,000 aliases of it are 40,000 entries).
    if (node.name.value === "__typename") return { depth: 0, cost: multiplier };
    if (node.name.value.startsWith("__")) return { depth: 0, cost: 0 };
    const field = isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[node.name.value] : undefined;
    // Unknown fields are FieldsOnCorrectTypeRule's to report.
    if (!field || !node.selectionSet) return { depth: 1, cost: multiplier };
    const declared = listSizeOf(field);
    const size = presized ?? (declared ? sizeOf(declared, field, node, variables) : isList(field.type) ? UNANNOTATED_LIST_SIZE : 1);
    const child = getNamedType(field.type);
    const inner = declared?.sizedFields
      ? measure(node.selectionSet, child, multiplier, new Map(declared.sizedFields.map((name) => [name, size])), seen)
      : measure(node.selectionSet, child, multiplier * size, new Map(), seen);
    return { depth: 1 + inner.depth, cost: multiplier + inner.cost };
  }

  const root = schema.getRootType(operation.operation);
  return root ? measure(operation.selectionSet, root, 1, new Map(), new Set()) : { depth: 0, cost: 0 };
}

const operationName = (operation: OperationDefinitionNode) => (operation.name ? `operation "${operation.name.value}"` : `this ${operation.operation}`);

/**
 * The depth limit, as a validation rule: it needs no variables, so it is checked once per document
 * text and cached with the validation result.
 */
export function queryDepthRule(maxDepth: number): ValidationRule {
  return function QueryDepthRule(context: ValidationContext): ASTVisitor {
    return {
      OperationDefinition(operation) {
        const { depth } = measureOperation(context.getSchema(), operation, (name) => context.getFragment(name) ?? undefined, {});
        if (depth <= maxDepth) return;
        context.reportError(
          new GraphQLError(`${operationName(operation)} nests fields ${depth} deep; at most ${maxDepth} is allowed`, {
            nodes: [operation],
            extensions: { code: GRAPHQL_CODES.tooDeep, grpcCode: "invalid_argument", metadata: { max: String(maxDepth), actual: String(depth) } },
          }),
        );
      },
    };
  };
}

/** The cost an operation reports in `extensions.cost`. */
export interface CostReport {
  /** The operation's estimated cost (see measureOperation). */
  readonly requested: number;
  /** The most one operation may cost (CHAT_GRAPHQL_MAX_COST). */
  readonly limit: number;
  /** What is left of the limit: how much more this operation could have asked for. */
  readonly remaining: number;
}

function measureCost(schema: GraphQLSchema, document: DocumentNode, name: string | null | undefined, rawVariables: unknown, maxCost: number): { report?: CostReport; error?: GraphQLError } {
  const operation = getOperationAST(document, name);
  if (!operation) return {};
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], (rawVariables ?? {}) as Record<string, unknown>);
  // Variables of the wrong type: execution reports them, nothing runs.
  if (coerced.errors) return {};
  const fragments = new Map(document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]));
  const { cost } = measureOperation(schema, operation, (fragment) => fragments.get(fragment), coerced.coerced);
  const report = { requested: cost, limit: maxCost, remaining: Math.max(0, maxCost - cost) };
  if (cost <= maxCost) return { report };
  const error = new GraphQLError(`${operationName(operation)} could cost ${cost} (fields times list sizes); at most ${maxCost} is allowed: ask for smaller pages or fewer fields`, {
    nodes: [operation],
    extensions: { code: GRAPHQL_CODES.tooCostly, grpcCode: "invalid_argument", metadata: { max: String(maxCost), actual: String(cost) } },
  });
  return { report, error };
}

function withCost<T extends { extensions?: Record<string, unknown> }>(result: T, cost: CostReport): T {
  return { ...result, extensions: { ...result.extensions, cost } };
}

/**
 * The cost limit, checked just before execution (HTTP and WebSocket alike), because page sizes
 * usually come in variables. An operation over the limit runs no resolver at all. Every query and
 * mutation result reports its cost in `extensions.cost` (refused ones too), so a client sees how close
 * it is before it is refused. A subscription is measured once when it starts; its events carry no
 * cost, because one event object is shared by every subscriber with the same selection.
 */
export function costLimitPlugin(maxCost: number): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const { report, error } = measureCost(args.schema, args.document, args.operationName, args.variableValues, maxCost);
      if (!report) return;
      if (error) {
        setResultAndStopExecution({ errors: [error], extensions: { cost: report } });
        return;
      }
      return {
        onExecuteDone({ result, setResult }) {
          if (!isAsyncIterable(result)) setResult(withCost(result, report));
        },
      };
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const { error } = measureCost(args.schema, args.document, args.operationName, args.variableValues, maxCost);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
  };
}
