import {existsSync, readFileSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {dirname, join, resolve} from 'node:path'
import {loadManifest, type ReleaseManifest} from '../../config/manifest.js'
import {UserError} from '../../errors.js'
import {ensureArtifacts, type LocalArtifact} from '../artifacts.js'
import type {IoHost} from '../../io.js'
import {manifestsDir as defaultManifestsDir, packageRoot} from '../../paths.js'
import {reachableLocalEngine} from '../../sandbox/engine.js'
import {aptMirror} from '../../transport/engine-images.js'
import {aptSourceLines, buildDebRepository, CLOSURE, rootPackages} from './debs.js'
import {artifactGroupPath, BUNDLE_FORMAT, DEBS_GROUP, groupSizes, isSafeRelativePath, type BundledImage, type BundledPackage, type BundleGroup, type BundleManifest} from './format.js'
import {saveReleaseImages} from './images.js'
import {localGroup, writeBundle, type GroupSource} from './write.js'

export const SUPPORTED_OS = ['debian-12']

export interface BundleCreateOptions {
  release: string
  os?: string
  out: string
  /** Debian mirror; default: the one this machine's apt uses. */
  mirror?: string
  /** Debian security mirror; null leaves security updates out. Default: this machine's, or `<mirror>-security`. */
  securityMirror?: string | null
  /** Save the release's container images for engine hosts (default true). */
  images?: boolean
  io: IoHost
  manifestsDir?: string
}

export interface BundleCreateResult {
  file: string
  sha256: string
  size: number
  /** Files in the bundle besides bundle.json. */
  files: number
  release: string
  os: string
  arch: string
  created: string
  groups: {group: string; files: number; bytes: number}[]
  packages: BundledPackage[]
  /** Container images saved for engine hosts. */
  images: BundledImage[]
  seconds: {artifacts: number; debs: number; images: number; write: number; total: number}
}

/** `imctl bundle create`: every byte a release needs on hosts, in one tar, written atomically. */
export async function createBundle(opts: BundleCreateOptions): Promise<BundleCreateResult> {
  const started = Date.now()
  const os = opts.os ?? 'debian-12'
  if (!SUPPORTED_OS.includes(os)) throw new UserError(`bundles for ${JSON.stringify(os)} cannot be made`, [`Use --os ${SUPPORTED_OS.join(' or ')}.`])
  const manifest = loadManifest(opts.release, opts.manifestsDir ?? defaultManifestsDir)
  if (manifest.os !== os) throw new UserError(`release ${manifest.release} is for ${manifest.os}, not ${os}`, [`Use --os ${manifest.os}, or a release made for ${os}.`])
  const out = resolve(opts.out)
  if (out.endsWith('.partial')) throw new UserError('--out must not end in .partial (that name marks an unfinished bundle)')
  const io = opts.io

  const artifacts = await ensureReleaseArtifacts(manifest, io)
  const artifactsDone = Date.now()

  const mirror = opts.mirror ?? aptMirror()
  const securityMirror = opts.securityMirror === undefined ? defaultSecurityMirror(mirror) : opts.securityMirror
  if (!securityMirror) io.notify({type: 'warning', message: 'no Debian security mirror: the bundle carries bookworm and bookworm-updates only'})
  const {docker} = await reachableLocalEngine()
  const repo = await buildDebRepository({docker, roots: rootPackages(manifest), sources: aptSourceLines(mirror, securityMirror), io})
  const imagesDir = await mkdtemp(join(dirname(out), '.imctl-bundle-images-'))
  try {
    const debsDone = Date.now()
    const saved = opts.images === false ? null : await saveReleaseImages({docker, manifest, artifacts, dir: imagesDir, io})
    const imagesDone = Date.now()
    const debsGroup: BundleGroup = {path: DEBS_GROUP, kind: 'debs', files: repo.files}
    const artifactGroups = artifacts.map((a) => ({artifact: a, group: {path: artifactGroupPath(a.name, a.version), kind: 'artifact', artifact: {name: a.name, version: a.version}, files: a.files} satisfies BundleGroup}))
    const bundle: BundleManifest = {
      format: BUNDLE_FORMAT,
      release: manifest.release,
      os,
      arch: repo.arch,
      created: new Date().toISOString(),
      imctl: {version: imctlVersion()},
      debs: {packages: repo.packages, closure: CLOSURE, sources: repo.sources},
      images: saved?.images ?? [],
      groups: [debsGroup, ...artifactGroups.map((x) => x.group), ...(saved ? [saved.group] : [])],
    }
    io.notify({type: 'info', message: `bundle: writing ${out}`})
    const sources: GroupSource[] = [
      {group: debsGroup, stream: (put) => repo.stream(put)},
      ...artifactGroups.map((x) => localGroup(x.group, x.artifact.dir)),
      ...(saved ? [localGroup(saved.group, imagesDir)] : []),
    ]
    const written = await writeBundle(out, bundle, sources)
    const done = Date.now()
    const groups = groupSizes(bundle)
    return {
      file: out,
      sha256: written.sha256,
      size: written.size,
      files: groups.reduce((n, g) => n + g.files, 0),
      release: bundle.release,
      os,
      arch: bundle.arch,
      created: bundle.created,
      groups,
      packages: repo.packages,
      images: saved?.images ?? [],
      seconds: {artifacts: secs(artifactsDone - started), debs: secs(debsDone - artifactsDone), images: secs(imagesDone - debsDone), write: secs(done - imagesDone), total: secs(done - started)},
    }
  } finally {
    await rm(imagesDir, {recursive: true, force: true})
    await repo.remove()
  }
}

/** The manifest's artifacts, made or taken from the artifact cache (src/ops/artifacts.ts), sorted by name. */
async function ensureReleaseArtifacts(manifest: ReleaseManifest, io: IoHost): Promise<LocalArtifact[]> {
  const names = Object.keys(manifest.artifacts ?? {}).sort()
  if (!names.length) return []
  const list = await ensureArtifacts(manifest, names, io)
  for (const a of list) {
    // Their names become folder names in the bundle and on hosts.
    const bad = a.files.find((f) => !isSafeRelativePath(f.path))
    if (bad || !/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(`${a.name}-${a.version}`)) throw new Error(`bug: artifact ${a.name} ${a.version} has a bad name or file path ${bad?.path ?? ''}`)
  }
  return list
}

/** This machine's bookworm-security source, else `<mirror>-security` for a mirror laid out like Debian's. */
export function defaultSecurityMirror(mirror: string, files = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']): string | null {
  for (const f of files) {
    const found = existsSync(f) ? securityMirrorIn(readFileSync(f, 'utf8')) : null
    if (found) return found
  }
  return /\/debian\/?$/.test(mirror) ? `${mirror.replace(/\/$/, '')}-security` : null
}

/** The URI serving bookworm-security in apt sources text (deb822 stanzas or one-line entries). */
export function securityMirrorIn(text: string): string | null {
  for (const stanza of text.split(/\n\s*\n/)) {
    const suites = stanza.match(/^Suites:(.*)$/m)?.[1]?.split(/\s+/) ?? []
    const uri = stanza.match(/^URIs:\s*(\S+)/m)?.[1]
    if (uri && suites.includes('bookworm-security')) return uri.replace(/\/$/, '')
  }
  const line = text.match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm-security\s/m)
  return line?.[1]?.replace(/\/$/, '') ?? null
}

function imctlVersion(): string {
  try {
    return (JSON.parse(readFileSync(resolve(packageRoot, 'package.json'), 'utf8')) as {version: string}).version
  } catch {
    return 'unknown'
  }
}

function secs(ms: number): number {
  return Math.round(ms / 100) / 10
}
