import * as grpc from "@grpc/grpc-js";

/**
 * Unary calls with a real @grpc/grpc-js client, the way a sibling service would
 * call: raw bytes in and out (the caller encodes with protobuf-es), `concurrency`
 * calls in flight on one channel, each with `headers` as metadata (for example
 * `authorization`). Rejects with the gRPC status of the first call that fails.
 */
export async function grpcJsUnaryMany(
  address: string,
  path: string,
  requests: readonly Uint8Array[],
  concurrency = 1,
  headers: Readonly<Record<string, string>> = {},
): Promise<Buffer[]> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  for (const [name, value] of Object.entries(headers)) metadata.set(name, value);
  const call = (request: Uint8Array) =>
    new Promise<Buffer>((resolve, reject) => {
      client.makeUnaryRequest(
        path,
        (bytes: Buffer) => bytes,
        (bytes: Buffer) => bytes,
        Buffer.from(request),
        metadata.clone(),
        { deadline: Date.now() + 10_000 },
        (error: grpc.ServiceError | null, response?: Buffer) => {
          if (error) reject(new Error(`grpc-js call ${path} failed: ${grpc.status[error.code]} ${error.details}`));
          else resolve(response ?? Buffer.alloc(0));
        },
      );
    });
  try {
    const responses: Buffer[] = new Array(requests.length);
    let next = 0;
    const worker = async () => {
      while (next < requests.length) {
        const index = next++;
        responses[index] = await call(requests[index] as Uint8Array);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
    return responses;
  } finally {
    client.close();
  }
}

/** One unary call with a real @grpc/grpc-js client (see grpcJsUnaryMany). */
export async function grpcJsUnary(
  address: string,
  path: string,
  request: Uint8Array,
  headers: Readonly<Record<string, string>> = {},
): Promise<Buffer> {
  const [response] = await grpcJsUnaryMany(address, path, [request], 1, headers);
  return response as Buffer;
}
