/**
 * Vendors `buf/validate/validate.proto` into `proto/third_party`.
 *
 * The Buf Schema Registry is not reachable from our machines and no registry package ships
 * the proto source, so the file is printed from the FileDescriptorProto that
 * `@bufbuild/protovalidate` embeds in its generated code. That is exactly the schema its
 * validator evaluates, so the rules we write compile against the same contract.
 *
 *   npx node scripts/vendor-protovalidate.ts          (re)write the vendored file
 *   npx node scripts/vendor-protovalidate.ts --check  exit 1 if the file is stale, or if
 *                                                     `buf build` of it does not reproduce
 *                                                     the embedded descriptor byte for byte
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DescEnum, DescExtension, DescField, DescFile, DescMessage, Message, Registry } from "@bufbuild/protobuf";
import {
  clearField,
  createRegistry,
  fromBinary,
  getExtension,
  isFieldSet,
  ScalarType,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import type { ReflectMessage } from "@bufbuild/protobuf/reflect";
import { isReflectMessage, protoCamelCase, reflect } from "@bufbuild/protobuf/reflect";
import type {
  DescriptorProto,
  EnumDescriptorProto,
  FieldDescriptorProto,
  FileDescriptorProto,
  ServiceDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import {
  Edition,
  EnumOptionsSchema,
  EnumValueOptionsSchema,
  ExtensionRangeOptionsSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldDescriptorProtoSchema,
  FieldOptionsSchema,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  FileOptionsSchema,
  MessageOptionsSchema,
  MethodOptionsSchema,
  OneofOptionsSchema,
  ServiceOptionsSchema,
} from "@bufbuild/protobuf/wkt";
import { file_buf_validate_validate } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

const PACKAGE = "@bufbuild/protovalidate";
const GENERATED_JS = `${PACKAGE}/gen/buf/validate/validate_pb.js`;
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MODULE_DIR = "proto/third_party";
const OUT_REL = `${MODULE_DIR}/${file_buf_validate_validate.proto.name}`;
const OUT_PATH = join(ROOT, OUT_REL);
const BUF = join(ROOT, "node_modules", ".bin", "buf");

/** Highest field number; `to max` in message reserved and extension ranges. */
const MAX_FIELD_NUMBER = 536870911;
/** Highest enum value; `to max` in enum reserved ranges. */
const MAX_ENUM_NUMBER = 2147483647;

type Syntax = "proto2" | "proto3" | "editions";

/** Everything the printers need besides the element they print. */
type Ctx = {
  syntax: Syntax;
  /** Extensions of the file and its imports, to decode custom options (unknown fields). */
  registry: Registry;
  /** Fully-qualified names of every symbol in scope, to shorten type references safely. */
  symbols: Set<string>;
};

/** A single option assignment; the value is formatted lazily because nested lines need the indent. */
type OptionEntry = { name: string; value: (indent: string) => string };

/** The shape of a single value (a plain field, a list item or a map value). */
type ValueKind =
  | { kind: "scalar"; scalar: ScalarType }
  | { kind: "enum"; desc: DescEnum }
  | { kind: "message"; desc: DescMessage };

// ---------------------------------------------------------------------------------------------
// Context: scopes, symbols and extensions
// ---------------------------------------------------------------------------------------------

function createCtx(file: DescFile): Ctx {
  const syntax: Syntax =
    file.proto.syntax === "proto3" ? "proto3" : file.proto.syntax === "editions" ? "editions" : "proto2";
  const symbols = new Set<string>();
  for (const f of withDependencies(file)) collectFileSymbols(f.proto, symbols);
  return { syntax, registry: fileRegistry(file), symbols };
}

/** Types and extensions of `file` and everything it imports. */
function fileRegistry(file: DescFile): Registry {
  return createRegistry(...withDependencies(file));
}

function withDependencies(file: DescFile, seen = new Map<string, DescFile>()): DescFile[] {
  if (!seen.has(file.name)) {
    seen.set(file.name, file);
    for (const dep of file.dependencies) withDependencies(dep, seen);
  }
  return [...seen.values()];
}

