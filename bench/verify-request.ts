import { grpcUnframe } from "./grpc-frame.ts";
import { grpcJsUnary } from "./grpc-js-call.ts";
import { grpcStatusOf, h2Post } from "./h2-request.ts";
import type { H2loadTarget } from "./h2load.ts";

/**
 * Sends exactly what h2load will send, once, and returns the response message of a
 * gRPC target; throws unless the answer is HTTP 200 with grpc-status 0. For a gRPC
 * target it also makes the same call with a real @grpc/grpc-js client (with the
 * target's other headers, such as `authorization`, as metadata) and checks both
 * answers carry the same bytes.
 */
export async function verifyGrpcTarget(target: H2loadTarget): Promise<Buffer> {
  const url = new URL(target.url);
  const response = await h2Post(url.origin, url.pathname, target.headers, target.body);
  const status = grpcStatusOf(response);
  if (response.status !== 200 || status.code !== 0) {
    throw new Error(`${url.pathname} over gRPC: HTTP ${response.status}, grpc-status ${status.code} ${status.message}`);
  }
  const message = grpcUnframe(response.body);
  const metadata = Object.fromEntries(Object.entries(target.headers).filter(([name]) => !(name in grpcHeaders)));
  const viaClient = await grpcJsUnary(url.host, url.pathname, grpcUnframe(Buffer.from(target.body)), metadata);
  if (!viaClient.equals(message)) {
    // Both are the same read of the same data (an echo, or a profile not changing during the check).
    throw new Error(`${url.pathname}: grpc-js and the raw request got different answers`);
  }
  return message;
}

/** Sends what h2load will send to a Connect JSON target, once; throws unless HTTP 200 with a JSON body. */
export async function verifyJsonTarget(target: H2loadTarget): Promise<unknown> {
  const url = new URL(target.url);
  const response = await h2Post(url.origin, url.pathname, target.headers, target.body);
  const text = response.body.toString("utf8");
  if (response.status !== 200 || !String(response.headers["content-type"]).startsWith("application/json")) {
    throw new Error(`${url.pathname} over Connect JSON: HTTP ${response.status} ${text}`);
  }
  return JSON.parse(text) as unknown;
}

/** Headers of a unary gRPC request as h2load sends them. */
export const grpcHeaders = { "content-type": "application/grpc", te: "trailers" } as const;

/** Headers of a unary Connect JSON request. */
export const connectJsonHeaders = { "content-type": "application/json", "connect-protocol-version": "1" } as const;

/** The header that authenticates a call with an access token. */
export function bearerHeader(accessToken: string): { readonly authorization: string } {
  return { authorization: `Bearer ${accessToken}` };
}
