import type { DescField, DescMessage, Message } from "@bufbuild/protobuf";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import type { FieldViolation } from "../shared/domain-errors.ts";

/**
 * The problems with an update mask: every path must start with one of the `writable`
 * top-level fields and name a field that exists, so output-only and identity fields
 * cannot be written through a mask.
 */
export function fieldMaskViolations(
  schema: DescMessage,
  paths: readonly string[],
  writable: ReadonlySet<string>,
): FieldViolation[] {
  return paths
    .filter((path) => {
      const segments = path.split(".");
      return !writable.has(segments[0] as string) || !resolves(schema, segments);
    })
    .map((path) => ({ field: "update_mask", description: `"${path}" is not a field that can be updated` }));
}

/**
 * Copies the fields named by `paths` (snake_case, dot-separated, AIP-161, checked
 * with `fieldMaskViolations`) from `source` onto `target`: a path to a field that is
 * unset in `source` clears it on `target`.
 */
export function applyFieldMask<T extends Message>(
  schema: DescMessage,
  target: T,
  source: T,
  paths: readonly string[],
): void {
  for (const path of paths) copyPath(reflect(schema, target), reflect(schema, source), path.split("."));
}

/** The names of the top-level fields of `message` that are set and writable. */
export function populatedPaths(schema: DescMessage, message: Message, writable: ReadonlySet<string>): string[] {
  const view = reflect(schema, message);
  return view.fields.filter((field) => view.isSet(field) && writable.has(field.name)).map((field) => field.name);
}

/** True when every segment names a field, descending only through singular message fields. */
function resolves(schema: DescMessage, segments: readonly string[]): boolean {
  let current: DescMessage | undefined = schema;
  for (const [index, segment] of segments.entries()) {
    const field: DescField | undefined = current?.fields.find((f) => f.name === segment);
    if (!field) return false;
    const last = index === segments.length - 1;
    if (!last) current = field.fieldKind === "message" ? field.message : undefined;
  }
  return true;
}

function copyPath(target: ReflectMessage, source: ReflectMessage, segments: readonly string[]): void {
  const [head, ...rest] = segments;
  const field = target.desc.fields.find((f) => f.name === head);
  if (!field) return;
  if (rest.length === 0) {
    if (source.isSet(field)) target.set(field, source.get(field) as never);
    else target.clear(field);
    return;
  }
  if (field.fieldKind !== "message") return;
  const targetChild = target.get(field);
  copyPath(targetChild, source.get(field), rest);
  if (!target.isSet(field)) target.set(field, targetChild);
}