function qualify(scope: string, name: string): string {
  return scope === "" ? name : `${scope}.${name}`;
}

function collectFileSymbols(file: FileDescriptorProto, out: Set<string>): void {
  const parts = file.package === "" ? [] : file.package.split(".");
  for (let i = 1; i <= parts.length; i++) out.add(parts.slice(0, i).join("."));
  for (const m of file.messageType) collectMessageSymbols(m, file.package, out);
  for (const e of file.enumType) collectEnumSymbols(e, file.package, out);
  for (const x of file.extension) out.add(qualify(file.package, x.name));
  for (const s of file.service) {
    out.add(qualify(file.package, s.name));
    for (const m of s.method) out.add(qualify(qualify(file.package, s.name), m.name));
  }
}

function collectMessageSymbols(msg: DescriptorProto, scope: string, out: Set<string>): void {
  const name = qualify(scope, msg.name);
  out.add(name);
  for (const member of [...msg.field, ...msg.extension, ...msg.oneofDecl]) {
    out.add(qualify(name, member.name));
  }
  for (const m of msg.nestedType) collectMessageSymbols(m, name, out);
  for (const e of msg.enumType) collectEnumSymbols(e, name, out);
}

function collectEnumSymbols(e: EnumDescriptorProto, scope: string, out: Set<string>): void {
  out.add(qualify(scope, e.name));
  // Enum values are siblings of their enum (C++ scoping), so they can shadow other names.
  for (const v of e.value) out.add(qualify(scope, v.name));
}

/**
 * The shortest name for `fullName` (no leading dot) that resolves to it from `scope`.
 *
 * `scope` is where protoc starts looking: the parent of the full name of the element that
 * holds the reference (a field's message, a message's parent, the package for file options).
 * protoc resolves the first component of a name in the innermost enclosing scope that has a
 * symbol of that name, and never backs out once it has picked one. We accept a candidate only
 * if that first hit leads to the right symbol. This is stricter than protoc (which skips
 * non-aggregate hits), so it can only lengthen a name, never mis-resolve it.
 */
function relativeName(ctx: Ctx, fullName: string, scope: string): string {
  const parts = fullName.split(".");
  for (let k = parts.length - 1; k >= 0; k--) {
    const candidate = parts.slice(k).join(".");
    if (resolvesTo(ctx, candidate, scope, fullName)) return candidate;
  }
  return `.${fullName}`;
}

function resolvesTo(ctx: Ctx, candidate: string, scope: string, target: string): boolean {
  const first = candidate.split(".")[0] ?? candidate;
  const scopeParts = scope === "" ? [] : scope.split(".");
  for (let i = scopeParts.length; i >= 0; i--) {
    const prefix = scopeParts.slice(0, i).join(".");
    if (ctx.symbols.has(qualify(prefix, first))) return qualify(prefix, candidate) === target;
  }
  return false;
}

/** A type reference from a descriptor (`.pkg.Type`) as written in source at `scope`. */
function typeRef(ctx: Ctx, typeName: string, scope: string): string {
  return relativeName(ctx, typeName.replace(/^\./, ""), scope);
}

// ---------------------------------------------------------------------------------------------
// Text format (values of options, including message-typed custom options)
// ---------------------------------------------------------------------------------------------

function valueKind(field: DescField | DescExtension): ValueKind {
  // Plain, list and map fields all name their (value) type in exactly one of these properties.
  if (field.message) return { kind: "message", desc: field.message };
  if (field.enum) return { kind: "enum", desc: field.enum };
  return { kind: "scalar", scalar: field.scalar };
}

/** Formats one value; messages span several lines, closed at `indent`. */
function formatValue(ctx: Ctx, kind: ValueKind, value: unknown, indent: string): string {
  switch (kind.kind) {
    case "scalar":
      return formatScalar(kind.scalar, value);
    case "enum":
      return kind.desc.values.find((v) => v.number === value)?.name ?? String(value);
    case "message": {
      const r = isReflectMessage(value) ? value : reflect(kind.desc, value as Message);
      const body = messageBody(ctx, r, `${indent}  `);
      return body.length === 0 ? "{}" : `{\n${body.join("\n")}\n${indent}}`;
    }
  }
}

