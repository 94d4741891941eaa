import {
  createSourceEventStream,
  execute,
  getOperationAST,
  Kind,
  visit,
  type ASTNode,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FragmentDefinitionNode,
  type SelectionSetNode,
} from "graphql";
import type { Plugin } from "graphql-yoga";

type Result = ExecutionResult | Promise<ExecutionResult>;

/**
 * Results by selection key, for events that reach many subscriptions as one object (a message fanned
 * out in-process to a group's members). Weak, so an entry lives exactly as long as its event.
 */
const resultsByEvent = new WeakMap<object, Map<string, Result>>();

/**
 * Marks an event whose every subscriber with the same selection gets the same result, so it is
 * executed once per selection rather than once per subscriber. Only for events that carry nothing
 * about the viewer, under a subscription field whose `resolve` reads the event alone (not its
 * arguments) and whose types' fields never read the context: the result is computed with the first
 * subscriber's context and handed to the others.
 */
export function shareEvent<T extends object>(event: T): T {
  if (!resultsByEvent.has(event)) resultsByEvent.set(event, new Map());
  return event;
}

const documentIds = new WeakMap<DocumentNode, number>();
let nextDocumentId = 0;

/** Per document and operation name: the variables its selection (below the root fields' own arguments) reads. */
const selectionVariables = new WeakMap<DocumentNode, Map<string, readonly string[]>>();

/**
 * The variables an event's execution depends on. The root field's arguments are left out: they
 * shape the subscription (`resume` cursors differ per subscriber), not what an event resolves to.
 */
function variablesBelowRoot(document: DocumentNode, operationName: string | null | undefined): readonly string[] {
  let byOperation = selectionVariables.get(document);
  if (!byOperation) selectionVariables.set(document, (byOperation = new Map()));
  const name = operationName ?? "";
  const known = byOperation.get(name);
  if (known) return known;
  const operation = getOperationAST(document, operationName);
  const fragments = new Map(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]),
  );
  const found = new Set<string>();
  const seen = new Set<string>();
  const fragment = (name: string) => {
    if (seen.has(name)) return undefined;
    seen.add(name);
    return fragments.get(name);
  };
  const collect = (node: ASTNode) =>
    visit(node, {
      Variable: (variable) => void found.add(variable.name.value),
      FragmentSpread: (spread) => {
        const spreadFragment = fragment(spread.name.value);
        if (spreadFragment) collect(spreadFragment.selectionSet);
      },
    });
  const root = (selectionSet: SelectionSetNode) => {
    for (const selection of selectionSet.selections) {
      for (const directive of selection.directives ?? []) collect(directive);
      if (selection.kind === Kind.FIELD) {
        if (selection.selectionSet) collect(selection.selectionSet);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        root(selection.selectionSet);
      } else {
        const spreadFragment = fragment(selection.name.value);
        if (spreadFragment) root(spreadFragment.selectionSet);
      }
    }
  };
  if (operation) root(operation.selectionSet);
  const variables = [...found].sort();
  byOperation.set(name, variables);
  return variables;
}

function selectionKey(args: ExecutionArgs): string {
  let id = documentIds.get(args.document);
  if (id === undefined) documentIds.set(args.document, (id = nextDocumentId++));
  const raw = (args.variableValues ?? {}) as Readonly<Record<string, unknown>>;
  const used = variablesBelowRoot(args.document, args.operationName);
  const values = Object.fromEntries(used.filter((name) => name in raw).map((name) => [name, raw[name]]));
  return `${id}\n${args.operationName ?? ""}\n${JSON.stringify(values)}`;
}

/**
 * The results of one subscription, as graphql-js's `subscribe` maps its events, except that a shared
 * event is executed once per selection. A class, not closures: one is kept per open subscription.
 */
class SubscriptionResults implements AsyncIterableIterator<ExecutionResult> {
  /** Computed at the first shared event: an idle subscription never needs it. */
  #key: string | undefined;
  constructor(
    private readonly args: ExecutionArgs,
    private readonly events: AsyncIterator<unknown>,
  ) {}

  async next(): Promise<IteratorResult<ExecutionResult>> {
    const step = await this.events.next();
    if (step.done) return { done: true, value: undefined };
    try {
      return { done: false, value: await this.run(step.value) };
    } catch (error) {
      await this.events.return?.();
      throw error;
    }
  }

  async return(): Promise<IteratorResult<ExecutionResult>> {
    await this.events.return?.();
    return { done: true, value: undefined };
  }

  async throw(error: unknown): Promise<IteratorResult<ExecutionResult>> {
    await this.events.return?.();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private run(event: unknown): Result {
    const results = typeof event === "object" && event !== null ? resultsByEvent.get(event) : undefined;
    if (!results) return execute({ ...this.args, rootValue: event });
    const key = (this.#key ??= selectionKey(this.args));
    let result = results.get(key);
    if (!result) results.set(key, (result = execute({ ...this.args, rootValue: event })));
    return result;
  }
}

async function subscribeSharing(args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const stream = await createSourceEventStream(args);
  return Symbol.asyncIterator in stream ? new SubscriptionResults(args, stream[Symbol.asyncIterator]()) : stream;
}

/** Runs every subscription (WebSocket and server-sent events) through `subscribeSharing`. */
export const sharedEventsPlugin: Plugin = {
  onSubscribe({ setSubscribeFn }) {
    setSubscribeFn(subscribeSharing as never);
  },
};
