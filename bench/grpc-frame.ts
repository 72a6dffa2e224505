/**
 * gRPC's length-prefixed message: one flag byte (0: not compressed), the length as
 * a big-endian uint32, then the message. A unary request body is exactly one.
 */
export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(message.length + 5);
  out.writeUInt8(0, 0);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** The message inside a body holding one uncompressed frame; throws on anything else. */
export function grpcUnframe(body: Buffer): Buffer {
  if (body.length < 5) throw new Error(`gRPC body of ${body.length} bytes holds no message`);
  if (body.readUInt8(0) !== 0) throw new Error("gRPC response message is compressed");
  const length = body.readUInt32BE(1);
  if (length !== body.length - 5) throw new Error(`gRPC body holds ${body.length - 5} bytes, frame says ${length}`);
  return body.subarray(5);
}
