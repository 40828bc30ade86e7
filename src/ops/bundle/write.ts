import {createHash} from 'node:crypto'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdir, rename, rm} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {Transform, Writable, type Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import * as tar from 'tar-stream'
import {BUNDLE_MANIFEST, expectedEntries, serializeBundleManifest, type BundleGroup, type BundleManifest} from './format.js'

/** Called for each file of a group, in the order they arrive; must consume `body`. */
export type PutFile = (path: string, size: number, body: Readable) => Promise<void>

/** Where a group's bytes come from: calls `put` once for each of its files. */
export interface GroupSource {
  group: BundleGroup
  stream(put: PutFile): Promise<void>
}

/** A group whose files are in a local folder (an artifact). */
export function localGroup(group: BundleGroup, dir: string): GroupSource {
  return {
    group,
    async stream(put) {
      for (const f of group.files) await put(f.path, f.size, createReadStream(join(dir, f.path)))
    },
  }
}

/** Counts and hashes what flows through. */
export function hashingStream(): {stream: Transform; digest: () => {sha256: string; size: number}} {
  const hash = createHash('sha256')
  let size = 0
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk)
      size += chunk.length
      cb(null, chunk)
    },
  })
  return {stream, digest: () => ({sha256: hash.digest('hex'), size})}
}

/** One file's sha256 and size, streamed. */
export async function hashFile(path: string): Promise<{sha256: string; size: number}> {
  const h = hashingStream()
  await pipeline(createReadStream(path), h.stream, nullSink())
  return h.digest()
}

/** A writable that drops what it gets. */
export function nullSink(): Writable {
  return new Writable({write: (_chunk, _enc, cb) => cb()})
}

/**
 * Writes the bundle tar: bundle.json first, then every group's files, each hashed on the
 * way in and checked against bundle.json. Writes `out.partial` and renames it at the end,
 * so an interrupted run never leaves a file that looks complete.
 */
export async function writeBundle(out: string, manifest: BundleManifest, sources: GroupSource[]): Promise<{sha256: string; size: number}> {
  await mkdir(dirname(out), {recursive: true})
  const partial = `${out}.partial`
  const expected = expectedEntries(manifest)
  const written = new Set<string>()
  const mtime = new Date(manifest.created)
  const pack = tar.pack()
  const whole = hashingStream()
  const writing = pipeline(pack as unknown as Readable, whole.stream, createWriteStream(partial, {mode: 0o644}))
  // A failure of the file side shows up at the next entry; keep it from being unhandled meanwhile.
  writing.catch(() => undefined)
  try {
    const json = Buffer.from(serializeBundleManifest(manifest))
    await new Promise<void>((resolve, reject) => pack.entry({name: BUNDLE_MANIFEST, size: json.length, mode: 0o644, mtime}, json, (e) => (e ? reject(e) : resolve())))
    for (const source of sources) {
      await source.stream(async (path, size, body) => {
        const name = `${source.group.path}/${path}`
        const want = expected.get(name)
        if (!want || want.group !== source.group) throw new Error(`bug: ${name} is not listed in bundle.json`)
        if (written.has(name)) throw new Error(`bug: ${name} came twice`)
        if (size !== want.file.size) throw new Error(`${name}: ${size} bytes, bundle.json says ${want.file.size}: its source changed while the bundle was made`)
        const h = hashingStream()
        const entry = pack.entry({name, size, mode: 0o644, mtime})
        await pipeline(body, h.stream, entry)
        const got = h.digest()
        if (got.sha256 !== want.file.sha256) throw new Error(`${name}: sha256 ${got.sha256}, expected ${want.file.sha256}: its source changed or was damaged while the bundle was made`)
        written.add(name)
      })
    }
    const notWritten = [...expected.keys()].filter((n) => !written.has(n))
    if (notWritten.length) throw new Error(`bug: bundle.json lists files that were not written: ${notWritten.slice(0, 5).join(', ')}`)
    pack.finalize()
    await writing
    await rename(partial, out)
    return whole.digest()
  } catch (e) {
    pack.destroy()
    await writing.catch(() => undefined)
    await rm(partial, {force: true})
    throw e
  }
}
