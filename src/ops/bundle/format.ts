/**
 * The offline bundle's format: one uncompressed tar whose first entry is
 * `bundle.json` (this file's `BundleManifest`), then every file of every group
 * under the group's path. Pure: no I/O here.
 */
import {UserError} from '../../errors.js'

export const BUNDLE_FORMAT = 1
export const BUNDLE_MANIFEST = 'bundle.json'
export const DEBS_GROUP = 'debs'

export interface BundleFile {
  /** Relative to the group's folder, `/`-separated. */
  path: string
  sha256: string
  size: number
}

export interface BundleGroup {
  /** `debs`, `artifacts/<name>-<version>` or `images`: the folder its files sit under in the tar. */
  path: string
  kind: 'debs' | 'artifact' | 'images'
  /** For an artifact: its name and version as the release manifest has them. */
  artifact?: {name: string; version: string}
  files: BundleFile[]
}

/** A package the release asked for, and the version the bundle carries. */
export interface BundledPackage {
  name: string
  /** The manifest's glob. */
  pattern: string
  version: string
  /** The component it is for, or `host` for the manifest's hostPackages. */
  for: string
}

export interface BundleManifest {
  format: number
  release: string
  os: string
  /** Debian architecture of the packages (dpkg --print-architecture), e.g. amd64. */
  arch: string
  created: string
  imctl: {version: string}
  debs: {
    /** What the bundle answers for: every package the release installs, with dependencies. */
    packages: BundledPackage[]
    /** How the dependency closure was computed, in words (see README, "Offline bundles"). */
    closure: string
    /** The apt sources the packages came from. */
    sources: string[]
  }
  /** Container images for engine hosts, saved (`docker save`) in the `images` group: engines load them instead of building. */
  images: BundledImage[]
  groups: BundleGroup[]
}

export const IMAGES_GROUP = 'images'

/** A saved image: the component it runs, the tag install asks for, and its file in the `images` group. */
export interface BundledImage {
  component: string
  tag: string
  file: string
}

export function artifactGroupPath(name: string, version: string): string {
  return `artifacts/${name}-${version}`
}

/** The tar entry name of a group's file. */
export function entryName(group: BundleGroup, file: BundleFile): string {
  return `${group.path}/${file.path}`
}

/** A relative path that stays inside its folder: no leading `/`, no `.`/`..`/empty parts. */
export function isSafeRelativePath(p: string): boolean {
  return p !== '' && !p.startsWith('/') && !p.includes('\\') && p.split('/').every((part) => part !== '' && part !== '.' && part !== '..')
}

/** Every file of the bundle by its tar entry name. */
export function expectedEntries(m: BundleManifest): Map<string, {group: BundleGroup; file: BundleFile}> {
  const all = new Map<string, {group: BundleGroup; file: BundleFile}>()
  for (const group of m.groups) for (const file of group.files) all.set(entryName(group, file), {group, file})
  return all
}

/** bundle.json's text: stable key order, one file per line stays readable in a pager. */
export function serializeBundleManifest(m: BundleManifest): string {
  return JSON.stringify(m, null, 2) + '\n'
}

/**
 * Parses and checks bundle.json. A bundle from a newer imctl or with a path that
 * leaves its folder is refused before anything is extracted.
 */
export function parseBundleManifest(text: string, source: string): BundleManifest {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (e) {
    throw damaged(source, `bundle.json is not JSON (${(e as Error).message})`)
  }
  const m = data as Partial<BundleManifest>
  if (typeof m !== 'object' || m === null || typeof m.format !== 'number') throw damaged(source, 'bundle.json has no format number')
  if (m.format > BUNDLE_FORMAT) {
    throw new UserError(`${source} is a bundle of format ${m.format}; this imctl reads format ${BUNDLE_FORMAT}`, ['Use the imctl version that made the bundle (bundle.json names it), or a newer one.'])
  }
  for (const key of ['release', 'os', 'arch', 'created'] as const) {
    if (typeof m[key] !== 'string' || !m[key]) throw damaged(source, `bundle.json has no ${key}`)
  }
  if (!Array.isArray(m.groups) || !Array.isArray(m.images) || !m.debs || !Array.isArray(m.debs.packages)) throw damaged(source, 'bundle.json lacks groups, images or debs')
  const seen = new Set<string>()
  for (const g of m.groups) {
    if (typeof g?.path !== 'string' || !isSafeRelativePath(g.path) || !Array.isArray(g.files)) throw damaged(source, `bundle.json has a bad group ${JSON.stringify(g?.path)}`)
    if (g.kind !== 'debs' && g.kind !== 'artifact' && g.kind !== 'images') throw damaged(source, `bundle.json: group ${g.path} has an unknown kind`)
    if (g.kind === 'artifact' && (typeof g.artifact?.name !== 'string' || typeof g.artifact.version !== 'string')) throw damaged(source, `bundle.json: group ${g.path} does not name its artifact`)
    for (const f of g.files) {
      const ok = typeof f?.path === 'string' && isSafeRelativePath(f.path) && /^[0-9a-f]{64}$/.test(String(f.sha256)) && Number.isSafeInteger(f.size) && f.size >= 0
      if (!ok) throw damaged(source, `bundle.json: a bad file entry in ${g.path}: ${JSON.stringify(f)}`)
      const name = `${g.path}/${f.path}`
      if (seen.has(name) || name === BUNDLE_MANIFEST) throw damaged(source, `bundle.json lists ${name} twice`)
      seen.add(name)
    }
  }
  for (const i of m.images) {
    const listed = m.groups.some((g) => g.kind === 'images' && g.files.some((f) => `${g.path}/${f.path}` === i?.file))
    if (typeof i?.component !== 'string' || typeof i.tag !== 'string' || !listed) throw damaged(source, `bundle.json: image ${JSON.stringify(i)} is not one of its files`)
  }
  return m as BundleManifest
}

function damaged(source: string, why: string): UserError {
  return new UserError(`${source} is not a usable bundle: ${why}`, ['Copy the bundle again from where it was made, or make a new one with `imctl bundle create`.'], 1)
}

/** The bytes each group holds, for reports. */
export function groupSizes(m: BundleManifest): {group: string; files: number; bytes: number}[] {
  return m.groups.map((g) => ({group: g.path, files: g.files.length, bytes: g.files.reduce((n, f) => n + f.size, 0)}))
}

/** Bytes for people: `184403456 bytes (175.9 MiB)`. */
export function humanSize(n: number): string {
  return n < 1024 * 1024 ? `${n} bytes` : `${n} bytes (${(n / 1024 / 1024).toFixed(1)} MiB)`
}
