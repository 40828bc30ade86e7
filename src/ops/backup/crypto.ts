import {createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, type DecipherGCM} from 'node:crypto'
import {closeSync, createReadStream, existsSync, openSync, readFileSync, readSync, statSync} from 'node:fs'
import {open} from 'node:fs/promises'
import {Readable, Transform, Writable, type TransformCallback} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {writePrivateFile} from '../../config/secrets.js'
import {UserError} from '../../errors.js'

/** Every backup artifact starts with these bytes, then a 12-byte IV; it ends with the 16-byte GCM tag. */
export const MAGIC = Buffer.from('IMCTLBK1')
const TAG_BYTES = 16

export interface BackupKey {
  key: Buffer
  /** Names the key without revealing it; recorded in each manifest. */
  fingerprint: string
  file: string
}

/** Reads the backup key file, or creates it (32 random bytes, hex, mode 0600) when told to. */
export function loadBackupKey(file: string, create: boolean): BackupKey & {created: boolean} {
  let created = false
  if (!existsSync(file)) {
    if (!create) throw new UserError(`backup key ${file} does not exist`, ['Pass --key with the key file these backups were made with.'])
    writePrivateFile(file, randomBytes(32).toString('hex') + '\n')
    created = true
  }
  if (statSync(file).mode & 0o077) throw new UserError(`backup key ${file} is readable by others`, [`Run: chmod 600 ${file}`])
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex')
  if (key.length !== 32) throw new UserError(`backup key ${file} is not 64 hex characters`, ['Restore the key file from where you keep its copy.'])
  return {key, fingerprint: createHash('sha256').update(key).digest('hex').slice(0, 16), file, created}
}

/** AES-256-GCM over a stream: MAGIC, IV, ciphertext, tag. */
export function encryptor(key: Buffer): Transform {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  let started = false
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (!started) {
        started = true
        this.push(Buffer.concat([MAGIC, iv]))
      }
      cb(null, cipher.update(chunk))
    },
    flush(cb: TransformCallback) {
      if (!started) this.push(Buffer.concat([MAGIC, iv]))
      this.push(cipher.final())
      cb(null, cipher.getAuthTag())
    },
  })
}

/** Counts bytes and hashes them as they pass. */
export class HashTap extends Transform {
  readonly hash = createHash('sha256')
  size = 0
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk)
    this.size += chunk.length
    cb(null, chunk)
  }
}

/** sha256 and size of a file. */
export async function fileDigest(file: string): Promise<{sha256: string; size: number}> {
  const tap = new HashTap()
  await pipeline(createReadStream(file), tap, new Transform({transform: (_c, _e, cb) => cb()}))
  return {sha256: tap.hash.digest('hex'), size: tap.size}
}

