import * as http2 from "node:http2";

/** HTTP/2: resets the stream with NO_ERROR once the answer (and Node's trailers) are out, so the client stops sending. */
export function resetAfterAnswer(stream: http2.ServerHttp2Stream): void {
  stream.once("wantTrailers", () => {
    setImmediate(() => {
      if (!stream.destroyed && stream.state.remoteClose === 0) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    });
  });
}
