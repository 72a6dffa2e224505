import { create, type DescMessage, type JsonObject, type JsonValue, type Message } from "@bufbuild/protobuf";
import { reflect } from "@bufbuild/protobuf/reflect";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import type { Route } from "./http-routes.ts";

/**
 * Partial updates over REST (AIP-134). `PUT /patients/123` with a JSON body names the
 * fields to change by sending them; REST clients rarely send an `update_mask`. So when
 * the route's body binds a message field (`body: "patient"`), the request has a
 * top-level `update_mask` FieldMask, and the client did not send one (`?update_mask=`
 * counts as sending one), the mask becomes the paths present in the JSON body:
 *
 * - nested objects are followed to their leaves, so `{"contact": {"phone": "+4..."}}`
 *   gives `contact.phone` and leaves the stored email alone (as grpc-gateway does);
 * - a leaf is a scalar, enum, list, map, `null` (which clears the field), an empty
 *   object, or a message treated as one value: well-known types (`google.protobuf.*`,
 *   e.g. Timestamp) and common types (`google.type.*`, e.g. Date), which are never
 *   half-updated;
 * - fields the path binds (`name` of `/{patient.name=patients/*}`) identify the
 *   resource and are not part of the mask;
 * - paths are in proto (snake_case) form, as FieldMask paths are.
 *
 * With nothing left (an empty object) no mask is set, and the handler's own rule for a
 * missing mask applies. The handler still decides which paths may change.
 */
export function deriveUpdateMask(route: Route, message: Message, bodyText: string): void {
  const maskField = route.updateMask;
  if (maskField === undefined || route.body.kind !== "field" || route.body.field.fieldKind !== "message") return;
  const view = reflect(route.entry.method.input, message);
  if (view.isSet(maskField)) return;
  const json = JSON.parse(bodyText) as JsonValue;
  if (!isObject(json)) return;
  const prefix = `${route.body.field.name}.`;
  const identifying = new Set(
    route.boundPaths.filter((path) => path.startsWith(prefix)).map((path) => path.slice(prefix.length)),
  );
  const paths = presentPaths(route.body.field.message, json, "").filter((path) => !identifying.has(path));
  if (paths.length === 0) return;
  view.set(maskField, reflect(FieldMaskSchema, create(FieldMaskSchema, { paths })));
}

/** The proto paths of the keys present in a JSON object of message `desc`, leaves only. */
export function presentPaths(desc: DescMessage, json: JsonObject, prefix: string): string[] {
  const paths: string[] = [];
  for (const [key, value] of Object.entries(json)) {
    // The body was decoded strictly before, so every key names a field.
    const field = desc.fields.find((f) => f.jsonName === key || f.name === key);
    if (field === undefined) continue;
    const path = prefix + field.name;
    const descend =
      field.fieldKind === "message" && !isAtomic(field.message) && isObject(value) && Object.keys(value).length > 0;
    if (descend) paths.push(...presentPaths(field.message, value, `${path}.`));
    else paths.push(path);
  }
  return paths;
}

function isAtomic(desc: DescMessage): boolean {
  return desc.typeName.startsWith("google.protobuf.") || desc.typeName.startsWith("google.type.");
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
