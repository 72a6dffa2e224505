import { ScalarType, type DescField, type DescMessage, type JsonObject, type JsonValue } from "@bufbuild/protobuf";

/**
 * Resolves a dotted field path (`patient.name`, `contact.phone`) against a message,
 * accepting each name in its proto form (`page_size`) or its JSON form (`pageSize`),
 * as Google's REST gateways do for query parameters. Every element but the last must
 * be a singular message field. Returns the chain of fields, or a reason it failed.
 */
export function resolveFieldPath(desc: DescMessage, names: readonly string[]): DescField[] | string {
  const chain: DescField[] = [];
  let current: DescMessage | undefined = desc;
  for (const [index, name] of names.entries()) {
    if (current === undefined) return `"${names.slice(0, index).join(".")}" is not a message`;
    const field: DescField | undefined = current.fields.find((f) => f.name === name || f.jsonName === name);
    if (field === undefined) return `${current.typeName} has no field "${name}"`;
    chain.push(field);
    current = field.fieldKind === "message" ? field.message : undefined;
  }
  return chain;
}

/** The canonical (proto, snake_case) dotted name of a resolved chain, as field masks and errors spell it. */
export function protoPath(chain: readonly DescField[]): string {
  return chain.map((field) => field.name).join(".");
}

/**
 * Wraps a JSON value in the objects of its field chain (`{"patient": {"name": v}}`),
 * keyed by JSON names, so protobuf-es's JSON reader can merge it into the request.
 * Path and query values are strings already in their proto3-JSON form (int64 as
 * decimal, enums by name, Timestamp as RFC 3339, FieldMask as `a,b`), so one reader
 * converts and range-checks every type and there is no second parser to drift.
 */
export function nestJson(chain: readonly DescField[], value: JsonValue): JsonObject {
  let json: JsonValue = value;
  for (let i = chain.length - 1; i >= 0; i--) json = { [(chain[i] as DescField).jsonName]: json };
  return json as JsonObject;
}

/** Well-known types whose JSON form is a single string, number or boolean, so a query value can carry one. */
const primitiveJsonTypes = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.FieldMask",
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.BoolValue",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
]);

/**
 * Whether a single text value (path or query) can set the field: scalars and enums,
 * singular or repeated, and the well-known types with a primitive JSON form.
 */
export function acceptsTextValue(field: DescField): boolean {
  switch (field.fieldKind) {
    case "scalar":
    case "enum":
      return true;
    case "list":
      return field.listKind !== "message";
    case "message":
      return primitiveJsonTypes.has(field.message.typeName);
    default:
      return false;
  }
}

/**
 * The proto3-JSON value of one text value for the field. Everything stays a string
 * (the JSON reader accepts numbers as strings) except booleans, which JSON spells
 * bare, and enum numbers, which a string would make an unknown enum name.
 */
export function textToJson(field: DescField, text: string): JsonValue {
  if (isBoolField(field)) return text === "true" ? true : text === "false" ? false : text;
  const isEnum = field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum");
  if (isEnum && /^-?\d+$/.test(text)) return Number(text);
  return text;
}

function isBoolField(field: DescField): boolean {
  switch (field.fieldKind) {
    case "scalar":
      return field.scalar === ScalarType.BOOL;
    case "list":
      return field.listKind === "scalar" && field.scalar === ScalarType.BOOL;
    case "message":
      return field.message.typeName === "google.protobuf.BoolValue";
    default:
      return false;
  }
}
