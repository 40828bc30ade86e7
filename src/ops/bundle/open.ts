import {mkdir, mkdtemp, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join, resolve} from 'node:path'
import {UserError} from '../../errors.js'
import type {IoHost} from '../../io.js'
import {BUNDLE_MANIFEST, DEBS_GROUP, parseBundleManifest, type BundledPackage, type BundleFile, type BundleManifest} from './format.js'
import {BundleDamagedError, checkBundle} from './verify.js'
import {hashFile} from './write.js'

/** An artifact as extracted from a bundle (the shape of artifacts.ts's LocalArtifact). */
export interface BundledArtifact {
  name: string
  version: string
  /** Absolute local folder; every file's path is relative to it. */
  dir: string
  files: BundleFile[]
}

/** A verified bundle, extracted into the cache: what the install side uploads to hosts. */
export interface OpenedBundle {
  file: string
  sha256: string
  /** The cache folder it is extracted in (holds bundle.json, debs/, artifacts/). */
  dir: string
  release: string
  os: string
  arch: string
  /** The release's packages and the versions the bundle carries. */
  packages: BundledPackage[]
  /** A flat apt repository (Packages, Release, the .debs): upload it and use src/plan/offline.ts. */
  debs: {dir: string; files: BundleFile[]}
  artifacts: Map<string, BundledArtifact>
  /** Saved container images by tag: the local tar an engine loads. */
  images: Map<string, {component: string; tag: string; file: string}>
}

/** `$IMCTL_CACHE_DIR/bundles`, `$XDG_CACHE_HOME/imctl/bundles` or `~/.cache/imctl/bundles`. */
export function bundleCacheDir(env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  if (env.IMCTL_CACHE_DIR) return resolve(env.IMCTL_CACHE_DIR, 'bundles')
  if (env.XDG_CACHE_HOME?.startsWith('/')) return join(env.XDG_CACHE_HOME, 'imctl', 'bundles')
  return join(home, '.cache', 'imctl', 'bundles')
}

/** `.verified` in an extracted bundle's folder, written before the folder is renamed into place. */
export const VERIFIED_STAMP = '.verified'

interface Stamp {
  sha256: string
  verified: string
  files: number
}

/**
 * Verifies a bundle and extracts it into the cache, once: a folder named by the bundle's
 * sha256 whose `.verified` stamp names that same sha256 is reused (after a size check of
 * every file). A damaged bundle throws BundleDamagedError and leaves nothing behind.
 */
export async function openBundle(file: string, io: IoHost, opts: {cacheDir?: string} = {}): Promise<OpenedBundle> {
  const path = resolve(file)
  if (!(await stat(path).catch(() => null))?.isFile()) throw new UserError(`no bundle file ${path}`, ['Give the path of a file made by `imctl bundle create`.'])
  const root = opts.cacheDir ?? bundleCacheDir()
  await mkdir(root, {recursive: true})
  const {sha256} = await hashFile(path)
  const dir = join(root, sha256.slice(0, 16))

  const reused = await reuse(dir, sha256)
  if (reused) {
    io.notify({type: 'info', message: `bundle ${path}: verified before, using ${dir}`})
    return opened(path, sha256, dir, reused)
  }

  const tmp = await mkdtemp(join(root, `.tmp-${sha256.slice(0, 16)}-`))
  try {
    io.notify({type: 'info', message: `bundle ${path}: verifying and extracting into ${dir}`})
    const {report, manifest} = await checkBundle(path, {extractTo: tmp, io})
    if (!report.ok) throw new BundleDamagedError(report)
    if (report.sha256 !== sha256) throw new UserError(`bundle ${path} changed while it was read`, ['Run the command again once nothing writes to the file.'])
    const stamp: Stamp = {sha256, verified: new Date().toISOString(), files: report.files}
    await writeFile(join(tmp, VERIFIED_STAMP), JSON.stringify(stamp) + '\n')
    // A folder without a matching stamp is left from an interrupted run: replace it.
    await rm(dir, {recursive: true, force: true})
    try {
      await rename(tmp, dir)
    } catch (e) {
      // Another imctl extracted the same bundle meanwhile: use its copy.
      const theirs = await reuse(dir, sha256)
      if (!theirs) throw e
      await rm(tmp, {recursive: true, force: true})
      return opened(path, sha256, dir, theirs)
    }
    return opened(path, sha256, dir, manifest)
  } catch (e) {
    await rm(tmp, {recursive: true, force: true})
    throw e
  }
}

/** The manifest of a folder verified earlier whose files are all there at their sizes; null otherwise. */
async function reuse(dir: string, sha256: string): Promise<BundleManifest | null> {
  try {
    const stamp = JSON.parse(await readFile(join(dir, VERIFIED_STAMP), 'utf8')) as Stamp
    if (stamp.sha256 !== sha256) return null
    const manifest = parseBundleManifest(await readFile(join(dir, BUNDLE_MANIFEST), 'utf8'), dir)
    for (const g of manifest.groups) {
      for (const f of g.files) {
        const st = await stat(join(dir, g.path, f.path)).catch(() => null)
        if (st?.size !== f.size) return null
      }
    }
    return manifest
  } catch {
    return null
  }
}

function opened(file: string, sha256: string, dir: string, m: BundleManifest): OpenedBundle {
  const debs = m.groups.find((g) => g.kind === 'debs')
  const artifacts = new Map<string, BundledArtifact>()
  for (const g of m.groups) {
    if (g.kind !== 'artifact' || !g.artifact) continue
    artifacts.set(g.artifact.name, {name: g.artifact.name, version: g.artifact.version, dir: join(dir, g.path), files: g.files})
  }
  return {
    file,
    sha256,
    dir,
    release: m.release,
    os: m.os,
    arch: m.arch,
    packages: m.debs.packages,
    debs: {dir: join(dir, debs?.path ?? DEBS_GROUP), files: debs?.files ?? []},
    artifacts,
    images: new Map(m.images.map((i) => [i.tag, {component: i.component, tag: i.tag, file: join(dir, i.file)}])),
  }
}

/** An engine host installs from a bundle only with every image it needs saved in it. */
export function requireBundledImages(bundle: Pick<OpenedBundle, 'file' | 'release' | 'images'>, wanted: {host: string; tag: string}[]): void {
  const missing = wanted.filter((w) => !bundle.images.has(w.tag))
  if (!missing.length) return
  throw new UserError(`bundle ${bundle.file} lacks image${missing.length === 1 ? '' : 's'} ${missing.map((m) => `${m.tag} (for ${m.host})`).join(', ')}`, [
    `Make the bundle with this imctl and with images: imctl bundle create --release ${bundle.release} --out FILE (without --no-images).`,
  ])
}
