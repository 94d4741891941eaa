import { ErrorReason, invalidArgument } from "../../services/errors.js";
import type { Builder, ChatSchemaTypes } from "../builder.js";

type Types = PothosSchemaTypes.ExtendDefaultTypes<ChatSchemaTypes>;
type OutputRef<T> = PothosSchemaTypes.ObjectRef<Types, T, T> | PothosSchemaTypes.InterfaceRef<Types, T, T>;

export interface PageInfo {
  readonly hasNextPage: boolean;
  readonly hasPreviousPage: boolean;
  readonly startCursor: string | null;
  readonly endCursor: string | null;
}

/** One page of a connection: the nodes with their cursors, and where the page lies. */
export interface Page<T> {
  readonly nodes: readonly T[];
  readonly cursors: readonly string[];
  readonly hasNextPage: boolean;
  readonly hasPreviousPage: boolean;
  /** Set when the whole list is at hand (the lists read whole: groups, members, users). */
  readonly totalCount?: number;
}

export interface SliceArguments {
  readonly first?: number | null;
  readonly after?: string | null;
  readonly last?: number | null;
  readonly before?: string | null;
}

const POSITION = /^[0-9]{1,9}$/;

function position(cursor: string | null | undefined, argument: string, length: number): number | undefined {
  if (cursor === null || cursor === undefined) return undefined;
  const decoded = Buffer.from(cursor, "base64url").toString("utf8");
  const at = decoded.startsWith("at:") ? decoded.slice(3) : "";
  if (!POSITION.test(at) || Number(at) >= length + 1) {
    throw invalidArgument(ErrorReason.INVALID_CURSOR, `${argument} is not a cursor of this list (take one from an edge or from pageInfo)`, argument);
  }
  return Number(at);
}

const positionCursor = (index: number) => Buffer.from(`at:${index}`).toString("base64url");

function checkCount(value: number | null | undefined, argument: string, max: number): void {
  if (value === null || value === undefined) return;
  if (value < 0) throw invalidArgument(ErrorReason.INVALID_ARGUMENT, `${argument} must not be negative`, argument);
  if (value > max) throw invalidArgument(ErrorReason.PAGE_SIZE_TOO_LARGE, `${argument} is at most ${max}`, argument, { max: String(max) });
}

/**
 * Relay's slicing of a list the service returns whole (a user's groups, a group's members, looked-up
 * users): `after`/`before` narrow it, then `first` keeps the head and `last` the tail. Cursors are
 * positions, so they stay valid while the list does not change.
 */
export function sliceList<T>(items: readonly T[], args: SliceArguments, defaultSize: number, maxSize: number): Page<T> {
  checkCount(args.first, "first", maxSize);
  checkCount(args.last, "last", maxSize);
  let start = (position(args.after, "after", items.length) ?? -1) + 1;
  let end = Math.min(position(args.before, "before", items.length) ?? items.length, items.length);
  if (args.first != null) end = Math.min(end, start + args.first);
  if (args.last != null) start = Math.max(start, end - args.last);
  if (args.first == null && args.last == null) end = Math.min(end, start + defaultSize);
  start = Math.min(start, end);
  const nodes = items.slice(start, end);
  return {
    nodes,
    cursors: nodes.map((_, index) => positionCursor(start + index)),
    hasNextPage: end < items.length,
    hasPreviousPage: start > 0,
    totalCount: items.length,
  };
}

/** PageInfo of a page. */
export const pageInfoOf = (page: Page<unknown>): PageInfo => ({
  hasNextPage: page.hasNextPage,
  hasPreviousPage: page.hasPreviousPage,
  startCursor: page.cursors[0] ?? null,
  endCursor: page.cursors.at(-1) ?? null,
});

export function registerPageInfo(builder: Builder) {
  return builder.objectRef<PageInfo>("PageInfo").implement({
    description: "Where a page of a connection lies (the Relay cursor connections specification).",
    fields: (t) => ({
      hasNextPage: t.exposeBoolean("hasNextPage", { description: "More items follow the last one of this page: pass `endCursor` as `after`." }),
      hasPreviousPage: t.exposeBoolean("hasPreviousPage", { description: "More items precede the first one of this page: pass `startCursor` as `before`." }),
      startCursor: t.exposeString("startCursor", { nullable: true, description: "The first edge's cursor; null for an empty page." }),
      endCursor: t.exposeString("endCursor", { nullable: true, description: "The last edge's cursor; null for an empty page." }),
    }),
  });
}

/**
 * `<Name>Connection` and `<Name>Edge` for a node type: `edges { cursor node }`, `nodes` (the same
 * nodes without cursors), `pageInfo`, and `totalCount` when the list is read whole.
 */
export function connectionType<T>(
  builder: Builder,
  pageInfo: ReturnType<typeof registerPageInfo>,
  name: string,
  node: OutputRef<T>,
  description: string,
  withTotalCount: boolean,
) {
  const edge = builder.objectRef<{ node: T; cursor: string }>(`${name}Edge`).implement({
    description: `One item of a ${name}Connection with its cursor.`,
    fields: (t) => ({
      cursor: t.exposeString("cursor", { description: "Pass as `after` (or `before`) to page from this item." }),
      node: t.field({ type: node, description: "The item.", resolve: (e) => e.node as never }),
    }),
  });
  return builder.objectRef<Page<T>>(`${name}Connection`).implement({
    description,
    fields: (t) => ({
      edges: t.field({
        type: [edge],
        description: "The items of this page with their cursors.",
        resolve: (page) => page.nodes.map((item, index) => ({ node: item, cursor: page.cursors[index]! })),
      }),
      nodes: t.field({ type: [node], description: "The items of this page, when you need no cursors.", resolve: (page) => [...page.nodes] }),
      pageInfo: t.field({ type: pageInfo, description: "Where this page lies.", resolve: pageInfoOf }),
      ...(withTotalCount
        ? { totalCount: t.int({ description: "How many items the whole list has.", resolve: (page) => page.totalCount ?? page.nodes.length }) }
        : {}),
    }),
  });
}
