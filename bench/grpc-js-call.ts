import * as grpc from "@grpc/grpc-js";

/**
 * One unary call with a real @grpc/grpc-js client, the way a sibling service would
 * call: raw bytes in and out (the caller encodes with protobuf-es). Rejects with
 * the gRPC status when the call fails.
 */
export function grpcJsUnary(address: string, path: string, request: Uint8Array): Promise<Buffer> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      (bytes: Buffer) => bytes,
      (bytes: Buffer) => bytes,
      Buffer.from(request),
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
      (error: grpc.ServiceError | null, response?: Buffer) => {
        if (error) reject(new Error(`grpc-js call ${path} failed: ${grpc.status[error.code]} ${error.details}`));
        else resolve(response ?? Buffer.alloc(0));
      },
    );
  }).finally(() => client.close());
}
