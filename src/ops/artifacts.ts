import {createHash} from 'node:crypto'
import {accessSync, constants, createReadStream, existsSync} from 'node:fs'
import {mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {delimiter, join, resolve} from 'node:path'
import {execa} from 'execa'
import {loadClusterConfig} from '../config/load.js'
import {type ArtifactFile, type ReleaseManifest, artifactRelease, listReleases, loadManifest, parseSums} from '../config/manifest.js'
import {tail, UserError} from '../errors.js'
import type {IoHost} from '../io.js'
import {manifestsDir, packageRoot} from '../paths.js'

/** Where made artifacts are kept: `$IMCTL_CACHE_DIR/artifacts`, `$XDG_CACHE_HOME/imctl/artifacts` or `~/.cache/imctl/artifacts`. */
export function artifactCacheDir(env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  if (env.IMCTL_CACHE_DIR) return resolve(env.IMCTL_CACHE_DIR, 'artifacts')
  // The XDG spec says to ignore a relative XDG_CACHE_HOME.
  if (env.XDG_CACHE_HOME?.startsWith('/')) return join(env.XDG_CACHE_HOME, 'imctl', 'artifacts')
  return join(home, '.cache', 'imctl', 'artifacts')
}

export interface LocalArtifact {
  name: string
  version: string
  /** Absolute local folder; every file's path is relative to it. */
  dir: string
  files: {path: string; sha256: string; size: number}[]
}

/** How an artifact got into the cache this time. */
export type ArtifactAction = 'cached' | 're-hashed' | 'made'

export interface EnsuredArtifact {
  artifact: LocalArtifact
  action: ArtifactAction
  seconds: number
}

/** Where tests point the service at a package layout and cache of their own. */
export interface ArtifactPaths {
  packageRoot?: string
  cacheDir?: string
}

/** `.verified` in an artifact's folder: what was hashed, and the size and mtime each file had then. */
export interface VerifiedStamp {
  name: string
  version: string
  /** sha256 of the sums file the files were checked against. */
  sums: string
  files: Record<string, {size: number; mtimeMs: number; sha256: string}>
}

export const STAMP_FILE = '.verified'

/**
 * Which files need hashing given the stamp and what stat says now: all of them when the
 * stamp is missing or was made against another sums file; otherwise those whose size or
 * mtime moved, or whose recorded hash is not the expected one. Missing files are listed apart.
 */
export function checkStamp(
  stamp: VerifiedStamp | undefined,
  sumsSha256: string,
  expected: ArtifactFile[],
  stats: ReadonlyMap<string, {size: number; mtimeMs: number}>,
): {missing: string[]; rehash: string[]} {
  const missing: string[] = []
  const rehash: string[] = []
  const trusted = stamp?.sums === sumsSha256 ? stamp.files : {}
  for (const f of expected) {
    const now = stats.get(f.path)
    if (!now) missing.push(f.path)
    else {
      const then = trusted[f.path]
      if (!then || then.size !== now.size || then.mtimeMs !== now.mtimeMs || then.sha256 !== f.sha256) rehash.push(f.path)
    }
  }
  return {missing, rehash}
}

/** One file's sha256, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

export interface DirCheck {
  ok: boolean
  files: LocalArtifact['files']
  missing: string[]
  mismatched: {path: string; expected: string; actual: string}[]
  /** Files hashed this time (0 when the stamp vouched for all of them). */
  hashed: number
}

