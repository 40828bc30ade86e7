import {readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {parse} from 'yaml'
import {UserError} from '../errors.js'
import {manifestsDir, packageRoot} from '../paths.js'

export interface PinnedPackage {
  name: string
  /** A glob on Debian's version string, e.g. `15.*`. */
  version: string
}

export interface ComponentRelease {
  version: string
  packages: PinnedPackage[]
  /** Docker mode: a recipe under templates/ built on the engine from these packages. */
  image?: {build: string}
}

/** Something no Debian package has (Kafka's jars, MinIO's binaries), made on the machine running imctl by a recipe. */
export interface ArtifactRelease {
  version: string
  /** The recipe's folder under the package root, e.g. `artifacts/kafka` (holds fetch.sh or build.sh). */
  recipe: string
  /** A committed `sha256sum` file (relative to the package root) listing every file that goes to hosts. */
  sums: string
  /** Extra environment for the recipe, e.g. MC_VERSION. */
  env?: Record<string, string>
}

export interface ArtifactFile {
  /** Relative to the artifact's folder, e.g. `libs/kafka_2.13-4.4.0.jar`. */
  path: string
  sha256: string
}

export interface ReleaseManifest {
  release: string
  os: string
  components: Record<string, ComponentRelease>
  /** Debian packages imctl needs on hosts for components that have none of their own (Java for Kafka). */
  hostPackages?: PinnedPackage[]
  artifacts?: Record<string, ArtifactRelease>
}

export function listReleases(dir = manifestsDir): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort()
}

export function loadManifest(release: string, dir = manifestsDir): ReleaseManifest {
  if (!listReleases(dir).includes(release)) {
    throw new UserError(`unknown release ${JSON.stringify(release)}`, [
      `Use one of: ${listReleases(dir).join(', ')}.`,
    ])
  }
  const data = parse(readFileSync(join(dir, `${release}.yaml`), 'utf8')) as ReleaseManifest
  if (data.release !== release) throw new Error(`bug: manifest ${release} names itself ${data.release}`)
  return data
}

/** The manifest's entry for one artifact; a name the release does not have is the user's to fix. */
export function artifactRelease(manifest: ReleaseManifest, name: string): ArtifactRelease {
  const a = manifest.artifacts?.[name]
  if (!a) {
    const known = Object.keys(manifest.artifacts ?? {}).sort()
    throw new UserError(`release ${manifest.release} has no artifact ${JSON.stringify(name)}`, [
      known.length ? `Use one of: ${known.join(', ')}.` : `Release ${manifest.release} needs no artifacts: everything in it comes from Debian packages.`,
    ])
  }
  for (const key of ['version', 'recipe', 'sums'] as const) {
    if (typeof a[key] !== 'string' || !a[key]) throw new Error(`bug: manifest ${manifest.release}: artifacts.${name}.${key} is not set`)
  }
  return a
}

/** Every file of an artifact with its sha256, from the sums file the manifest names, sorted by path. */
export function artifactFiles(manifest: ReleaseManifest, name: string, root = packageRoot): ArtifactFile[] {
  const a = artifactRelease(manifest, name)
  return parseSums(readFileSync(join(root, a.sums), 'utf8'), a.sums)
}

/**
 * Parses `sha256sum` output (`HASH  path`, or `HASH *path` in binary mode); `#` lines are
 * comments, as `sha256sum -c` treats them. The file is committed with the code, so a line
 * that does not parse, a path leaving the artifact's folder or a path listed twice is a bug.
 */
export function parseSums(text: string, source: string): ArtifactFile[] {
  const files: ArtifactFile[] = []
  const seen = new Set<string>()
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '')
    if (!line.trim() || line.startsWith('#')) return
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line)
    const path = m?.[2]
    const bad = (why: string) => new Error(`bug: ${source}:${i + 1}: ${why}: ${JSON.stringify(line)}`)
    if (!m || !path) throw bad('not a sha256sum line (HASH, two spaces, path)')
    if (path.startsWith('/') || path.split('/').some((part) => part === '..' || part === '.' || part === '')) throw bad('the path must stay inside the artifact\'s folder')
    if (seen.has(path)) throw bad('the path is listed twice')
    seen.add(path)
    files.push({path, sha256: m[1]!})
  })
  if (!files.length) throw new Error(`bug: ${source} lists no files`)
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

/** True when a Debian version string matches a manifest's glob (only `*` is special). */
export function versionMatches(pattern: string, version: string): boolean {
  const re = new RegExp('^' + pattern.split('*').map(escapeRegExp).join('.*') + '$')
  return re.test(version)
}

function escapeRegExp(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')
}
