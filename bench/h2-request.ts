import * as http2 from "node:http2";

/** A complete HTTP/2 response: status, headers, body and trailers. */
export interface H2Response {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly trailers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * Sends one POST over a fresh HTTP/2 cleartext connection and reads the whole
 * answer. The bench sends exactly the bytes and headers h2load will send, to check
 * they succeed before putting load on them.
 */
export function h2Post(
  origin: string,
  path: string,
  headers: Readonly<Record<string, string>>,
  body: Uint8Array,
): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(origin);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": path, ...headers });
    const chunks: Buffer[] = [];
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    stream.on("response", (received) => {
      responseHeaders = received;
    });
    stream.on("trailers", (received) => {
      trailers = received;
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", reject);
    stream.on("end", () => {
      session.close();
      resolve({
        status: Number(responseHeaders[":status"]),
        headers: responseHeaders,
        trailers,
        body: Buffer.concat(chunks),
      });
    });
    stream.end(body);
  });
}

/** grpc-status of a gRPC response: from the trailers, or the headers of a trailers-only answer. */
export function grpcStatusOf(response: H2Response): { code: number; message: string } {
  const source = response.trailers["grpc-status"] !== undefined ? response.trailers : response.headers;
  const code = source["grpc-status"];
  const message = source["grpc-message"];
  return {
    code: code === undefined ? -1 : Number(code),
    message: typeof message === "string" ? decodeURIComponent(message) : "",
  };
}
