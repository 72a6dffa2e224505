import type { DescFile } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { DescriptorIndex } from "./descriptor-index.ts";

/**
 * The ServerReflectionRequest fields, which grpc.reflection.v1 and v1alpha share
 * field for field; both generated request types fit this shape, so the protocol
 * is written once for the two versions.
 */
export interface ReflectionRequest {
  readonly host: string;
  readonly messageRequest:
    | { readonly case: "fileByFilename"; readonly value: string }
    | { readonly case: "fileContainingSymbol"; readonly value: string }
    | {
        readonly case: "fileContainingExtension";
        readonly value: { readonly containingType: string; readonly extensionNumber: number };
      }
    | { readonly case: "allExtensionNumbersOfType"; readonly value: string }
    | { readonly case: "listServices"; readonly value: string }
    | { readonly case: undefined; readonly value?: undefined };
}

/** The `message_response` oneof of ServerReflectionResponse, as an init shape of either version. */
export type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/** A ServerReflectionResponse init shape whose `original_request` is of the caller's version. */
export interface ReflectionResponse<Req extends ReflectionRequest> {
  originalRequest: Req;
  messageResponse: ReflectionAnswer;
}

/**
 * Answers each request of one ServerReflectionInfo stream in order. Errors about a
 * request (unknown file or symbol) are `error_response` messages, as the protocol
 * asks, so the stream stays open for the client's next question.
 */
export async function* reflectionStream<Req extends ReflectionRequest>(
  index: DescriptorIndex,
  requests: AsyncIterable<Req>,
): AsyncGenerator<ReflectionResponse<Req>> {
  // Files already sent on this stream; the client keeps them, so later answers
  // skip them as dependencies (the requested file itself is always sent).
  const sent = new Set<string>();
  for await (const request of requests) {
    yield { originalRequest: request, messageResponse: answer(index, request, sent) };
  }
}

function answer(index: DescriptorIndex, request: ReflectionRequest, sent: Set<string>): ReflectionAnswer {
  const asked = request.messageRequest;
  switch (asked.case) {
    case "listServices":
      return { case: "listServicesResponse", value: { service: index.serviceNames.map((name) => ({ name })) } };
    case "fileByFilename":
      return files(index, index.fileByName(asked.value), sent, `file ${asked.value}`);
    case "fileContainingSymbol":
      return files(index, index.fileContainingSymbol(asked.value), sent, `symbol ${asked.value}`);
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = asked.value;
      const file = index.fileContainingExtension(containingType, extensionNumber);
      return files(index, file, sent, `extension ${extensionNumber} of ${containingType}`);
    }
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbersOf(asked.value);
      if (!numbers) return notFound(`type ${asked.value}`);
      return { case: "allExtensionNumbersResponse", value: { baseTypeName: asked.value, extensionNumber: numbers } };
    }
    default:
      return {
        case: "errorResponse",
        value: { errorCode: Code.InvalidArgument, errorMessage: "no message_request set" },
      };
  }
}

/**
 * The file, then its transitive imports breadth first, minus imports already sent on
 * this stream: a client needs every import to build the file's descriptor.
 */
function files(index: DescriptorIndex, file: DescFile | undefined, sent: Set<string>, what: string): ReflectionAnswer {
  if (!file) return notFound(what);
  const out: Uint8Array[] = [index.serialized(file)];
  sent.add(file.proto.name);
  const queue = [...file.dependencies];
  for (let next = queue.shift(); next; next = queue.shift()) {
    if (sent.has(next.proto.name)) continue;
    sent.add(next.proto.name);
    out.push(index.serialized(next));
    queue.push(...next.dependencies);
  }
  return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
}

function notFound(what: string): ReflectionAnswer {
  return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } };
}
