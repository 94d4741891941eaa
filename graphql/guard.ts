import { GraphQLError, Kind, getOperationAST, parse, type ASTVisitor, type DocumentNode, type ExecutionResult, type ValidationContext, type ValidationRule } from "graphql";
import type { Plugin } from "graphql-yoga";

/**
 * Limits on the document itself, checked before (size, tokens) and during (the rest) validation, so
 * nothing of an oversized document is executed and each verdict is cached with the document's text.
 * What they bound: parse time (size, tokens), the response's size (aliases, operations, introspection)
 * and the time one request may hold the server (the execution budget).
 */
export interface DocumentLimits {
  /** Characters of the document text (variables are not counted: they are bounded by the request size). */
  readonly maxDocumentBytes: number;
  /** Lexical tokens (names, punctuation, values) of the document. */
  readonly maxTokens: number;
  /** Aliased fields in the document, `__typename` included: aliases are how one field is asked for many times. */
  readonly maxAliases: number;
  /** Operations defined in one document. */
  readonly maxOperations: number;
  /** `__schema` and `__type` fields in one document (graphql-js bounds their nesting already). */
  readonly maxIntrospectionFields: number;
  /** A query or mutation that has not finished by then is answered with EXECUTION_TIMEOUT. */
  readonly executionBudgetMs: number;
}

export const DEFAULT_DOCUMENT_LIMITS: DocumentLimits = {
  maxDocumentBytes: 64 * 1024,
  maxTokens: 5_000,
  maxAliases: 30,
  maxOperations: 10,
  maxIntrospectionFields: 1,
  executionBudgetMs: 10_000,
};

export const GUARD_CODES = {
  documentTooLarge: "DOCUMENT_TOO_LARGE",
  tooManyAliases: "TOO_MANY_ALIASES",
  tooManyOperations: "TOO_MANY_OPERATIONS",
  tooMuchIntrospection: "TOO_MUCH_INTROSPECTION",
  executionTimeout: "EXECUTION_TIMEOUT",
  csrf: "CSRF_REQUEST_REFUSED",
} as const;

function limitError(message: string, code: string, max: number, actual?: number): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code, grpcCode: "invalid_argument", metadata: { max: String(max), ...(actual === undefined ? {} : { actual: String(actual) }) } },
  });
}

function sourceText(source: unknown): string {
  if (typeof source === "string") return source;
  return typeof (source as { body?: unknown })?.body === "string" ? (source as { body: string }).body : "";
}

/** Counts over the whole document, fragments included once each (as they are written). */
function documentLimitsRule(limits: DocumentLimits): ValidationRule {
  return function DocumentLimitsRule(context: ValidationContext): ASTVisitor {
    let aliases = 0;
    let operations = 0;
    let introspection = 0;
    return {
      OperationDefinition() {
        operations++;
      },
      Field(node) {
        if (node.alias) aliases++;
        if (node.name.value === "__schema" || node.name.value === "__type") introspection++;
      },
      Document: {
        leave() {
          if (operations > limits.maxOperations) {
            context.reportError(limitError(`the document defines ${operations} operations; at most ${limits.maxOperations} are allowed`, GUARD_CODES.tooManyOperations, limits.maxOperations, operations));
          }
          if (aliases > limits.maxAliases) {
            context.reportError(limitError(`the document has ${aliases} aliased fields; at most ${limits.maxAliases} are allowed`, GUARD_CODES.tooManyAliases, limits.maxAliases, aliases));
          }
          if (introspection > limits.maxIntrospectionFields) {
            context.reportError(
              limitError(`the document asks for __schema or __type ${introspection} times; at most ${limits.maxIntrospectionFields} is allowed`, GUARD_CODES.tooMuchIntrospection, limits.maxIntrospectionFields, introspection),
            );
          }
        },
      },
    };
  };
}

const SUGGESTION = /\s*Did you mean [^?]*\?/g;