function formatScalar(type: ScalarType, value: unknown): string {
  switch (type) {
    case ScalarType.STRING:
      return quoteString(value as string);
    case ScalarType.BYTES:
      return quoteBytes(value as Uint8Array);
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return formatFloat(value as number);
    default:
      return String(value); // bool, and integers (number or bigint)
  }
}

function formatFloat(n: number): string {
  if (Number.isNaN(n)) return "nan";
  if (!Number.isFinite(n)) return n > 0 ? "inf" : "-inf";
  // String() is the shortest repr that round-trips a double (and so a float32); keep -0's sign.
  return Object.is(n, -0) ? "-0" : String(n);
}

/** A quoted string literal; non-ASCII characters stay readable (the file is UTF-8). */
function quoteString(s: string): string {
  let out = "";
  for (const ch of s) out += ch.length === 1 && ch.charCodeAt(0) < 0x80 ? escapeByte(ch.charCodeAt(0)) : ch;
  return `"${out}"`;
}

/** A quoted bytes literal: printable ASCII as is, everything else escaped. */
function quoteBytes(bytes: Uint8Array): string {
  return `"${Array.from(bytes, escapeByte).join("")}"`;
}

const ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\" };

function escapeByte(b: number): string {
  const c = String.fromCharCode(b);
  if (ESCAPES[c] !== undefined) return ESCAPES[c];
  if (b >= 0x20 && b < 0x7f) return c;
  return `\\${b.toString(8).padStart(3, "0")}`; // octal: unlike \x, never swallows a following digit
}

/** The lines of a text-format message body: set fields by number, then set extensions. */
function messageBody(ctx: Ctx, r: ReflectMessage, indent: string): string[] {
  const lines: string[] = [];
  const line = (name: string, kind: ValueKind, v: unknown) =>
    lines.push(`${indent}${name}: ${formatValue(ctx, kind, v, indent)}`);
  for (const f of r.sortedFields) {
    if (!r.isSet(f)) continue;
    if (f.fieldKind === "map") lines.push(...mapEntries(ctx, f, r.get(f), indent));
    else if (f.fieldKind === "list") for (const item of r.get(f)) line(f.name, valueKind(f), item);
    else line(f.name, valueKind(f), r.get(f));
  }
  for (const ext of setExtensions(ctx, r)) {
    const name = `[${ext.typeName}]`;
    const value: unknown = getExtension(r.message, ext);
    for (const v of ext.fieldKind === "list" ? (value as unknown[]) : [value]) line(name, valueKind(ext), v);
  }
  return lines;
}

function mapEntries(
  ctx: Ctx,
  f: DescField & { fieldKind: "map" },
  map: Iterable<[unknown, unknown]>,
  indent: string,
): string[] {
  const inner = `${indent}  `;
  return [...map].flatMap(([k, v]) => [
    `${indent}${f.name}: {`,
    `${inner}key: ${formatScalar(f.mapKey, k)}`,
    `${inner}value: ${formatValue(ctx, valueKind(f), v, inner)}`,
    `${indent}}`,
  ]);
}

/**
 * Extensions set on a message. protobuf-es keeps them as unknown fields; each must be an
 * extension we know, or we could not print it and the vendored file would silently lose it.
 */
