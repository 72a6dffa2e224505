/**
 * The path templates of `google.api.http` (google/api/http.proto):
 *
 *     Template = "/" Segments [ Verb ] ;
 *     Segments = Segment { "/" Segment } ;
 *     Segment  = "*" | "**" | LITERAL | Variable ;
 *     Variable = "{" FieldPath [ "=" Segments ] "}" ;
 *     FieldPath = IDENT { "." IDENT } ;
 *     Verb     = ":" LITERAL ;
 *
 * Templates are parsed once when the routes are compiled; matching a request path
 * is then a walk over its `/`-separated segments, without regular expressions.
 */

/** One segment of a template: a literal, `*` (exactly one segment) or `**` (the rest, zero or more). */
export type TemplateSegment =
  | { readonly kind: "literal"; readonly value: string }
  | { readonly kind: "wildcard" }
  | { readonly kind: "deep" };

/** A `{field.path=...}` variable: the segments `[start, end)` it captures. */
export interface TemplateVariable {
  /** The field path, one identifier per element (`["patient", "name"]`). */
  readonly fieldPath: readonly string[];
  readonly start: number;
  readonly end: number;
  /**
   * Whether the variable may span several segments (`{name=patients/*}`, `{x=**}`).
   * Such values keep `%2F` encoded when decoded, as http.proto specifies, so that an
   * encoded slash inside an id cannot change the resource path.
   */
  readonly multiSegment: boolean;
}

/** A parsed template. */
export interface PathTemplate {
  /** The template as written in the annotation. */
  readonly source: string;
  readonly segments: readonly TemplateSegment[];
  readonly variables: readonly TemplateVariable[];
  /** The custom verb after the last `:` (`cancel`), if any. */
  readonly verb: string | undefined;
}

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Characters that end a literal: the template's own punctuation. */
const punctuation = new Set(["/", "{", "}", "=", ":", "*"]);

/** Parses a template, throwing an Error that quotes it when it breaks the grammar. */
export function parsePathTemplate(source: string): PathTemplate {
  let pos = 0;
  const segments: TemplateSegment[] = [];
  const variables: TemplateVariable[] = [];
  const fail = (why: string): never => {
    throw new Error(`invalid google.api.http path template "${source}": ${why} at offset ${pos}`);
  };
  const take = (char: string): boolean => {
    if (source[pos] !== char) return false;
    pos++;
    return true;
  };
  const literal = (): string => {
    const begin = pos;
    while (pos < source.length && !punctuation.has(source[pos] as string)) pos++;
    if (pos === begin) fail("expected a literal");
    return source.slice(begin, pos);
  };

  const parseSegment = (inVariable: boolean): void => {
    if (take("{")) {
      if (inVariable) fail("variables cannot nest");
      const begin = pos;
      while (pos < source.length && source[pos] !== "=" && source[pos] !== "}") pos++;
      const fieldPath = source.slice(begin, pos).split(".");
      if (!fieldPath.every((part) => identifier.test(part))) fail("expected a field path");
      const start = segments.length;
      if (take("=")) parseSegments(true);
      else segments.push({ kind: "wildcard" });
      if (!take("}")) fail('expected "}"');
      const end = segments.length;
      const multiSegment = end - start > 1 || segments[start]?.kind === "deep";
      variables.push({ fieldPath, start, end, multiSegment });
    } else if (take("*")) {
      segments.push(take("*") ? { kind: "deep" } : { kind: "wildcard" });
    } else {
      segments.push({ kind: "literal", value: literal() });
    }
  };
  const parseSegments = (inVariable: boolean): void => {
    do parseSegment(inVariable);
    while (take("/"));
  };

  if (!take("/")) fail('a template starts with "/"');
  parseSegments(false);
  const verb = take(":") ? literal() : undefined;
  if (pos !== source.length) fail("unexpected character");

  const deep = segments.findIndex((segment) => segment.kind === "deep");
  if (deep !== -1 && deep !== segments.length - 1) fail('"**" must be the last segment');
  const names = variables.map((variable) => variable.fieldPath.join("."));
  if (new Set(names).size !== names.length) fail("a field is bound twice");
  return { source, segments, variables, verb };
}

/**
 * Matches a raw (still percent-encoded) URL path, without its query string. Returns
 * the raw text each variable captured, in the order of `template.variables`, or
 * undefined. Empty segments (`//`, a trailing `/`) never match.
 */
export function matchPathTemplate(template: PathTemplate, path: string): string[] | undefined {
  let rest = path;
  if (template.verb !== undefined) {
    const suffix = `:${template.verb}`;
    if (!rest.endsWith(suffix)) return undefined;
    rest = rest.slice(0, -suffix.length);
  }
  if (rest[0] !== "/") return undefined;
  const parts = rest.slice(1).split("/");
  const { segments } = template;
  const deep = segments.at(-1)?.kind === "deep";
  const fixed = deep ? segments.length - 1 : segments.length;
  if (deep ? parts.length < fixed : parts.length !== fixed) return undefined;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    if (part === "") return undefined;
    const segment = segments[Math.min(i, segments.length - 1)] as TemplateSegment;
    if (segment.kind === "literal" && segment.value !== part) return undefined;
  }
  return template.variables.map((variable) => {
    const end = deep && variable.end === segments.length ? parts.length : variable.end;
    return parts.slice(variable.start, end).join("/");
  });
}

/**
 * Decodes a captured value. Single-segment variables are fully percent-decoded;
 * multi-segment ones keep `%2F` as is (http.proto, "Path template syntax").
 * Throws URIError on malformed percent-encoding.
 */
export function decodeVariable(raw: string, multiSegment: boolean): string {
  return decodeURIComponent(multiSegment ? raw.replace(/%2F/gi, (slash) => `%25${slash.slice(1)}`) : raw);
}

/**
 * Orders templates so that the more specific one is tried first: templates with a
 * custom verb (so `/patients/1:cancel` is not taken for an id `1:cancel`), then
 * segment by segment literal before `*` before `**`.
 */
export function compareSpecificity(a: PathTemplate, b: PathTemplate): number {
  if ((a.verb === undefined) !== (b.verb === undefined)) return a.verb === undefined ? 1 : -1;
  const rank = { literal: 0, wildcard: 1, deep: 2 } as const;
  const length = Math.max(a.segments.length, b.segments.length);
  for (let i = 0; i < length; i++) {
    const left = a.segments[i];
    const right = b.segments[i];
    if (left === undefined || right === undefined) return left === undefined ? 1 : -1;
    const diff = rank[left.kind] - rank[right.kind];
    if (diff !== 0) return diff;
  }
  return 0;
}

/** A key equal for templates that match exactly the same paths (variable names aside). */
export function templateShape(template: PathTemplate): string {
  const parts = template.segments.map((segment) =>
    segment.kind === "literal" ? `=${segment.value}` : segment.kind === "wildcard" ? "*" : "**",
  );
  return `/${parts.join("/")}${template.verb === undefined ? "" : `:${template.verb}`}`;
}
