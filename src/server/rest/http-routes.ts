import { getOption, hasOption, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { http } from "../../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../../gen/google/api/http_pb.js";
import type { RpcEntry, RpcTable } from "../../rpc/rpc-table.ts";
import { acceptsTextValue, protoPath, resolveFieldPath } from "./field-path.ts";
import {
  compareSpecificity,
  matchPathTemplate,
  parsePathTemplate,
  templateShape,
  type PathTemplate,
  type TemplateVariable,
} from "./path-template.ts";

/** A unary entry of the RPC table: the only kind REST transcodes. */
export type UnaryEntry = Extract<RpcEntry, { kind: "unary" }>;

/** One REST route, as listed for the README and tests. */
export interface RouteInfo {
  /** The gRPC path of the method, `/telemed.patient.v1.PatientService/GetPatient`. */
  readonly rpc: string;
  /** `GET`, `POST`, ... (`*` for a custom rule that accepts any method). */
  readonly httpMethod: string;
  /** The path template as annotated, `/{name=patients/*}`. */
  readonly template: string;
  /** `body` of the rule: "" (no body), "*" or a top-level field name. */
  readonly body: string;
  /** `response_body` of the rule: "" for the whole response message. */
  readonly responseBody: string;
}

/** Where the request body goes. */
export type BodyBinding =
  | { readonly kind: "none" }
  | { readonly kind: "all" }
  | { readonly kind: "field"; readonly field: DescField };

/** A variable of the template and the field chain it sets. */
export interface PathBinding {
  readonly variable: TemplateVariable;
  readonly chain: readonly DescField[];
}

/** A compiled route: everything a request needs, resolved against the descriptors once. */
export interface Route {
  readonly info: RouteInfo;
  readonly entry: UnaryEntry;
  readonly template: PathTemplate;
  readonly pathBindings: readonly PathBinding[];
  readonly body: BodyBinding;
  readonly responseField: DescField | undefined;
  /** The top-level `update_mask` FieldMask field, when the body binds a message field (see update-mask.ts). */
  readonly updateMask: DescField | undefined;
  /** Proto paths set by the path or the body; query parameters may not touch them. */
  readonly boundPaths: readonly string[];
}

/** The outcome of matching a request: a route, a path served only for other methods, or nothing. */
export type RouteMatch =
  | { readonly kind: "found"; readonly route: Route; readonly values: readonly string[] }
  | { readonly kind: "wrong-method"; readonly allow: readonly string[] }
  | { readonly kind: "none" };

/**
 * Compiles the REST routes of every unary method in the table that carries a
 * `google.api.http` rule, including its `additional_bindings`. Streaming methods are
 * skipped. Throws on an annotation that cannot work (a bad template, an unknown field,
 * two rules claiming the same method and path), so the mistake stops start-up instead
 * of surfacing as a 404 later.
 */
export function compileRoutes(table: RpcTable): Route[] {
  const routes: Route[] = [];
  const claimed = new Map<string, string>();
  for (const entry of table.entries()) {
    if (entry.kind !== "unary" || !hasOption(entry.method, http)) continue;
    const rule = getOption(entry.method, http);
    for (const binding of [rule, ...rule.additionalBindings]) {
      const route = compileRule(entry, binding);
      const key = `${route.info.httpMethod} ${templateShape(route.template)}`;
      const owner = claimed.get(key);
      if (owner !== undefined) throw new Error(`${entry.path}: REST route ${key} is already taken by ${owner}`);
      claimed.set(key, entry.path);
      routes.push(route);
    }
  }
  return routes.sort((a, b) => compareSpecificity(a.template, b.template));
}

/**
 * Finds the route for a method and raw path. Routes come sorted most specific first;
 * once a path matches, only routes of the same kind (with or without a custom verb)
 * are considered, so `POST /patients/1:cancel` never falls back to a `/{name=patients/*}`
 * route reading the id as `1:cancel`, and a wrong method gets a 405 listing the right ones.
 */
export function matchRoute(routes: readonly Route[], method: string, path: string): RouteMatch {
  const allow: string[] = [];
  let verbTier: boolean | undefined;
  for (const route of routes) {
    const hasVerb = route.template.verb !== undefined;
    if (verbTier !== undefined && hasVerb !== verbTier) break;
    const values = matchPathTemplate(route.template, path);
    if (values === undefined) continue;
    verbTier = hasVerb;
    if (route.info.httpMethod === method || route.info.httpMethod === "*") return { kind: "found", route, values };
    if (!allow.includes(route.info.httpMethod)) allow.push(route.info.httpMethod);
  }
  return allow.length > 0 ? { kind: "wrong-method", allow } : { kind: "none" };
}

function compileRule(entry: UnaryEntry, rule: HttpRule): Route {
  const fail = (why: string): never => {
    throw new Error(`${entry.path}: google.api.http ${why}`);
  };
  const pattern = patternOf(rule) ?? fail("rule has no pattern");
  let template: PathTemplate;
  try {
    template = parsePathTemplate(pattern.template);
  } catch (error) {
    return fail((error as Error).message);
  }
  const input = entry.method.input;
  const pathBindings = template.variables.map((variable): PathBinding => {
    const chain = resolveFieldPath(input, variable.fieldPath);
    if (typeof chain === "string") return fail(`path variable {${variable.fieldPath.join(".")}}: ${chain}`);
    const leaf = chain.at(-1) as DescField;
    const singular = leaf.fieldKind === "scalar" || leaf.fieldKind === "enum" || leaf.fieldKind === "message";
    if (!singular || !acceptsTextValue(leaf)) {
      fail(`path variable {${protoPath(chain)}} must name a singular scalar, enum or primitive well-known type`);
    }
    return { variable, chain };
  });
  const body =
    bodyBinding(input, rule.body) ?? fail(`body "${rule.body}" is not a top-level field of ${input.typeName}`);
  let responseField: DescField | undefined;
  if (rule.responseBody !== "") {
    responseField = entry.method.output.fields.find((f) => f.name === rule.responseBody);
    if (responseField === undefined)
      fail(`response_body "${rule.responseBody}" is not a field of ${entry.method.output.typeName}`);
  }
  const boundPaths = pathBindings.map((binding) => protoPath(binding.chain));
  if (body.kind === "field") boundPaths.push(body.field.name);
  const info: RouteInfo = {
    rpc: entry.path,
    httpMethod: pattern.httpMethod,
    template: pattern.template,
    body: rule.body,
    responseBody: rule.responseBody,
  };
  return {
    info,
    entry,
    template,
    pathBindings,
    body,
    responseField,
    updateMask: updateMaskField(input, body),
    boundPaths,
  };
}

function patternOf(rule: HttpRule): { httpMethod: string; template: string } | undefined {
  switch (rule.pattern.case) {
    case "get":
    case "put":
    case "post":
    case "delete":
    case "patch":
      return { httpMethod: rule.pattern.case.toUpperCase(), template: rule.pattern.value };
    case "custom":
      return { httpMethod: rule.pattern.value.kind.toUpperCase(), template: rule.pattern.value.path };
    default:
      return undefined;
  }
}

function bodyBinding(input: DescMessage, body: string): BodyBinding | undefined {
  if (body === "") return { kind: "none" };
  if (body === "*") return { kind: "all" };
  const field = input.fields.find((f) => f.name === body);
  return field === undefined ? undefined : { kind: "field", field };
}

function updateMaskField(input: DescMessage, body: BodyBinding): DescField | undefined {
  if (body.kind !== "field" || body.field.fieldKind !== "message") return undefined;
  const field = input.fields.find((f) => f.name === "update_mask");
  const isMask = field?.fieldKind === "message" && field.message.typeName === "google.protobuf.FieldMask";
  return isMask ? field : undefined;
}
