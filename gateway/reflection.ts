import { create, createRegistry, toBinary, type DescFile, type DescService, type Registry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { ServerReflection, ServerReflectionResponseSchema } from "../gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflection as ServerReflectionV1Alpha,
  ServerReflectionResponseSchema as ServerReflectionResponseSchemaV1Alpha,
} from "../gen/grpc/reflection/v1alpha/reflection_pb.js";

// gRPC status codes as the reflection protocol carries them in ErrorResponse (plain int32s).
const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;

/** The request fields both protocol versions share; the generated types differ only in `$typeName`. */
interface ReflectionRequest {
  readonly host: string;
  readonly messageRequest:
    | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: undefined; value?: undefined };
}

type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

const notFound = (errorMessage: string): ReflectionAnswer => ({ case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage } });

/** Every file the services are declared in, plus everything those files import, by file name. */
function collectFiles(services: readonly DescService[]): Map<string, DescFile> {
  const files = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, file);
    file.dependencies.forEach(visit);
  };
  for (const service of services) visit(service.file);
  return files;
}

/**
 * Answers the questions the reflection protocol asks, from the descriptors compiled into the
 * generated code, so nothing reads .proto files at runtime.
 */
function createAnswerer(services: readonly DescService[]) {
  const files = collectFiles(services);
  const registry: Registry = createRegistry(...files.values());
  const serialized = new Map<string, Uint8Array>();
  const bytesOf = (file: DescFile) => {
    let bytes = serialized.get(file.proto.name);
    if (!bytes) serialized.set(file.proto.name, (bytes = toBinary(FileDescriptorProtoSchema, file.proto)));
    return bytes;
  };

  // A client builds its descriptor pool from what it gets and cannot resolve an import it was not
  // sent, so the whole import closure goes along, the asked-for file first (as grpc-go does).
  const withDependencies = (file: DescFile): ReflectionAnswer => {
    const closure = new Map<string, DescFile>();
    const visit = (f: DescFile) => {
      if (closure.has(f.proto.name)) return;
      closure.set(f.proto.name, f);
      f.dependencies.forEach(visit);
    };
    visit(file);
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: [...closure.values()].map(bytesOf) } };
  };

  /** Types are in the registry; members (methods, fields, oneofs, enum values) are found through their parent. */
  const fileOfSymbol = (symbol: string): DescFile | undefined => {
    const type = registry.get(symbol);
    if (type) return type.file;
    const dot = symbol.lastIndexOf(".");
    const parentName = symbol.slice(0, Math.max(dot, 0));
    const member = symbol.slice(dot + 1);
    const parent = registry.get(parentName);
    if (parent?.kind === "service" && parent.methods.some((method) => method.name === member)) return parent.file;
    if (parent?.kind === "message" && (parent.fields.some((f) => f.name === member) || parent.oneofs.some((o) => o.name === member))) {
      return parent.file;
    }
    // Enum values are scoped beside their enum, not inside it (chat.v1.FOO_BAR, not chat.v1.Foo.FOO_BAR).
    for (const desc of registry) {
      if (desc.kind !== "enum") continue;
      const scope = desc.typeName.slice(0, desc.typeName.length - desc.name.length - 1);
      if (scope === parentName && desc.values.some((value) => value.name === member)) return desc.file;
    }
    return undefined;
  };

  const serviceNames = [...new Set(services.map((service) => service.typeName))].map((name) => ({ name }));

  return (request: ReflectionRequest): ReflectionAnswer => {
    const ask = request.messageRequest;
    switch (ask.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: serviceNames } };
      case "fileByFilename": {
        const file = files.get(ask.value);
        return file ? withDependencies(file) : notFound(`file not found: ${ask.value}`);
      }
      case "fileContainingSymbol": {
        const file = fileOfSymbol(ask.value);
        return file ? withDependencies(file) : notFound(`symbol not found: ${ask.value}`);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = ask.value;
        return notFound(`extension not found: ${containingType} field ${extensionNumber}`);
      }
      case "allExtensionNumbersOfType":
        // A known message simply has no extensions (grpc-go answers the same); only an unknown one is an error.
        return registry.getMessage(ask.value)
          ? { case: "allExtensionNumbersResponse", value: { baseTypeName: ask.value, extensionNumber: [] } }
          : notFound(`type not found: ${ask.value}`);
      default:
        return { case: "errorResponse", value: { errorCode: INVALID_ARGUMENT, errorMessage: "the request names no question" } };
    }
  };
}

/**
 * Serves grpc.reflection.v1 and v1alpha (older grpcurl builds speak only v1alpha) over every
 * protocol the router speaks. `services` are the application's services; the health and
 * reflection services are listed as well, since the gateway serves them too.
 */
export function registerReflection(router: ConnectRouter, services: readonly DescService[]): void {
  const answer = createAnswerer([...services, Health, ServerReflection, ServerReflectionV1Alpha]);

  router.service(ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        yield create(ServerReflectionResponseSchema, { validHost: request.host, originalRequest: request, messageResponse: answer(request) });
      }
    },
  });
  router.service(ServerReflectionV1Alpha, {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        yield create(ServerReflectionResponseSchemaV1Alpha, {
          validHost: request.host,
          originalRequest: request,
          messageResponse: answer(request),
        });
      }
    },
  });
}
