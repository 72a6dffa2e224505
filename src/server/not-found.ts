import { sendBody, type HttpRequest, type HttpResponse } from "./http-types.ts";

const body = JSON.stringify({ error: { code: 404, status: "NOT_FOUND", message: "No such route or method." } });

/**
 * The answer for a path no route serves: Google's JSON error shape (as REST errors
 * use), without echoing the path back.
 */
export function notFoundFallback(_req: HttpRequest, res: HttpResponse): void {
  sendBody(res, 404, "application/json", body);
}
