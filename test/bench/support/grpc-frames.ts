/**
 * gRPC's length-prefixed message framing over a raw HTTP/2 stream: a 1-byte compressed flag
 * (always 0 here), a 4-byte big-endian length, then the protobuf bytes. What @grpc/grpc-js does
 * per message, without its call machinery, so that thousands of simulated agents fit in one
 * process.
 */

export const FRAME_HEADER_BYTES = 5;

/** One message framed for the wire. */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + message.byteLength);
  out[0] = 0;
  out.writeUInt32BE(message.byteLength, 1);
  out.set(message, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Collects DATA chunks and yields each complete message. Chunks are kept as they came and
 * joined once per message, so a 100 KB bundle split into many frames is copied once.
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** The length of the message being collected; -1 while its header is incomplete. */
  #want = -1;

  *push(chunk: Buffer): Iterable<Buffer> {
    this.#chunks.push(chunk);
    this.#buffered += chunk.byteLength;
    for (;;) {
      if (this.#want < 0) {
        if (this.#buffered < FRAME_HEADER_BYTES) return;
        const header = this.#take(FRAME_HEADER_BYTES);
        if (header[0] !== 0) throw new Error("compressed gRPC messages are not supported");
        this.#want = header.readUInt32BE(1);
      }
      if (this.#buffered < this.#want) return;
      const message = this.#take(this.#want);
      this.#want = -1;
      yield message;
    }
  }

  #take(bytes: number): Buffer {
    const joined = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
    const taken = joined.subarray(0, bytes);
    const rest = joined.subarray(bytes);
    this.#chunks = rest.byteLength > 0 ? [rest] : [];
    this.#buffered = rest.byteLength;
    return taken;
  }
}