function setExtensions(ctx: Ctx, r: ReflectMessage): DescExtension[] {
  const numbers = [...new Set((r.getUnknown() ?? []).map((u) => u.no))];
  return numbers.map((no) => {
    const ext = ctx.registry.getExtensionFor(r.desc, no);
    if (!ext) throw new Error(`${r.desc.typeName} has unknown field ${no} that is no known extension`);
    return ext;
  });
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/** The options set on an element, as `name = value` entries; custom ones are `(ext)`. */
function optionEntries(ctx: Ctx, schema: DescMessage, options: Message | undefined, scope: string) {
  if (options === undefined) return [];
  const r = reflect(schema, options);
  const entries: OptionEntry[] = [];
  const add = (name: string, kind: ValueKind, v: unknown) =>
    entries.push({ name, value: (indent) => formatValue(ctx, kind, v, indent) });
  for (const f of r.sortedFields) {
    if (!r.isSet(f) || f.name === "uninterpreted_option") continue;
    if (f.fieldKind === "map") throw new Error(`map option ${f.name} is not supported`);
    // A repeated option is written once per element; protoc appends them in order.
    if (f.fieldKind === "list") for (const item of r.get(f)) add(f.name, valueKind(f), item);
    else add(f.name, valueKind(f), r.get(f));
  }
  for (const ext of setExtensions(ctx, r)) {
    const name = `(${relativeName(ctx, ext.typeName, scope)})`;
    const value: unknown = getExtension(r.message, ext);
    for (const v of ext.fieldKind === "list" ? (value as unknown[]) : [value]) add(name, valueKind(ext), v);
  }
  return entries;
}

/** `option a = 1;` statements (files, messages, enums, oneofs, services, methods). */
function optionStatements(entries: OptionEntry[], indent: string): string[] {
  return entries.map((e) => `${indent}option ${e.name} = ${e.value(indent)};`);
}

/** The ` [a = 1, b = 2]` suffix of fields, enum values and extension ranges ("" if none). */
function bracketOptions(entries: OptionEntry[], indent: string): string {
  const [only] = entries;
  if (only === undefined) return "";
  if (entries.length === 1) return ` [${only.name} = ${only.value(indent)}]`;
  const inline = entries.map((e) => `${e.name} = ${e.value(indent)}`).join(", ");
  if (!inline.includes("\n") && inline.length <= 80) return ` [${inline}]`;
  const inner = `${indent}  `;
  return ` [\n${entries.map((e) => `${inner}${e.name} = ${e.value(inner)}`).join(",\n")}\n${indent}]`;
}

// ---------------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------------

const TYPE_KEYWORDS: Partial<Record<FieldDescriptorProto_Type, string>> = {
  [FieldDescriptorProto_Type.DOUBLE]: "double",
  [FieldDescriptorProto_Type.FLOAT]: "float",
  [FieldDescriptorProto_Type.INT64]: "int64",
  [FieldDescriptorProto_Type.UINT64]: "uint64",
  [FieldDescriptorProto_Type.INT32]: "int32",
  [FieldDescriptorProto_Type.FIXED64]: "fixed64",
  [FieldDescriptorProto_Type.FIXED32]: "fixed32",
  [FieldDescriptorProto_Type.BOOL]: "bool",
  [FieldDescriptorProto_Type.STRING]: "string",
  [FieldDescriptorProto_Type.BYTES]: "bytes",
  [FieldDescriptorProto_Type.UINT32]: "uint32",
  [FieldDescriptorProto_Type.SFIXED32]: "sfixed32",
  [FieldDescriptorProto_Type.SFIXED64]: "sfixed64",
  [FieldDescriptorProto_Type.SINT32]: "sint32",
  [FieldDescriptorProto_Type.SINT64]: "sint64",
};

function fieldType(ctx: Ctx, field: FieldDescriptorProto, scope: string, mapEntry?: DescriptorProto): string {
  if (mapEntry) {
    const [key, value] = mapEntry.field;
    if (!key || !value) throw new Error(`malformed map entry ${mapEntry.name}`);
    return `map<${fieldType(ctx, key, scope)}, ${fieldType(ctx, value, scope)}>`;
  }
  if (field.type === FieldDescriptorProto_Type.GROUP) throw new Error(`group ${field.name} is not supported`);
  return TYPE_KEYWORDS[field.type] ?? typeRef(ctx, field.typeName, scope);
}

function labelKeyword(ctx: Ctx, field: FieldDescriptorProto, inOneof: boolean, isMap: boolean): string {
  if (inOneof || isMap) return "";
  if (field.label === FieldDescriptorProto_Label.REPEATED) return "repeated ";
  // Editions express presence with features (printed as options), not labels.
  if (ctx.syntax === "editions") return "";
  if (field.label === FieldDescriptorProto_Label.REQUIRED) return "required ";
  return ctx.syntax === "proto2" || field.proto3Optional ? "optional " : "";
}

/** `default` and `json_name` live in the descriptor but are written as options. */
function pseudoOptions(field: FieldDescriptorProto, isExtension: boolean): OptionEntry[] {
  const entries: OptionEntry[] = [];
  if (isFieldSet(field, FieldDescriptorProtoSchema.field.defaultValue)) {
    entries.push({ name: "default", value: () => formatDefault(field) });
  }
  const customJson = field.jsonName !== protoCamelCase(field.name);
  if (!isExtension && isFieldSet(field, FieldDescriptorProtoSchema.field.jsonName) && customJson) {
    entries.push({ name: "json_name", value: () => quoteString(field.jsonName) });
  }
  return entries;
}

function formatDefault(field: FieldDescriptorProto): string {
  switch (field.type) {
    case FieldDescriptorProto_Type.STRING:
      return quoteString(field.defaultValue);
    case FieldDescriptorProto_Type.BYTES:
      return `"${field.defaultValue}"`; // descriptors hold bytes defaults already C-escaped
    default:
      return field.defaultValue; // numbers, inf/nan, true/false and enum value names as in source
  }
}

/** The index of the oneof a field is declared in; proto3 `optional` hides in a synthetic one. */
function declaredOneof(field: FieldDescriptorProto): number | undefined {
  const inOneof = isFieldSet(field, FieldDescriptorProtoSchema.field.oneofIndex);
  return inOneof && !field.proto3Optional ? field.oneofIndex : undefined;
}

/** One field or extension declaration; `nested` are the message's types (for map entries). */
function renderField(
  ctx: Ctx,
  field: FieldDescriptorProto,
  scope: string,
  indent: string,
  nested: DescriptorProto[] = [],
): string {
  const mapEntry = nested.find((n) => n.options?.mapEntry && field.typeName === `.${qualify(scope, n.name)}`);
  const label = labelKeyword(ctx, field, declaredOneof(field) !== undefined, mapEntry !== undefined);
  const isExtension = isFieldSet(field, FieldDescriptorProtoSchema.field.extendee);
  const options = [
    ...pseudoOptions(field, isExtension),
    ...optionEntries(ctx, FieldOptionsSchema, field.options, scope),
  ];
  const type = fieldType(ctx, field, scope, mapEntry);
  return `${indent}${label}${type} ${field.name} = ${field.number}${bracketOptions(options, indent)};`;
}

/** Consecutive fields that share a oneof (or none), in descriptor order. */
type FieldRun = { oneof: number | undefined; fields: FieldDescriptorProto[] };

/**
 * Fields in descriptor order; members of a oneof are wrapped in its block. protoc only emits
 * contiguous oneof members, so a oneof reopened later would be a descriptor we cannot print.
 */
function renderFields(ctx: Ctx, msg: DescriptorProto, scope: string, indent: string): string[] {
  const runs: FieldRun[] = [];
  for (const field of msg.field) {
    const oneof = declaredOneof(field);
    const last = runs.at(-1);
    if (last !== undefined && last.oneof === oneof) last.fields.push(field);
    else runs.push({ oneof, fields: [field] });
  }
  const oneofs = runs.flatMap((r) => (r.oneof === undefined ? [] : [r.oneof]));
  if (new Set(oneofs).size !== oneofs.length) throw new Error(`${scope}: a oneof is not contiguous`);
  return runs.flatMap((run) =>
    run.oneof === undefined
      ? run.fields.map((f) => renderField(ctx, f, scope, indent, msg.nestedType))
      : renderOneof(ctx, msg, run, scope, indent),
  );
}

function renderOneof(ctx: Ctx, msg: DescriptorProto, run: FieldRun, scope: string, indent: string) {
  const decl = msg.oneofDecl[run.oneof ?? -1];
  if (decl === undefined) throw new Error(`${scope}: oneof #${run.oneof} is not declared`);
  const inner = `${indent}  `;
  const options = optionEntries(ctx, OneofOptionsSchema, decl.options, scope);
  return [
    `${indent}oneof ${decl.name} {`,
    ...optionStatements(options, inner),
    ...run.fields.map((f) => renderField(ctx, f, scope, inner, msg.nestedType)),
    `${indent}}`,
  ];
}

function renderMessage(ctx: Ctx, msg: DescriptorProto, scope: string, indent: string): string[] {
  const name = qualify(scope, msg.name);
  const inner = `${indent}  `;
  const nested = msg.nestedType
    .filter((n) => !n.options?.mapEntry) // printed as map<K, V> fields instead
    .map((n) => renderMessage(ctx, n, name, inner));
  const enums = msg.enumType.map((e) => renderEnum(ctx, e, name, inner));
  return [
    `${indent}message ${msg.name} {`,
    ...optionStatements(optionEntries(ctx, MessageOptionsSchema, msg.options, scope), inner),
    ...renderFields(ctx, msg, name, inner),
    ...[...nested, ...enums].flat(),
    ...renderExtensionRanges(ctx, msg, scope, inner),
    ...renderExtensions(ctx, msg.extension, name, inner),
    ...renderReserved(msg, "message", ctx.syntax, inner),
    `${indent}}`,
  ];
}

/** `extensions` ranges; protoc resolves their options from the message's parent `scope`. */
function renderExtensionRanges(ctx: Ctx, msg: DescriptorProto, scope: string, indent: string): string[] {
  return msg.extensionRange.map((r) => {
    const options = optionEntries(ctx, ExtensionRangeOptionsSchema, r.options, scope);
    const range = formatRange(r.start, r.end - 1, MAX_FIELD_NUMBER); // descriptor ends are exclusive
    return `${indent}extensions ${range}${bracketOptions(options, indent)};`;
  });
}

/**
 * `reserved` statements. Message ranges are end-exclusive in descriptors, enum ranges
 * inclusive; both are written inclusive in source.
 */
function renderReserved(
  decl: { reservedRange: { start: number; end: number }[]; reservedName: string[] },
  of: "message" | "enum",
  syntax: Syntax,
  indent: string,
): string[] {
  const ranges = decl.reservedRange.map((r) =>
    of === "message" ? formatRange(r.start, r.end - 1, MAX_FIELD_NUMBER) : formatRange(r.start, r.end, MAX_ENUM_NUMBER),
  );
  // Editions write reserved names as identifiers, older syntaxes as string literals.
  const names = decl.reservedName.map((n) => (syntax === "editions" ? n : `"${n}"`));
  return [ranges, names].filter((list) => list.length > 0).map((list) => `${indent}reserved ${list.join(", ")};`);
}

function formatRange(start: number, endInclusive: number, max: number): string {
  if (start === endInclusive) return String(start);
  return `${start} to ${endInclusive === max ? "max" : endInclusive}`;
}

function renderEnum(ctx: Ctx, e: EnumDescriptorProto, scope: string, indent: string): string[] {
  const inner = `${indent}  `;
  const values = e.value.map((v) => {
    const options = optionEntries(ctx, EnumValueOptionsSchema, v.options, scope);
    return `${inner}${v.name} = ${v.number}${bracketOptions(options, inner)};`;
  });
  return [
    `${indent}enum ${e.name} {`,
    ...optionStatements(optionEntries(ctx, EnumOptionsSchema, e.options, scope), inner),
    ...values,
    ...renderReserved(e, "enum", ctx.syntax, inner),
    `${indent}}`,
  ];
}

/** `extend` blocks; consecutive extensions of one extendee share a block, keeping descriptor order. */
function renderExtensions(ctx: Ctx, exts: FieldDescriptorProto[], scope: string, indent: string): string[] {
  const lines: string[] = [];
  exts.forEach((ext, i) => {
    if (ext.extendee !== exts[i - 1]?.extendee) {
      lines.push(`${indent}extend ${typeRef(ctx, ext.extendee, scope)} {`);
    }
    lines.push(renderField(ctx, ext, scope, `${indent}  `));
    if (ext.extendee !== exts[i + 1]?.extendee) lines.push(`${indent}}`);
  });
  return lines;
}

function renderService(ctx: Ctx, s: ServiceDescriptorProto, scope: string): string[] {
  const name = qualify(scope, s.name);
  const methods = s.method.flatMap((m) => {
    const arg = (stream: boolean, type: string) => `(${stream ? "stream " : ""}${typeRef(ctx, type, name)})`;
    const sig = `rpc ${m.name}${arg(m.clientStreaming, m.inputType)}`;
    const returns = `returns ${arg(m.serverStreaming, m.outputType)}`;
    const options = optionStatements(optionEntries(ctx, MethodOptionsSchema, m.options, name), "    ");
    return options.length === 0 ? [`  ${sig} ${returns};`] : [`  ${sig} ${returns} {`, ...options, "  }"];
  });
  const options = optionStatements(optionEntries(ctx, ServiceOptionsSchema, s.options, scope), "  ");
  return [`service ${s.name} {`, ...options, ...methods, "}"];
}

// ---------------------------------------------------------------------------------------------
// File
// ---------------------------------------------------------------------------------------------

function syntaxLine(p: FileDescriptorProto): string {
  if (p.syntax !== "editions") return `syntax = "${p.syntax === "" ? "proto2" : p.syntax}";`;
  return `edition = "${Edition[p.edition].replace(/^EDITION_/, "")}";`;
}

function importLines(p: FileDescriptorProto): string[] {
  return p.dependency.map((dep, i) => {
    const kind = p.publicDependency.includes(i) ? "public " : p.weakDependency.includes(i) ? "weak " : "";
    return `import ${kind}"${dep}";`;
  });
}

/** File options sorted by name like `buf format` does; order is irrelevant to the descriptor. */
function fileOptions(ctx: Ctx, p: FileDescriptorProto): OptionEntry[] {
  const entries = optionEntries(ctx, FileOptionsSchema, p.options, p.package);
  // Array.prototype.sort is stable, so repeated options keep their order.
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Prints `file` as `.proto` source. Declarations keep descriptor order within each list, so
 * compiling the result yields the same descriptor. `header` lines are emitted as comments.
 */
export function renderProtoFile(file: DescFile, header: string[]): string {
  const ctx = createCtx(file);
  const p = file.proto;
  if (p.optionDependency.length > 0) throw new Error("`import option` is not supported");
  const blocks: string[][] = [
    header.map((l) => (l === "" ? "//" : `// ${l}`)),
    [syntaxLine(p)],
    p.package === "" ? [] : [`package ${p.package};`],
    importLines(p),
    optionStatements(fileOptions(ctx, p), ""),
    ...p.messageType.map((m) => renderMessage(ctx, m, p.package, "")),
    ...p.enumType.map((e) => renderEnum(ctx, e, p.package, "")),
    renderExtensions(ctx, p.extension, p.package, ""),
    ...p.service.map((s) => renderService(ctx, s, p.package)),
  ];
  return `${blocks
    .filter((b) => b.length > 0)
    .map((b) => b.join("\n"))
    .join("\n\n")}\n`;
}

// ---------------------------------------------------------------------------------------------
// Provenance header
// ---------------------------------------------------------------------------------------------

/** Path of the generated JS module that embeds the descriptor. */
function generatedJsPath(): string {
  return fileURLToPath(import.meta.resolve(GENERATED_JS));
}

function packageVersion(): string {
  // package.json is not in the package's "exports", so walk up from the generated module.
  for (let dir = dirname(generatedJsPath()); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, "utf8")) as { name?: string; version?: string };
    if (pkg.name === PACKAGE && pkg.version) return pkg.version;
  }
  throw new Error(`cannot find the package.json of ${PACKAGE}`);
}

