import {readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {parse} from 'yaml'
import {UserError} from '../errors.js'
import {manifestsDir, packageRoot} from '../paths.js'

export interface PinnedPackage {
  name: string
  /** A glob on Debian's version string, e.g. `15.*`. */
  version: string
  /**
   * The apt suite it comes from when not the OS's own (e.g. `bookworm-backports`), named in the
   * manifest's `aptSuites`. Install adds that suite to the host and pins this package to it; the
   * suite's other packages keep apt's default priority, so only what this package needs comes from it.
   */
  suite?: string
}

/** An apt suite beyond the OS's own: where hosts get it, as one deb822 sources entry. */
export interface AptSuite {
  uri: string
  components: string[]
  /** The keyring that signs it (Debian's own archive keyring for backports). */
  signedBy: string
}

/**
 * A change to a component's stored data that a release needs when reached by an upgrade, as data.
 * `at-start`: the component makes it itself on its first start on the new version and imctl waits
 * until `check` holds; `command`: imctl runs `argv` (as root) on the component's host once the new
 * version runs, then waits for `check`. Either way the pre-upgrade backup is what undoes it.
 */
export interface Migration {
  id: string
  component: string
  /** What changes, in words, for plans and reports. */
  what: string
  run: {type: 'at-start'} | {type: 'command'; argv: string[]}
  /** Done once this query, run in `database` on the PostgreSQL host, prints `expect`. */
  check: {database: string; sql: string; expect: string}
  /** How long to wait for `check`, in seconds (default 120). */
  timeout?: number
}

export interface ComponentRelease {
  version: string
  packages: PinnedPackage[]
  /** Docker mode: a recipe under templates/ built on the engine from these packages. */
  image?: {build: string}
  /** Version-specific settings the component's templates read (e.g. ejabberd's `update_sql_schema`). */
  settings?: Record<string, string | number | boolean>
  /** PostgreSQL only: what its Patroni mode adds, per role (PostgreSQL nodes, etcd members, the IM host's proxy). */
  ha?: {patroni: PinnedPackage[]; etcd: PinnedPackage[]; proxy: PinnedPackage[]}
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
  /**
   * Docker mode for the component of the same name: a recipe under templates/ built on the
   * engine with this artifact's files in its build context (and the component's Debian
   * packages, e.g. Java from hostPackages).
   */
  image?: {build: string}
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
  /** Debian packages imctl needs on hosts for components that have none of their own (Java for Kafka), and for the firewall (nftables). */
  hostPackages?: PinnedPackage[]
  artifacts?: Record<string, ArtifactRelease>
  /** Suites that packages name in `suite`. */
  aptSuites?: Record<string, AptSuite>
  /** Releases this one may be reached from directly by `imctl upgrade` (the stops of an upgrade path). */
  upgradeFrom?: string[]
  /** Data changes this release needs when reached by an upgrade. */
  migrations?: Migration[]
  /**
   * A release this one differs from in a few entries only: its components, artifacts and suites are
   * taken entry by entry unless this file names them; `upgradeFrom` and `migrations` are never inherited.
   */
  extends?: string
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
  const data = readManifestFile(release, dir)
  let full = data
  if (data.extends) {
    if (!listReleases(dir).includes(data.extends)) throw new Error(`bug: manifest ${release} extends ${data.extends}, which does not exist`)
    const base = readManifestFile(data.extends, dir)
    // One level only: a sibling names the release it differs from, never a chain.
    if (base.extends) throw new Error(`bug: manifest ${release} extends ${data.extends}, which itself extends ${base.extends}`)
    full = extendManifest(base, data)
  }
  checkManifest(full)
  return full
}

function readManifestFile(release: string, dir: string): ReleaseManifest {
  const data = parse(readFileSync(join(dir, `${release}.yaml`), 'utf8')) as ReleaseManifest
  if (data.release !== release) throw new Error(`bug: manifest ${release} names itself ${data.release}`)
  return data
}

/** A sibling manifest over its base: entries it names replace the base's, entry by entry; the rest is the base's. */
export function extendManifest(base: ReleaseManifest, own: ReleaseManifest): ReleaseManifest {
  const {extends: _e, upgradeFrom, migrations, ...rest} = own
  return {
    release: own.release,
    os: own.os ?? base.os,
    components: {...base.components, ...rest.components},
    ...(rest.hostPackages ?? base.hostPackages ? {hostPackages: rest.hostPackages ?? base.hostPackages} : {}),
    ...(base.artifacts || rest.artifacts ? {artifacts: {...base.artifacts, ...rest.artifacts}} : {}),
    ...(base.aptSuites || rest.aptSuites ? {aptSuites: {...base.aptSuites, ...rest.aptSuites}} : {}),
    ...(upgradeFrom ? {upgradeFrom} : {}),
    ...(migrations ? {migrations} : {}),
  }
}

/** Manifests ship with the code: a package naming a suite the manifest does not define is a bug. */
function checkManifest(m: ReleaseManifest): void {
  const all = [...Object.values(m.components).flatMap((c) => c.packages), ...(m.hostPackages ?? [])]
  for (const p of all) {
    if (p.suite && !m.aptSuites?.[p.suite]) throw new Error(`bug: manifest ${m.release}: ${p.name} comes from suite ${p.suite}, which aptSuites does not define`)
  }
  for (const r of m.upgradeFrom ?? []) if (r === m.release) throw new Error(`bug: manifest ${m.release} lists itself in upgradeFrom`)
  const ids = (m.migrations ?? []).map((x) => x.id)
  if (new Set(ids).size !== ids.length) throw new Error(`bug: manifest ${m.release} lists a migration id twice`)
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
