import {createReadStream, createWriteStream} from 'node:fs'
import {mkdir, stat, writeFile} from 'node:fs/promises'
import {dirname, join, resolve} from 'node:path'
import {Writable, type Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import * as tar from 'tar-stream'
import {UserError} from '../../errors.js'
import type {IoHost} from '../../io.js'
import {BUNDLE_MANIFEST, expectedEntries, groupSizes, parseBundleManifest, type BundleManifest} from './format.js'
import {hashFile, hashingStream, nullSink} from './write.js'

export interface BundleProblem {
  /** The tar entry (e.g. `debs/libc6_2.36-9+deb12u10_amd64.deb`), or `(tar)` for the archive itself. */
  path: string
  problem: 'missing' | 'extra' | 'damaged' | 'duplicate' | 'unreadable'
  detail: string
}

export interface BundleReport {
  file: string
  ok: boolean
  /** sha256 of the whole bundle file. */
  sha256: string
  size: number
  release: string
  os: string
  arch: string
  created: string
  imctlVersion: string
  /** Files listed in bundle.json (bundle.json itself not counted). */
  files: number
  checked: number
  groups: {group: string; files: number; bytes: number}[]
  images: number
  problems: BundleProblem[]
}

/** bundle.json is bigger than this only if it is not bundle.json. */
const MAX_MANIFEST = 64 * 1024 * 1024

/**
 * Streams a bundle once: bundle.json first, then every file hashed and sized against
 * it. Damage is reported by file name, not thrown. With `extractTo`, each listed file
 * is also written there (under its tar name) while it is checked; extras never are.
 */
export async function checkBundle(file: string, opts: {extractTo?: string; io?: IoHost} = {}): Promise<{report: BundleReport; manifest: BundleManifest}> {
  const path = resolve(file)
  const st = await stat(path).catch(() => null)
  if (!st?.isFile()) throw new UserError(`no bundle file ${path}`, ['Give the path of a file made by `imctl bundle create`.'])
  const whole = hashingStream()
  const extract = tar.extract()
  const feeding = pipeline(createReadStream(path), whole.stream, extract as unknown as Writable)
  feeding.catch(() => undefined)

  const problems: BundleProblem[] = []
  let manifest: BundleManifest | null = null
  let expected: ReturnType<typeof expectedEntries> = new Map()
  const seen = new Set<string>()
  let last = '(start of the tar)'
  let reading: string | null = null
  let readFailed = false
  try {
    for await (const entry of extract) {
      const name = entry.header.name.replace(/^\.\//, '')
      const body = entry as unknown as Readable
      if (!manifest) {
        if (name !== BUNDLE_MANIFEST || entry.header.type !== 'file' || (entry.header.size ?? 0) > MAX_MANIFEST) {
          body.resume()
          throw new UserError(`${path} is not an imctl bundle: its first entry is ${JSON.stringify(name)}, not ${BUNDLE_MANIFEST}`, ['Give the path of a file made by `imctl bundle create`.'], 1)
        }
        const chunks: Buffer[] = []
        for await (const b of body) chunks.push(b as Buffer)
        manifest = parseBundleManifest(Buffer.concat(chunks).toString('utf8'), path)
        expected = expectedEntries(manifest)
        if (opts.extractTo) {
          await mkdir(opts.extractTo, {recursive: true})
          await writeFile(join(opts.extractTo, BUNDLE_MANIFEST), Buffer.concat(chunks))
        }
        last = name
        opts.io?.notify({type: 'info', message: `bundle ${manifest.release} (${manifest.os}, made ${manifest.created}): checking ${expected.size} files`})
        continue
      }
      last = name
      if (entry.header.type === 'directory') {
        body.resume()
        continue
      }
      const want = expected.get(name)
      if (!want || entry.header.type !== 'file') {
        problems.push({path: name, problem: 'extra', detail: `not listed in bundle.json (${entry.header.type})`})
        body.resume()
        continue
      }
      if (seen.has(name)) {
        problems.push({path: name, problem: 'duplicate', detail: 'appears twice in the tar'})
        body.resume()
        continue
      }
      reading = name
      const h = hashingStream()
      const sink = opts.extractTo ? fileSink(join(opts.extractTo, name)) : nullSink()
      await pipeline(body, h.stream, await sink)
      seen.add(name)
      reading = null
      const got = h.digest()
      if (got.size !== want.file.size) problems.push({path: name, problem: 'damaged', detail: `${got.size} bytes, expected ${want.file.size}`})
      else if (got.sha256 !== want.file.sha256) problems.push({path: name, problem: 'damaged', detail: `sha256 ${got.sha256}, expected ${want.file.sha256}`})
    }
    await feeding
  } catch (e) {
    readFailed = true
    if (e instanceof UserError) throw e
    if (!manifest) {
      throw new UserError(`${path} is not a readable imctl bundle (${(e as Error).message})`, ['Copy the bundle again from where it was made, or make a new one with `imctl bundle create`.'], 1)
    }
    if (reading) {
      seen.add(reading)
      problems.push({path: reading, problem: 'damaged', detail: `the tar is cut short or broken inside it (${(e as Error).message})`})
    } else {
      problems.push({path: '(tar)', problem: 'unreadable', detail: `the tar is damaged or cut short after ${last}: ${(e as Error).message}`})
    }
  }
  if (!manifest) throw new UserError(`${path} is empty or not a tar: it has no ${BUNDLE_MANIFEST}`, ['Give the path of a file made by `imctl bundle create`.'], 1)
  for (const name of expected.keys()) if (!seen.has(name)) problems.push({path: name, problem: 'missing', detail: 'listed in bundle.json, not in the tar'})
  // A read that stopped early did not hash everything: hash the whole file for the report.
  const digest = readFailed ? await hashFile(path) : whole.digest()
  const report: BundleReport = {
    file: path,
    ok: problems.length === 0,
    sha256: digest.sha256,
    size: digest.size,
    release: manifest.release,
    os: manifest.os,
    arch: manifest.arch,
    created: manifest.created,
    imctlVersion: manifest.imctl?.version ?? 'unknown',
    files: expected.size,
    checked: seen.size,
    groups: groupSizes(manifest),
    images: manifest.images.length,
    problems,
  }
  return {report, manifest}
}

/** A damaged bundle as an error: each problem by file name; exit 1 (a failed check). */
export class BundleDamagedError extends UserError {
  constructor(readonly report: BundleReport) {
    super(
      [`bundle ${report.file} is DAMAGED (${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}):`, ...report.problems.slice(0, 50).map((p) => `  ${p.problem}: ${p.path}: ${p.detail}`), ...(report.problems.length > 50 ? [`  … and ${report.problems.length - 50} more`] : [])].join('\n'),
      ['Copy the bundle again from where it was made and compare its sha256 with the one `imctl bundle create` printed, or make a new one.'],
      1,
    )
    this.name = 'BundleDamagedError'
  }
}

/** `imctl bundle verify`: the report when every file is intact; a BundleDamagedError naming each problem otherwise. */
export async function verifyBundle(file: string, io: IoHost): Promise<BundleReport> {
  const {report} = await checkBundle(file, {io})
  if (!report.ok) throw new BundleDamagedError(report)
  return report
}

async function fileSink(path: string): Promise<Writable> {
  await mkdir(dirname(path), {recursive: true})
  return createWriteStream(path, {mode: 0o644})
}