/** Checks a folder against the sums, hashing only what the stamp cannot vouch for; a folder that passes gets a fresh stamp. */
export async function verifyArtifactDir(dir: string, name: string, version: string, expected: ArtifactFile[], sumsSha256: string): Promise<DirCheck> {
  const stats = new Map<string, {size: number; mtimeMs: number}>()
  for (const f of expected) {
    const s = await stat(join(dir, f.path)).catch(() => undefined)
    if (s?.isFile()) stats.set(f.path, {size: s.size, mtimeMs: s.mtimeMs})
  }
  const stamp = await readStamp(dir)
  const {missing, rehash} = checkStamp(stamp, sumsSha256, expected, stats)
  const mismatched: DirCheck['mismatched'] = []
  for (const path of rehash) {
    const actual = await sha256File(join(dir, path))
    const want = expected.find((f) => f.path === path)!.sha256
    if (actual !== want) mismatched.push({path, expected: want, actual})
  }
  const files = expected.filter((f) => stats.has(f.path)).map((f) => ({path: f.path, sha256: f.sha256, size: stats.get(f.path)!.size}))
  const ok = !missing.length && !mismatched.length
  if (ok && (rehash.length || stamp?.sums !== sumsSha256)) {
    const next: VerifiedStamp = {name, version, sums: sumsSha256, files: {}}
    for (const f of expected) next.files[f.path] = {...stats.get(f.path)!, sha256: f.sha256}
    await writeFile(join(dir, `${STAMP_FILE}.tmp`), JSON.stringify(next, null, 1) + '\n')
    await rename(join(dir, `${STAMP_FILE}.tmp`), join(dir, STAMP_FILE))
  }
  return {ok, files, missing, mismatched, hashed: rehash.length}
}

async function readStamp(dir: string): Promise<VerifiedStamp | undefined> {
  try {
    const s = JSON.parse(await readFile(join(dir, STAMP_FILE), 'utf8')) as VerifiedStamp
    return typeof s.sums === 'string' && s.files && typeof s.files === 'object' ? s : undefined
  } catch {
    return undefined
  }
}

/**
 * How each kind of recipe shares its download cache between versions, by script name:
 * fetch.sh honours MAVEN_REPO_LOCAL, build.sh takes the Go caches as a third argument.
 */
const RECIPE_KINDS = {
  'fetch.sh': {cache: '.m2', args: (_cache: string): string[] => [], env: (cache: string): Record<string, string> => ({MAVEN_REPO_LOCAL: cache})},
  'build.sh': {cache: '.gocache', args: (cache: string): string[] => [cache], env: (_cache: string): Record<string, string> => ({})},
} as const
type RecipeScript = keyof typeof RECIPE_KINDS

interface ToolNeed {
  command: string
  what: string
  install: string
  /** Lowest `go` version, checked with `go env GOVERSION`. */
  minGo?: [number, number]
}

/** What each shipped recipe needs on this machine (a recipe not listed needs only bash). */
const RECIPE_NEEDS: Record<string, ToolNeed> = {
  'artifacts/kafka': {command: 'mvn', what: 'Maven (Kafka\'s jars come from Maven Central)', install: 'Install it: `apt-get install maven` (it brings a Java runtime).'},
  // minio's go.mod says `go 1.24.0`; build.sh never lets Go fetch another toolchain.
  'artifacts/minio': {command: 'go', what: 'Go >= 1.24 (MinIO is built from the Go module proxy)', install: 'Install Go >= 1.24 from https://go.dev/dl/ (Debian 12\'s golang package is too old) and put its bin/ on PATH.', minGo: [1, 24]},
}

/** The script in a recipe folder and its kind; the manifest naming a folder without one is a packaging bug. */
export function recipeScript(root: string, recipe: string): {script: string; kind: RecipeScript} {
  for (const kind of Object.keys(RECIPE_KINDS) as RecipeScript[]) {
    const script = join(root, recipe, kind)
    if (existsSync(script)) return {script, kind}
  }
  throw new Error(`bug: recipe ${recipe} has neither fetch.sh nor build.sh under ${root}`)
}

/** A command on PATH, as the shell would find it. */
export function findOnPath(command: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, command)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not in this one
    }
  }
  return undefined
}

async function checkTools(name: string, version: string, recipe: string): Promise<void> {
  const need = RECIPE_NEEDS[recipe]
  if (!need) return
  const where = `${name} ${version} is made on this machine by ${recipe}`
  if (!findOnPath(need.command)) {
    throw new UserError(`${where}, which needs ${need.what}: \`${need.command}\` is not on PATH`, [need.install, 'Or install from a bundle made on a machine that has it.'])
  }
  if (need.minGo) {
    const r = await execa('go', ['env', 'GOVERSION'], {reject: false})
    const m = /^go(\d+)\.(\d+)/.exec(r.stdout.trim())
    const [major, minor] = m ? [Number(m[1]), Number(m[2])] : [0, 0]
    if (major < need.minGo[0] || (major === need.minGo[0] && minor < need.minGo[1])) {
      throw new UserError(`${where}, which needs ${need.what}; this machine has ${r.stdout.trim() || 'a go that does not say its version'}`, [need.install])
    }
  }
}

