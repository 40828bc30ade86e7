import {Transform, type TransformCallback} from 'node:stream'

/** How much of a command's stderr is kept for its error message: the end is what says why. */
const STDERR_KEEP = 64 * 1024

/**
 * Splits an engine exec's multiplexed stream (8-byte headers: stream 1 or 2, 3 zero
 * bytes, a big-endian size) as it arrives: stdout frames are pushed on, with the
 * reader's backpressure reaching the socket; stderr keeps only its last 64 KiB.
 * `finish` runs when the input ended, before the output ends: a rejection becomes
 * the stream's error (the exit code is checked there).
 */
export class ExecDemux extends Transform {
  /** Bytes not yet split, and how many are needed before the next frame can be. */
  private pending: Buffer[] = []
  private have = 0
  private need = 8
  private err: Buffer[] = []
  private errBytes = 0

  constructor(private readonly finish: (stderr: string) => Promise<void> = async () => {}) {
    super()
  }

  /** The end of what the command wrote to stderr so far. */
  get stderr(): string {
    return Buffer.concat(this.err).toString('utf8')
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.pending.push(chunk)
    this.have += chunk.length
    // Joined only once a whole frame is there: small chunks of a large frame are not copied over and over.
    if (this.have < this.need) return cb()
    let buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.have)
    this.need = 8
    while (buf.length >= 8) {
      const kind = buf[0]!
      if (kind > 2 || buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 0) return cb(new Error(`the engine sent a frame header that is not one (bytes ${buf.subarray(0, 8).toString('hex')})`))
      const size = buf.readUInt32BE(4)
      if (buf.length < 8 + size) {
        this.need = 8 + size
        break
      }
      const data = buf.subarray(8, 8 + size)
      if (kind === 2) this.keepStderr(data)
      else if (size) this.push(data)
      buf = buf.subarray(8 + size)
    }
    this.pending = buf.length ? [buf] : []
    this.have = buf.length
    cb()
  }

  override _flush(cb: TransformCallback): void {
    if (this.have) return cb(new Error(`the engine's stream ended inside a frame (${this.have} bytes left over)`))
    this.finish(this.stderr).then(() => cb(), (e: Error) => cb(e))
  }

  private keepStderr(data: Buffer): void {
    this.err.push(Buffer.from(data))
    this.errBytes += data.length
    while (this.errBytes > STDERR_KEEP && this.err.length > 1) this.errBytes -= this.err.shift()!.length
  }
}

/** One frame of the engine's multiplexed format (for tests and for writing a stream's input). */
export function execFrame(stream: 1 | 2, data: Buffer | string): Buffer {
  const body = Buffer.from(data)
  const head = Buffer.alloc(8)
  head[0] = stream
  head.writeUInt32BE(body.length, 4)
  return Buffer.concat([head, body])
}

/** A container's log (one multiplexed buffer, as the engine answers without follow) as text, both streams in order. */
export function logText(buf: Buffer): string {
  const parts: Buffer[] = []
  let i = 0
  while (i + 8 <= buf.length && buf[i]! <= 2 && buf[i + 1] === 0 && buf[i + 2] === 0 && buf[i + 3] === 0) {
    const size = buf.readUInt32BE(i + 4)
    parts.push(buf.subarray(i + 8, i + 8 + size))
    i += 8 + size
  }
  // A log without headers (a TTY container) is the text itself.
  if (i < buf.length) parts.push(buf.subarray(i))
  return Buffer.concat(parts).toString('utf8')
}