/** Decrypts a whole artifact to check its GCM tag (and so every byte); returns the plaintext size. */
export async function checkDecrypts(file: string, key: Buffer): Promise<number> {
  const size = statSync(file).size
  if (size < MAGIC.length + 12 + TAG_BYTES) throw new Error('too short to be an artifact')
  const head = Buffer.alloc(MAGIC.length + 12)
  const fd = await open(file)
  try {
    await fd.read(head, 0, head.length, 0)
    const tag = Buffer.alloc(TAG_BYTES)
    await fd.read(tag, 0, TAG_BYTES, size - TAG_BYTES)
    if (!head.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not an imctl backup artifact (bad header)')
    const decipher = createDecipheriv('aes-256-gcm', key, head.subarray(MAGIC.length))
    decipher.setAuthTag(tag)
    let plain = 0
    await pipeline(
      ciphertext(file, head.length, size - TAG_BYTES),
      decipher,
      new Transform({
        transform(chunk: Buffer, _e, cb) {
          plain += chunk.length
          cb()
        },
      }),
    )
    return plain
  } finally {
    await fd.close()
  }
}

/** The manifest's own seal: HMAC-SHA256 with the backup key over its canonical JSON. */
export function sealManifest(body: object, key: Buffer): string {
  return createHmac('sha256', key).update(JSON.stringify(body)).digest('hex')
}

/** The plaintext of an artifact as a stream; the GCM tag is checked at its end (verify the set first). */
export function decryptArtifact(file: string, key: Buffer): NodeJS.ReadableStream {
  const size = statSync(file).size
  const fd = openSync(file, 'r')
  const head = Buffer.alloc(MAGIC.length + 12)
  const tag = Buffer.alloc(TAG_BYTES)
  try {
    readSync(fd, head, 0, head.length, 0)
    readSync(fd, tag, 0, TAG_BYTES, size - TAG_BYTES)
  } finally {
    closeSync(fd)
  }
  if (!head.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error(`${file} is not an imctl backup artifact`)
  const decipher = createDecipheriv('aes-256-gcm', key, head.subarray(MAGIC.length))
  decipher.setAuthTag(tag)
  return ciphertext(file, head.length, size - TAG_BYTES).pipe(decipher)
}

/** Bytes [start, end) of a file; an empty artifact has no ciphertext at all. */
function ciphertext(file: string, start: number, end: number): NodeJS.ReadableStream {
  return end > start ? createReadStream(file, {start, end: end - 1}) : Readable.from([])
}

/**
 * Decrypts an artifact read front to back (from a file or an S3 GET alike): checks
 * the header, holds the last 16 bytes back as the tag, and checks it at the end.
 */
export function decryptor(key: Buffer): Transform {
  const headLength = MAGIC.length + 12
  let head = Buffer.alloc(0)
  let tail = Buffer.alloc(0)
  let decipher: DecipherGCM | undefined
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (!decipher) {
        head = Buffer.concat([head, chunk])
        if (head.length < headLength) return cb()
        if (!head.subarray(0, MAGIC.length).equals(MAGIC)) return cb(new Error('not an imctl backup artifact (bad header)'))
        decipher = createDecipheriv('aes-256-gcm', key, head.subarray(MAGIC.length, headLength))
        chunk = head.subarray(headLength)
      }
      const data = tail.length ? Buffer.concat([tail, chunk]) : chunk
      const cut = Math.max(0, data.length - TAG_BYTES)
      tail = Buffer.from(data.subarray(cut))
      cb(null, cut ? decipher.update(data.subarray(0, cut)) : undefined)
    },
    flush(cb: TransformCallback) {
      if (!decipher || tail.length < TAG_BYTES) return cb(new Error('too short to be an artifact'))
      try {
        decipher.setAuthTag(tail)
        cb(null, decipher.final())
      } catch {
        cb(new Error('its authentication tag does not match: damaged, or made with another key'))
      }
    },
  })
}

/**
 * A sink that checks an artifact in one pass: every byte hashed and counted, and
 * decrypted (tag included); a decryption failure is recorded, not thrown, so the
 * hash still covers every byte.
 */
export class ArtifactCheck extends Writable {
  private readonly tap = new HashTap()
  private readonly plain: Transform
  plainBytes = 0
  decryptError: string | undefined
  sha256 = ''

  constructor(key: Buffer) {
    super()
    this.plain = decryptor(key)
    this.plain.on('data', (b: Buffer) => (this.plainBytes += b.length))
    this.plain.on('error', (e: Error) => (this.decryptError ??= e.message))
  }

  get size(): number {
    return this.tap.size
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.tap.hash.update(chunk)
    this.tap.size += chunk.length
    if (this.decryptError) return cb()
    this.plain.write(chunk, () => cb())
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.sha256 = this.tap.hash.digest('hex')
    if (this.decryptError) return cb()
    let called = false
    const done = () => {
      if (!called) (called = true), cb()
    }
    this.plain.once('end', done)
    this.plain.once('error', done)
    this.plain.end()
  }
}
