import type { DescMessage, Message } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { createValidator, type Validator } from "@bufbuild/protovalidate";
import { Code, type ConnectError } from "@connectrpc/connect";
import { statusError } from "./error-mapping.ts";

/**
 * Checks requests against the protovalidate rules declared in proto/. A request
 * that breaks them is refused with INVALID_ARGUMENT and one BadRequest field
 * violation per broken rule, before any handler runs.
 */
export class RequestValidator {
  readonly #validator: Validator = createValidator();

  /** The error to answer with, or undefined when the request is valid. */
  check(schema: DescMessage, message: Message): ConnectError | undefined {
    const result = this.#validator.validate(schema, message);
    if (result.kind === "valid") return undefined;
    if (result.kind === "error") {
      // A rule that cannot compile is our bug, not the client's; fail loudly in tests.
      throw result.error;
    }
    const violations = result.violations.map((v) => ({
      field: pathToString(v.field),
      description: v.message,
    }));
    const first = violations[0];
    const summary = first ? `${first.field || "request"}: ${first.description}` : "invalid request";
    const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : "";
    return statusError(Code.InvalidArgument, "INVALID_REQUEST", `Invalid request: ${summary}${more}.`, violations);
  }
}