/** Makes sure one artifact of the manifest is in the local cache, verified against its sums file. */
export async function ensureArtifact(manifest: ReleaseManifest, name: string, io: IoHost, paths: ArtifactPaths = {}): Promise<LocalArtifact> {
  return (await ensureArtifactDetailed(manifest, name, io, paths)).artifact
}

/** Several artifacts of one manifest; recipes that share a download cache run one after the other, the rest in parallel. */
export async function ensureArtifacts(manifest: ReleaseManifest, names: string[], io: IoHost, paths: ArtifactPaths = {}): Promise<LocalArtifact[]> {
  const done = await ensureEach([...new Set(names)].map((name) => ({manifest, name})), io, paths)
  return names.map((n) => done.find((d) => d.artifact.name === n)!.artifact)
}

/** Same as ensureArtifact, saying how the artifact got there and how long that took. */
export async function ensureArtifactDetailed(manifest: ReleaseManifest, name: string, io: IoHost, paths: ArtifactPaths = {}): Promise<EnsuredArtifact> {
  const started = Date.now()
  const root = paths.packageRoot ?? packageRoot
  const cache = paths.cacheDir ?? artifactCacheDir()
  const rel = artifactRelease(manifest, name)
  const sumsText = await readFile(join(root, rel.sums))
  const sumsSha256 = createHash('sha256').update(sumsText).digest('hex')
  const expected = parseSums(sumsText.toString('utf8'), rel.sums)
  const label = `${name} ${rel.version}`
  const dir = join(cache, `${name}-${rel.version}`)
  const seconds = () => Math.round((Date.now() - started) / 100) / 10

  if (existsSync(dir)) {
    const check = await verifyArtifactDir(dir, name, rel.version, expected, sumsSha256)
    if (check.ok) {
      if (check.hashed) io.notify({type: 'info', message: `${label}: in the cache, ${check.hashed} changed-looking file(s) re-hashed and verified`})
      return {artifact: {name, version: rel.version, dir, files: check.files}, action: check.hashed ? 're-hashed' : 'cached', seconds: seconds()}
    }
    io.notify({type: 'warning', message: `${label}: the cached copy in ${dir} is not whole (${describeProblems(check)}): making it again`})
  }

  const {script, kind} = recipeScript(root, rel.recipe)
  await checkTools(name, rel.version, rel.recipe)
  await mkdir(cache, {recursive: true})
  await removeDeadTemps(cache, name, rel.version)
  const sharedCache = join(cache, RECIPE_KINDS[kind].cache)
  const tmp = await mkdtemp(join(cache, `${tempPrefix(name, rel.version)}${process.pid}-`))
  try {
    await runRecipe({label, recipe: `${rel.recipe}/${kind}`, script, args: [rel.version, tmp, ...RECIPE_KINDS[kind].args(sharedCache)], env: {...rel.env, ...RECIPE_KINDS[kind].env(sharedCache)}, io, sharedCache})
    const check = await verifyArtifactDir(tmp, name, rel.version, expected, sumsSha256)
    if (!check.ok) {
      const kept = join(cache, `.rejected-${name}-${rel.version}`)
      await rm(kept, {recursive: true, force: true})
      await rename(tmp, kept)
      throw await mismatchError({label, recipe: rel.recipe, kind, sums: rel.sums, sumsText: sumsText.toString('utf8'), check, kept, sharedCache})
    }
    await moveIntoPlace(tmp, dir, async () => (await verifyArtifactDir(dir, name, rel.version, expected, sumsSha256)).ok)
    const bytes = check.files.reduce((n, f) => n + f.size, 0)
    io.notify({type: 'info', message: `${label}: made and verified in ${Math.round(seconds())} s: ${check.files.length} file(s), ${formatBytes(bytes)}`})
    return {artifact: {name, version: rel.version, dir, files: check.files}, action: 'made', seconds: seconds()}
  } finally {
    await rm(tmp, {recursive: true, force: true})
  }
}