/** graphql-js's "Did you mean ...?" names fields and types: with introspection off, that is the schema leaking. */
export function withoutSuggestions(message: string): string {
  return message.replace(SUGGESTION, "");
}

/** The error without "Did you mean" (validation, and variable values coerced at execution: enum names). */
export function withoutSuggestionsIn(error: GraphQLError): GraphQLError {
  if (!error.message.includes("Did you mean")) return error;
  return new GraphQLError(withoutSuggestions(error.message), { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, extensions: error.extensions });
}

function hideSuggestions(errors: readonly GraphQLError[]): GraphQLError[] {
  return errors.map(withoutSuggestionsIn);
}

/**
 * Whether the operation reads nothing but the schema (`__schema`, `__type`, `__typename` at its root,
 * no variables): its result then depends on the document alone, since the schema never changes while
 * the gateway runs.
 */
function isPureIntrospection(document: DocumentNode, operationName: string | null | undefined): boolean {
  const operation = getOperationAST(document, operationName);
  if (!operation || operation.operation !== "query" || (operation.variableDefinitions?.length ?? 0) > 0) return false;
  return operation.selectionSet.selections.every((selection) => selection.kind === Kind.FIELD && selection.name.value.startsWith("__") && !selection.arguments?.some((arg) => arg.value.kind === Kind.VARIABLE));
}

function timeoutResult(budgetMs: number): ExecutionResult {
  return {
    errors: [
      new GraphQLError(`the operation did not finish within ${budgetMs} ms; ask for less`, {
        extensions: { code: GUARD_CODES.executionTimeout, grpcCode: "deadline_exceeded", metadata: { maxMs: String(budgetMs) } },
      }),
    ],
  };
}

/**
 * The document limits as one envelop plugin (HTTP and WebSocket share the pipeline), plus hiding
 * suggestions when introspection is off.
 */
export function documentGuardPlugin(limits: DocumentLimits, options: { readonly hideSuggestions: boolean }): Plugin {
  const rule = documentLimitsRule(limits);
  const introspectionResults = new WeakMap<DocumentNode, Map<string, ExecutionResult>>();
  return {
    onParse({ params, setParseFn }) {
      const text = sourceText(params.source);
      if (text.length > limits.maxDocumentBytes) {
        throw limitError(`the document is ${text.length} characters long; at most ${limits.maxDocumentBytes} are allowed`, GUARD_CODES.documentTooLarge, limits.maxDocumentBytes, text.length);
      }
      setParseFn((source, parseOptions) => {
        try {
          return parse(source, { ...parseOptions, maxTokens: limits.maxTokens }) as DocumentNode;
        } catch (error) {
          if (error instanceof GraphQLError && error.message.includes(` ${limits.maxTokens} tokens. Parsing aborted`)) {
            throw limitError(`the document has more than ${limits.maxTokens} tokens; at most ${limits.maxTokens} are allowed`, GUARD_CODES.documentTooLarge, limits.maxTokens);
          }
          throw error;
        }
      });
    },
    onValidate({ addValidationRule }) {
      addValidationRule(rule);
      if (!options.hideSuggestions) return;
      return ({ result, setResult }) => {
        if (result.length > 0) setResult(hideSuggestions(result as GraphQLError[]));
      };
    },
    onExecute({ args, executeFn, setExecuteFn, setResultAndStopExecution }) {
      // An introspection result is computed once per parsed document (yoga caches those by text):
      // tools asking again and again, or a client repeating the largest document allowed, cost a
      // look-up rather than a synchronous walk of the whole schema each time.
      if (isPureIntrospection(args.document, args.operationName)) {
        const cached = introspectionResults.get(args.document)?.get(args.operationName ?? "");
        if (cached) {
          setResultAndStopExecution(cached);
          return;
        }
        return {
          onExecuteDone({ result }) {
            if (!("errors" in result && result.errors?.length) && !(Symbol.asyncIterator in result)) {
              const byName = introspectionResults.get(args.document) ?? new Map<string, ExecutionResult>();
              byName.set(args.operationName ?? "", result as ExecutionResult);
              introspectionResults.set(args.document, byName);
            }
          },
        };
      }
      setExecuteFn((args) => {
        let timer: NodeJS.Timeout | undefined;
        const budget = new Promise<ExecutionResult>((resolve) => {
          timer = setTimeout(() => resolve(timeoutResult(limits.executionBudgetMs)), limits.executionBudgetMs);
          timer.unref();
        });
        return Promise.race([Promise.resolve(executeFn(args)), budget]).finally(() => clearTimeout(timer)) as never;
      });
    },
  };
}

