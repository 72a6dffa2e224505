import { createRegistry, type Registry } from "@bufbuild/protobuf";
import { Code, ConnectError, createHandlerContext } from "@connectrpc/connect";
import { peerValues } from "../peer-values.ts";
import { file_google_rpc_error_details } from "../../../gen/google/rpc/error_details_pb.js";
import { statusError } from "../../rpc/error-mapping.ts";
import type { RpcTable } from "../../rpc/rpc-table.ts";
import type { HttpRequest, HttpResponse } from "../http-types.ts";
import { compileRoutes, matchRoute, type Route, type RouteInfo } from "./http-routes.ts";
import { readJsonBody } from "./request-body.ts";
import { buildRequest } from "./request-message.ts";
import { RestError, toPublicError } from "./rest-errors.ts";
import { requestHeaders, responseJson, writeError, writeJson } from "./rest-response.ts";

export type { RouteInfo } from "./http-routes.ts";

/** Options of the REST transcoder. */
export interface RestTranscoderOptions {
  /** Largest request body accepted, in bytes; larger ones get 413 without being read. */
  readonly readMaxBytes: number;
  /** Aborted when the server shuts down, so handlers stop waiting. */
  readonly shutdownSignal?: AbortSignal;
}

/** REST/JSON in front of the RPC table. */
export interface RestTranscoder {
  /** Every route, most specific first: the REST surface, for the README and tests. */
  readonly routes: readonly RouteInfo[];
  /**
   * Answers a request whose path matches a route (405 with `Allow` when only the
   * method is wrong) and resolves true; resolves false, without touching the request,
   * when no route matches, so the caller can hand it to Connect.
   */
  handle(req: HttpRequest, res: HttpResponse): Promise<boolean>;
}

/**
 * Builds the REST/JSON transcoder from the `google.api.http` annotations of the
 * table's unary methods. Routes are compiled once here; each request is then matched,
 * turned into the request message (path variables, JSON body, query parameters),
 * passed through the same call pipeline as every other protocol, and answered with the
 * proto3 JSON of the response, or an error in Google's JSON error shape.
 */
export function createRestTranscoder(table: RpcTable, options: RestTranscoderOptions): RestTranscoder {
  const routes = compileRoutes(table);
  // Output messages may hold google.protobuf.Any: JSON needs the types of the served files.
  const files = new Set(table.services().map((service) => service.file));
  const registry = createRegistry(file_google_rpc_error_details, ...files);
  return {
    routes: routes.map((route) => route.info),
    async handle(req, res) {
      const url = req.url ?? "/";
      const queryAt = url.indexOf("?");
      const path = queryAt === -1 ? url : url.slice(0, queryAt);
      const match = matchRoute(routes, req.method ?? "GET", path);
      if (match.kind === "none") return false;
      if (match.kind === "wrong-method") {
        const allow = match.allow.join(", ");
        const error = statusError(Code.Unimplemented, "METHOD_NOT_ALLOWED", `This path accepts only ${allow}.`);
        writeError(req, res, error, 405, { fixed: { allow } });
        return true;
      }
      const query = queryAt === -1 ? "" : url.slice(queryAt + 1);
      await serve(match.route, match.values, query, req, res, options, registry);
      return true;
    },
  };
}

async function serve(
  route: Route,
  values: readonly string[],
  query: string,
  req: HttpRequest,
  res: HttpResponse,
  options: RestTranscoderOptions,
  registry: Registry,
): Promise<void> {
  const clientGone = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) clientGone.abort(new ConnectError("the client closed the request", Code.Canceled));
  });
  let request: ReturnType<typeof buildRequest>;
  try {
    const body = await readJsonBody(req, route.body, options.readMaxBytes);
    request = buildRequest(route, values, body, query);
  } catch (thrown) {
    const { error, httpStatus } = toPublicError(thrown);
    const refusal = thrown instanceof RestError ? thrown : undefined;
    writeError(req, res, error, httpStatus, { fixed: refusal?.headers, closeConnection: refusal?.closeConnection });
    return;
  }

  const { entry } = route;
  const context = createHandlerContext({
    service: entry.service,
    method: entry.method,
    protocolName: "rest",
    requestMethod: req.method ?? "GET",
    url: req.url ?? "/",
    shutdownSignal: options.shutdownSignal,
    requestSignal: clientGone.signal,
    requestHeader: requestHeaders(req),
    contextValues: peerValues(req),
  });
  try {
    const output = await entry.call(request, context);
    writeJson(req, res, 200, responseJson(route, output, registry), { headers: context.responseHeader });
  } catch (thrown) {
    const { error, httpStatus } = toPublicError(thrown);
    writeError(req, res, error, httpStatus, { headers: context.responseHeader });
  } finally {
    // Tells anything the handler started (downstream calls) that the RPC is over.
    context.abort();
  }
}