function tempPrefix(name: string, version: string): string {
  return `.tmp-${name}-${version}-`
}

/** Temp folders left by an imctl that died mid-recipe (their name carries its pid); a live one's are left alone. */
async function removeDeadTemps(cache: string, name: string, version: string): Promise<void> {
  const prefix = tempPrefix(name, version)
  for (const entry of await readdir(cache)) {
    if (!entry.startsWith(prefix)) continue
    const pid = Number(entry.slice(prefix.length).split('-')[0])
    if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) await rm(join(cache, entry), {recursive: true, force: true})
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Swaps a verified temp folder in; if another imctl put a good copy there first, keeps that one. */
async function moveIntoPlace(tmp: string, dir: string, existingIsGood: () => Promise<boolean>): Promise<void> {
  if (existsSync(dir)) {
    if (await existingIsGood()) return
    const old = `${dir}.old-${process.pid}`
    await rename(dir, old)
    await rm(old, {recursive: true, force: true})
  }
  try {
    await rename(tmp, dir)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await existingIsGood())) return
    throw e
  }
}

async function runRecipe(opts: {label: string; recipe: string; script: string; args: string[]; env: Record<string, string>; io: IoHost; sharedCache: string}): Promise<void> {
  const {label, io} = opts
  io.notify({type: 'info', message: `${label}: not in the cache; running ${opts.recipe} (downloads are kept in ${opts.sharedCache} for the next version)`})
  const started = Date.now()
  // A cold MinIO build is silent for minutes: say it is still going.
  const beat = setInterval(() => io.notify({type: 'info', message: `${label}: ${opts.recipe} still running (${Math.round((Date.now() - started) / 60000)} min so far)`}), 60_000)
  beat.unref()
  try {
    // Through bash, so a package manager that dropped the executable bit does not matter.
    const child = execa('bash', [opts.script, ...opts.args], {env: opts.env, all: true, reject: false, stdin: 'ignore'})
    for await (const line of child.iterable({from: 'all'})) {
      if (line.trim()) io.notify({type: 'info', message: `${label}: ${line}`})
    }
    const r = await child
    if (r.exitCode !== 0) {
      throw new UserError(
        `${label}: ${opts.recipe} failed (${r.exitCode === undefined ? `signal ${r.signal ?? 'unknown'}` : `exit ${r.exitCode}`})` + (r.all ? `:\n${indent(tail(r.all))}` : ''),
        [
          'Fix the cause above (is Maven Central or the Go module proxy reachable from here?), then run `imctl artifacts fetch` again.',
          `Downloads made so far are kept in ${opts.sharedCache}: the next run does not repeat them.`,
        ],
        1,
      )
    }
  } finally {
    clearInterval(beat)
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')
}

function describeProblems(check: DirCheck): string {
  const parts: string[] = []
  if (check.missing.length) parts.push(`${check.missing.length} file(s) missing, e.g. ${check.missing[0]}`)
  if (check.mismatched.length) parts.push(`${check.mismatched.length} file(s) with another sha256, e.g. ${check.mismatched[0]!.path}`)
  return parts.join('; ')
}

/** A made artifact that does not match the committed sums: name the file, both hashes, and what would make them agree. */
async function mismatchError(o: {label: string; recipe: string; kind: RecipeScript; sums: string; sumsText: string; check: DirCheck; kept: string; sharedCache: string}): Promise<UserError> {
  const lines = [`${o.label}: what ${o.recipe} made does not match ${o.sums}`]
  for (const m of o.check.mismatched.slice(0, 5)) lines.push(`  ${m.path}: expected sha256 ${m.expected}`, `  ${' '.repeat(m.path.length)}  got      sha256 ${m.actual}`)
  if (o.check.mismatched.length > 5) lines.push(`  ... and ${o.check.mismatched.length - 5} more file(s) with another sha256`)
  for (const p of o.check.missing.slice(0, 5)) lines.push(`  ${p}: listed in the sums file, but the recipe did not write it`)
  if (o.check.missing.length > 5) lines.push(`  ... and ${o.check.missing.length - 5} more missing file(s)`)
  const notes = o.sumsText
    .split('\n')
    .filter((l) => l.startsWith('#'))
    .map((l) => l.replace(/^#\s?/, ''))
  const steps: string[] = []
  if (o.kind === 'build.sh') {
    const buildInfo = await readFile(join(o.kept, 'BUILDINFO'), 'utf8').catch(() => '')
    const used = /\bgo1\.\d+(?:\.\d+)?/.exec(buildInfo)?.[0]
    const madeWith = /\bgo1\.\d+(?:\.\d+)?/.exec(notes.join(' '))?.[0]
    steps.push(
      `The build is reproducible only with the Go version the sums were made with${madeWith ? ` (${madeWith})` : ''}; this one used ${used ?? 'an unknown Go'} (see BUILDINFO in ${o.kept}). ` +
        `Install ${madeWith ?? 'that Go version'} from https://go.dev/dl/, put it first on PATH and run \`imctl artifacts fetch\` again.`,
    )
  } else {
    steps.push(`The files are a registry's own bytes for that version: another sha256 means something between here and the registry served other bytes (a mirror in ~/.m2/settings.xml?) or the download cache ${o.sharedCache} is damaged. Delete that folder and run \`imctl artifacts fetch\` again.`)
  }
  if (o.check.missing.length) steps.push(`A missing file means the recipe and the manifest disagree: check the manifest's env for ${o.recipe} (e.g. MC_VERSION).`)
  steps.push(`If the recipe was changed on purpose, regenerate ${o.sums} from a run you trust and commit it. The rejected result is kept in ${o.kept} for comparison; delete it when done.`)
  if (notes.length) lines.push(`The sums file says: ${notes.join(' ')}`)
  return new UserError(lines.join('\n'), steps, 1)
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v.toFixed(1)} ${units[u]}`
}

interface Job {
  manifest: ReleaseManifest
  name: string
}

/** Runs the jobs; those whose recipes share a download cache (Maven's local repo has no locking) go one after the other. */
async function ensureEach(jobs: Job[], io: IoHost, paths: ArtifactPaths): Promise<EnsuredArtifact[]> {
  const root = paths.packageRoot ?? packageRoot
  const lanes = new Map<string, Job[]>()
  for (const job of jobs) {
    const kind = recipeScript(root, artifactRelease(job.manifest, job.name).recipe).kind
    lanes.set(kind, [...(lanes.get(kind) ?? []), job])
  }
  const results = new Map<Job, EnsuredArtifact>()
  const settled = await Promise.allSettled(
    [...lanes.values()].map(async (lane) => {
      for (const job of lane) results.set(job, await ensureArtifactDetailed(job.manifest, job.name, io, paths))
    }),
  )
  const failed = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as Error] : []))
  if (failed.length === 1) throw failed[0]
  if (failed.length > 1) {
    if (failed.every((e) => e instanceof UserError)) {
      throw new UserError(failed.map((e) => e.message).join('\n'), [...new Set(failed.flatMap((e) => (e as UserError).nextSteps))], Math.max(...failed.map((e) => (e as UserError).exitCode)))
    }
    throw failed.find((e) => !(e instanceof UserError))
  }
  return jobs.map((j) => results.get(j)!)
}

export interface FetchArtifactsResult {
  cacheDir: string
  releases: string[]
  artifacts: (LocalArtifact & {action: ArtifactAction; seconds: number; bytes: number})[]
}

/**
 * `imctl artifacts fetch`: the artifacts of one release (--release, or the release of the
 * cluster.yaml given), or of every release when neither is given.
 */
export async function fetchArtifactsService(opts: {release?: string; configFile?: string; io: IoHost; paths?: ArtifactPaths; manifestsDir?: string}): Promise<FetchArtifactsResult> {
  const dir = opts.manifestsDir ?? manifestsDir
  const releases = opts.release ? [opts.release] : opts.configFile ? [loadClusterConfig(opts.configFile).release] : listReleases(dir)
  const jobs: Job[] = []
  const seen = new Set<string>()
  for (const release of releases) {
    const manifest = loadManifest(release, dir)
    for (const [name, a] of Object.entries(manifest.artifacts ?? {})) {
      if (seen.has(`${name}-${a.version}`)) continue
      seen.add(`${name}-${a.version}`)
      jobs.push({manifest, name})
    }
  }
  const done = await ensureEach(jobs, opts.io, opts.paths ?? {})
  return {
    cacheDir: opts.paths?.cacheDir ?? artifactCacheDir(),
    releases,
    artifacts: done.map((d) => ({...d.artifact, action: d.action, seconds: d.seconds, bytes: d.artifact.files.reduce((n, f) => n + f.size, 0)})),
  }
}

export type CacheEntryState = 'verified' | 'damaged' | 'not-in-any-release' | 'incomplete' | 'rejected'

export interface CacheEntry {
  /** Folder name under the cache. */
  entry: string
  dir: string
  name: string | null
  version: string | null
  state: CacheEntryState
  /** Releases whose manifest lists this name and version. */
  releases: string[]
  files: number
  bytes: number
  /** What is wrong, for damaged entries. */
  problem?: string
}

export interface ListArtifactsResult {
  cacheDir: string
  entries: CacheEntry[]
  /** The download caches shared between versions (Maven's local repo, Go's caches), when present. */
  sharedCaches: string[]
}

/** `imctl artifacts list`: every folder in the cache, checked against the releases that list it. */
export async function listArtifactsService(opts: {paths?: ArtifactPaths; manifestsDir?: string} = {}): Promise<ListArtifactsResult> {
  const cache = opts.paths?.cacheDir ?? artifactCacheDir()
  const root = opts.paths?.packageRoot ?? packageRoot
  const mdir = opts.manifestsDir ?? manifestsDir
  const known = new Map<string, {manifest: ReleaseManifest; name: string; version: string; releases: string[]}>()
  for (const release of listReleases(mdir)) {
    const manifest = loadManifest(release, mdir)
    for (const [name, a] of Object.entries(manifest.artifacts ?? {})) {
      const key = `${name}-${a.version}`
      const k = known.get(key)
      if (k) k.releases.push(release)
      else known.set(key, {manifest, name, version: a.version, releases: [release]})
    }
  }
  const entries: CacheEntry[] = []
  const sharedCaches: string[] = []
  const names = existsSync(cache) ? (await readdir(cache, {withFileTypes: true})).filter((d) => d.isDirectory()).map((d) => d.name).sort() : []
  for (const entry of names) {
    const dir = join(cache, entry)
    if (Object.values(RECIPE_KINDS).some((k) => k.cache === entry)) {
      sharedCaches.push(dir)
      continue
    }
    const base = {entry, dir, releases: [] as string[], ...(await dirSize(dir))}
    if (entry.startsWith('.tmp-')) entries.push({...base, name: null, version: null, state: 'incomplete'})
    else if (entry.startsWith('.rejected-')) entries.push({...base, ...nameOf(known, entry.slice('.rejected-'.length)), state: 'rejected'})
    else if (entry.startsWith('.')) continue
    else {
      const k = known.get(entry)
      if (!k) {
        const stamp = await readStamp(dir)
        entries.push({...base, name: stamp?.name ?? null, version: stamp?.version ?? null, state: 'not-in-any-release'})
        continue
      }
      const rel = artifactRelease(k.manifest, k.name)
      const sumsText = await readFile(join(root, rel.sums))
      const check = await verifyArtifactDir(dir, k.name, k.version, parseSums(sumsText.toString('utf8'), rel.sums), createHash('sha256').update(sumsText).digest('hex'))
      entries.push({...base, name: k.name, version: k.version, releases: k.releases, state: check.ok ? 'verified' : 'damaged', ...(check.ok ? {} : {problem: describeProblems(check)})})
    }
  }
  return {cacheDir: cache, entries, sharedCaches}
}

function nameOf(known: Map<string, {name: string; version: string}>, key: string): {name: string | null; version: string | null} {
  const k = known.get(key)
  return {name: k?.name ?? null, version: k?.version ?? null}
}

async function dirSize(dir: string): Promise<{files: number; bytes: number}> {
  let files = 0
  let bytes = 0
  for (const e of await readdir(dir, {withFileTypes: true, recursive: true})) {
    if (!e.isFile()) continue
    const s = await stat(join(e.parentPath, e.name)).catch(() => undefined)
    if (s) {
      files++
      bytes += s.size
    }
  }
  return {files, bytes}
}
