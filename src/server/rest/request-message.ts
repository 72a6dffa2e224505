import {
  create,
  fromJsonString,
  mergeFromJson,
  mergeFromJsonString,
  type DescMessage,
  type JsonValue,
  type Message,
} from "@bufbuild/protobuf";
import { reflect } from "@bufbuild/protobuf/reflect";
import { acceptsTextValue, nestJson, protoPath, resolveFieldPath, textToJson } from "./field-path.ts";
import type { PathBinding, Route } from "./http-routes.ts";
import { decodeVariable } from "./path-template.ts";
import { invalidArgument } from "./rest-errors.ts";
import { deriveUpdateMask } from "./update-mask.ts";

/** Unknown JSON keys are refused, as for Connect JSON: a typo must not silently drop a field. */
const strict = { ignoreUnknownFields: false } as const;
const maxEchoedKey = 100;

/**
 * Builds the request message of a route from the body, the path variables and the
 * query string, in that order. Path values are applied after the body so the URL
 * decides which resource is addressed, whatever the body says. Query parameters may
 * only set fields that neither the path nor the body binds. Throws a RestError
 * (400 INVALID_ARGUMENT naming the parameter) for anything that does not decode.
 */
export function buildRequest(
  route: Route,
  values: readonly string[],
  body: string | undefined,
  query: string,
): Message {
  const input = route.entry.method.input;
  const message = create(input);
  if (body !== undefined) applyBody(route, message, body);
  for (const [index, binding] of route.pathBindings.entries()) {
    applyPathValue(input, message, binding, values[index] ?? "");
  }
  if (query !== "") applyQuery(route, message, query);
  if (body !== undefined && route.updateMask !== undefined) deriveUpdateMask(route, message, body);
  return message;
}

function applyBody(route: Route, message: Message, text: string): void {
  const input = route.entry.method.input;
  const binding = route.body;
  decodeOrRefuse("INVALID_BODY", "Invalid request body", undefined, () => {
    if (binding.kind === "all") {
      mergeFromJsonString(input, message, text, strict);
    } else if (binding.kind === "field" && binding.field.fieldKind === "message") {
      const value = fromJsonString(binding.field.message, text, strict);
      reflect(input, message).set(binding.field, reflect(binding.field.message, value));
    } else if (binding.kind === "field") {
      // A scalar, list or map body: protobuf-es reads it as that field of the request.
      mergeFromJson(input, message, { [binding.field.jsonName]: JSON.parse(text) as JsonValue }, strict);
    }
  });
}

function applyPathValue(input: DescMessage, message: Message, binding: PathBinding, raw: string): void {
  const name = protoPath(binding.chain);
  let text: string;
  try {
    text = decodeVariable(raw, binding.variable.multiSegment);
  } catch {
    throw invalidArgument("INVALID_PATH_VALUE", `The path value for ${name} is not valid percent-encoding.`, name);
  }
  const leaf = binding.chain.at(-1);
  if (leaf === undefined) return;
  decodeOrRefuse("INVALID_PATH_VALUE", `Invalid path value for ${name}`, name, () =>
    mergeFromJson(input, message, nestJson(binding.chain, textToJson(leaf, text)), strict),
  );
}

function applyQuery(route: Route, message: Message, query: string): void {
  const input = route.entry.method.input;
  const groups = new Map<string, string[]>();
  for (const [key, value] of new URLSearchParams(query)) {
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [value]);
    else group.push(value);
  }
  for (const [key, texts] of groups) {
    const shown = key.length > maxEchoedKey ? `${key.slice(0, maxEchoedKey)}...` : key;
    if (route.body.kind === "all") {
      const why = `Query parameter "${shown}" is not accepted: this method takes the whole request in the body.`;
      throw invalidArgument("UNKNOWN_QUERY_PARAMETER", why, shown);
    }
    const chain = resolveFieldPath(input, key.split("."));
    if (typeof chain === "string") {
      throw invalidArgument("UNKNOWN_QUERY_PARAMETER", `Unknown query parameter "${shown}".`, shown);
    }
    const name = protoPath(chain);
    const leaf = chain.at(-1);
    if (leaf === undefined) continue;
    if (route.boundPaths.some((bound) => overlaps(bound, name))) {
      const why = `Query parameter "${shown}" sets ${name}, which the path or the body already carries.`;
      throw invalidArgument("UNKNOWN_QUERY_PARAMETER", why, name);
    }
    if (!acceptsTextValue(leaf)) {
      throw invalidArgument(
        "INVALID_QUERY_PARAMETER",
        `Query parameter "${shown}" names a field a query value cannot set.`,
        name,
      );
    }
    const repeated = leaf.fieldKind === "list";
    if (!repeated && texts.length > 1) {
      throw invalidArgument("INVALID_QUERY_PARAMETER", `Query parameter "${shown}" is given more than once.`, name);
    }
    const json = repeated ? texts.map((text) => textToJson(leaf, text)) : textToJson(leaf, texts[0] ?? "");
    decodeOrRefuse("INVALID_QUERY_PARAMETER", `Invalid query parameter "${shown}"`, name, () =>
      mergeFromJson(input, message, nestJson(chain, json), strict),
    );
  }
}

/** Whether one dotted path is the other or contains it. */
function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`);
}

/**
 * Runs a protobuf-es JSON read and turns its failure into a 400. The JSON parser's
 * own message quotes the input, so malformed JSON gets a fixed sentence; decode
 * errors keep protobuf-es's field and expectation but not the offending value.
 */
function decodeOrRefuse(reason: string, prefix: string, field: string | undefined, read: () => unknown): void {
  try {
    read();
  } catch (error) {
    if (error instanceof SyntaxError || (error instanceof Error && error.cause instanceof SyntaxError)) {
      throw invalidArgument("MALFORMED_JSON", "The request body is not valid JSON.");
    }
    const detail = error instanceof Error ? withoutValue(error.message) : "cannot decode";
    throw invalidArgument(reason, `${prefix}: ${detail}.`, field);
  }
}

/** Drops the value protobuf-es echoes (`..., got "abc"`, `... from JSON: "abc"`, `: 1e99 out of range`). */
function withoutValue(message: string): string {
  return message
    .replace(/, got [\s\S]*$/, "")
    .replace(/ from JSON: "(?:[^"\\]|\\.)*"$/, " from JSON")
    .replace(/: [^:]* out of range$/, ": out of range");
}