/** The upstream copyright and license notice, taken from the generated module we print from. */
function upstreamNotice(): string[] {
  const lines = readFileSync(generatedJsPath(), "utf8").split("\n");
  const end = lines.findIndex((l) => !l.startsWith("//"));
  return lines.slice(0, end).map((l) => l.replace(/^\/\/ ?/, ""));
}

/** The comment block at the top of the vendored file. */
export function header(): string[] {
  const notice = upstreamNotice();
  // The embedded descriptor never carries source_code_info (protobuf-es strips it), so
  // there are no upstream comments to keep; point readers to the upstream docs instead.
  return [
    ...notice,
    ...(notice.length > 0 ? [""] : []),
    `Generated by scripts/vendor-protovalidate.ts from the file descriptor embedded in`,
    `${PACKAGE}@${packageVersion()}. DO NOT EDIT: change the package version and rerun`,
    "`npx node scripts/vendor-protovalidate.ts` instead.",
    "Upstream source with documentation comments: https://github.com/bufbuild/protovalidate",
  ];
}

// ---------------------------------------------------------------------------------------------
// Round-trip check
// ---------------------------------------------------------------------------------------------

/** Compiles the vendored file with buf and returns its descriptor (no source info). */
function buildVendored(): FileDescriptorProto {
  const args = ["build", MODULE_DIR, "--path", OUT_REL, "--exclude-imports", "--exclude-source-info"];
  const res = spawnSync(BUF, [...args, "--as-file-descriptor-set", "-o", "-"], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (res.status !== 0) throw new Error(`buf build failed:\n${res.error ?? res.stderr.toString()}`);
  const name = file_buf_validate_validate.proto.name;
  const file = fromBinary(FileDescriptorSetSchema, res.stdout).file.find((f) => f.name === name);
  if (!file) throw new Error(`buf build did not produce ${name}`);
  clearField(file, FileDescriptorProtoSchema.field.sourceCodeInfo);
  return file;
}

/** Up to `limit` JSON paths where two descriptors differ, to make drift reports actionable. */
function differences(a: unknown, b: unknown, path = "$", out: string[] = [], limit = 10): string[] {
  if (out.length >= limit || JSON.stringify(a) === JSON.stringify(b)) return out;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    out.push(`${path}: embedded ${JSON.stringify(a)} vs built ${JSON.stringify(b)}`);
    return out;
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const [x, y] = [a as Record<string, unknown>, b as Record<string, unknown>];
  for (const k of keys) differences(x[k], y[k], `${path}.${k}`, out, limit);
  return out;
}

/**
 * Verifies that the vendored file is what this script prints now, and that buf compiles it
 * back to exactly the embedded descriptor. Returns the problems found (empty when clean).
 */
export function check(expected: string): string[] {
  if (!existsSync(OUT_PATH)) return [`${OUT_REL} is missing`];
  const problems: string[] = [];
  if (readFileSync(OUT_PATH, "utf8") !== expected) problems.push(`${OUT_REL} is stale or was edited by hand`);
  const embedded = toBinary(FileDescriptorProtoSchema, file_buf_validate_validate.proto);
  const built = buildVendored();
  if (Buffer.compare(embedded, toBinary(FileDescriptorProtoSchema, built)) !== 0) {
    // With the registry, custom options show up in the JSON instead of being dropped as unknown.
    const registry = fileRegistry(file_buf_validate_validate);
    const diff = differences(
      toJson(FileDescriptorProtoSchema, file_buf_validate_validate.proto, { registry }),
      toJson(FileDescriptorProtoSchema, built, { registry }),
    );
    problems.push(`buf build of ${OUT_REL} differs from the embedded descriptor:`);
    problems.push(...diff.map((d) => `  ${d}`));
    if (diff.length === 0) problems.push("  (same content, different encoding, e.g. option field order)");
  }
  return problems;
}

function main(argv: string[]): number {
  const text = renderProtoFile(file_buf_validate_validate, header());
  if (argv.includes("--check")) {
    const problems = check(text);
    for (const p of problems) console.error(p);
    if (problems.length > 0) console.error("Run `npx node scripts/vendor-protovalidate.ts` to regenerate.");
    else console.log(`${OUT_REL}: up to date, buf build reproduces the embedded descriptor byte for byte`);
    return problems.length > 0 ? 1 : 0;
  }
  mkdirSync(dirname(OUT_PATH), { recursive: true });
  writeFileSync(OUT_PATH, text);
  console.log(`wrote ${OUT_REL} (${text.split("\n").length - 1} lines)`);
  return 0;
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2));