/**
 * Which browser origins may use the endpoint: the gateway's own (same host) always, and those listed
 * in the allow-list; `*` in the list admits any origin, without credentials. Requests without an
 * `Origin` header are not from a browser page and pass.
 */
export interface OriginPolicy {
  /** `undefined`: refused. */
  credentialsFor(origin: string | undefined | null, host: string | undefined | null): boolean | undefined;
}

export function createOriginPolicy(allowList: readonly string[]): OriginPolicy {
  const listed = new Set(allowList);
  const anyOrigin = listed.has("*");
  return {
    credentialsFor(origin, host) {
      if (!origin) return true;
      let originHost: string;
      try {
        originHost = new URL(origin).host;
      } catch {
        return undefined;
      }
      if ((host && originHost === host) || listed.has(origin)) return true;
      return anyOrigin ? false : undefined;
    },
  };
}

const FORM_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"];

function refusal(fetchAPI: { Response: typeof Response }, status: number, message: string): Response {
  const body = JSON.stringify({ errors: [{ message, extensions: { code: GUARD_CODES.csrf, grpcCode: "permission_denied" } }] });
  return new fetchAPI.Response(body, { status, headers: { "content-type": "application/json; charset=utf-8" } });
}

/**
 * CSRF prevention and the origin allow-list for GraphQL over HTTP. A browser sends a form or text/plain
 * POST to any site without asking first; refusing those (and any request whose Origin is not allowed)
 * means a page elsewhere can run nothing here. A JSON POST from another origin needs a CORS preflight,
 * which only allowed origins pass. (Authentication is by header, not cookie, so this protects the
 * anonymous mutations, signUp and logIn, and any cookie a deployment adds in front.)
 */
export function browserGuardPlugin(policy: OriginPolicy): Plugin {
  return {
    onRequest({ request, fetchAPI, endResponse }) {
      const origin = request.headers.get("origin");
      const host = request.headers.get("host") ?? new URL(request.url).host;
      if (policy.credentialsFor(origin, host) === undefined) {
        endResponse(refusal(fetchAPI, 403, `the origin ${origin} may not call this endpoint; add it to CHAT_ALLOWED_ORIGINS`));
        return;
      }
      if (request.method !== "POST") return;
      const type = (request.headers.get("content-type") ?? "").split(";", 1)[0]!.trim().toLowerCase();
      if (type === "" || FORM_TYPES.includes(type)) {
        endResponse(refusal(fetchAPI, 415, "send GraphQL requests as application/json (form and text bodies are refused: cross-site request forgery)"));
      }
    },
  };
}

/** yoga's `cors` option: allowed origins get CORS headers (with credentials unless admitted by `*`); others none. */
export function corsFor(policy: OriginPolicy) {
  return (request: Request) => {
    const origin = request.headers.get("origin");
    const credentials = policy.credentialsFor(origin, request.headers.get("host") ?? new URL(request.url).host);
    if (!origin || credentials === undefined) return false as const;
    return { origin: [origin], credentials, allowedHeaders: ["authorization", "content-type"], methods: ["GET", "POST"], maxAge: 600 };
  };
}
