/**
 * The Debian half of a bundle: a flat apt repository holding every package the
 * release installs with all its dependencies, made in a throwaway container on
 * the local engine (FROM the Debian 12 base image imctl builds without a registry).
 * The commands run there are data built by the pure functions below.
 */
import {randomBytes} from 'node:crypto'
import type {Readable} from 'node:stream'
import type Docker from 'dockerode'
import * as tar from 'tar-stream'
import {versionMatches, type PinnedPackage, type ReleaseManifest} from '../../config/manifest.js'
import {tail, UserError} from '../../errors.js'
import type {IoHost} from '../../io.js'
import {containerExec} from '../../sandbox/engine.js'
import {shScript, type RemoteCommand} from '../../transport/command.js'
import {ensureBaseImage} from '../../transport/engine-images.js'
import {isSafeRelativePath, type BundledPackage, type BundleFile} from './format.js'
import type {PutFile} from './write.js'

/** Folders inside the throwaway container. */
export const WORK = {
  repo: '/bundle/debs',
  emptyStatus: '/bundle/empty-status',
  cache: '/bundle/cache',
  check: '/bundle/check',
} as const

/**
 * Which packages go in, and why this closure: apt resolves the release's packages as if
 * NOTHING were installed (an empty dpkg status), so the bundle holds every Depends and
 * Pre-Depends down to libc6, not only what the minbase build image happens to lack.
 * Any Debian 12 host then finds each dependency either already installed (at a version
 * apt accepts) or in the bundle. Essential packages (bash, coreutils…) are on every host
 * and are only carried when something depends on them by version. Recommends are left
 * out, as hosts install with --no-install-recommends.
 */
export const CLOSURE = 'every Depends/Pre-Depends of the packages, resolved by apt against an empty dpkg status (Recommends left out)'

export const LABEL = 'io.imctl.bundle'

export interface RootPackage extends PinnedPackage {
  /** The component it is for, or `host` (the manifest's hostPackages). */
  for: string
}

/** The manifest's `hostPackages` (packages imctl needs on hosts for components without Debian packages), checked. */
export function hostPackages(manifest: ReleaseManifest): PinnedPackage[] {
  const raw: unknown = manifest.hostPackages ?? []
  const ok = Array.isArray(raw) && raw.every((p) => typeof p?.name === 'string' && p.name && typeof p.version === 'string' && p.version)
  if (!ok) throw new Error(`bug: manifest ${manifest.release}: hostPackages must be a list of {name, version}`)
  return raw as PinnedPackage[]
}

/** Every package a release installs on hosts: each component's, then hostPackages; each name once. */
export function rootPackages(manifest: ReleaseManifest): RootPackage[] {
  const roots = new Map<string, RootPackage>()
  const add = (p: PinnedPackage, why: string) => {
    const had = roots.get(p.name)
    if (had && had.version !== p.version) throw new Error(`bug: manifest ${manifest.release} pins ${p.name} as ${had.version} and as ${p.version}`)
    if (!had) roots.set(p.name, {name: p.name, version: p.version, for: why})
  }
  for (const [component, c] of Object.entries(manifest.components)) for (const p of c.packages) add(p, component)
  for (const p of hostPackages(manifest)) add(p, 'host')
  return [...roots.values()]
}

/** Debian 12's suites from a mirror, plus security updates when a security mirror is given. */
export function aptSourceLines(mirror: string, securityMirror: string | null): string[] {
  return [`deb ${mirror} bookworm main`, `deb ${mirror} bookworm-updates main`, ...(securityMirror ? [`deb ${securityMirror} bookworm-security main`] : [])]
}

/** apt in the container resolving as if nothing were installed, downloading into the work folder. */
export function emptyStatusAptOptions(): string[] {
  return ['-o', `Dir::State::status=${WORK.emptyStatus}`, '-o', `Dir::Cache=${WORK.cache}`, '-o', 'Dir::Cache::pkgcache=', '-o', 'Dir::Cache::srcpkgcache=']
}

/** apt seeing only the bundle's own repository (and still an empty status): the closure check. */
export function bundleOnlyAptOptions(): string[] {
  return [
    ...emptyStatusAptOptions(),
    '-o', `Dir::Etc::sourcelist=${WORK.check}/sources.list`,
    '-o', 'Dir::Etc::sourceparts=-',
    '-o', `Dir::State::Lists=${WORK.check}/lists`,
  ]
}

// The Release file's date: apt refuses a Release dated in its future, and an offline host's
// clock may be behind this machine's; Debian 12's release day is before any host's clock.
const RELEASE_DATE = 'Sat, 10 Jun 2023 00:00:00 UTC'

/** The steps before version picking: sources, lists, the indexer. */
export function prepareCommands(sources: string[]): RemoteCommand[] {
  return [
    {
      argv: shScript(
        `printf '%s\\n' "$@" > /etc/apt/sources.list && rm -f /etc/apt/sources.list.d/* && mkdir -p ${WORK.cache}/archives/partial ${WORK.repo} ${WORK.check}/lists/partial && : > ${WORK.emptyStatus}`,
        sources,
      ),
      description: 'point apt at the Debian mirror',
    },
    {argv: ['apt-get', 'update', '-qq'], description: "read the mirror's package lists"},
    {argv: ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'apt-utils'], description: 'install apt-ftparchive (apt-utils) in the throwaway container'},
  ]
}

/** Downloads the exact versions with every dependency, then makes the flat repository and checks it alone suffices. */
export function repositoryCommands(pinned: {name: string; version: string}[]): RemoteCommand[] {
  const wanted = pinned.map((p) => `${p.name}=${p.version}`)
  const names = pinned.map((p) => p.name)
  return [
    {
      argv: ['apt-get', '-q', ...emptyStatusAptOptions(), 'install', '--download-only', '-y', '--no-install-recommends', ...wanted],
      description: `download ${names.join(' ')} and every dependency (resolved against an empty dpkg status)`,
    },
    {
      // Pool-style file names: no epoch (`5%3a7.0…` would need URL-decoding wherever it goes).
      argv: shScript(`cd ${WORK.cache}/archives && for f in *.deb; do mv -- "$f" "${WORK.repo}/$(printf '%s' "$f" | sed 's/_[0-9][0-9]*%3a/_/')"; done`),
      description: 'move the packages into the repository folder',
    },
    {
      argv: shScript(
        `cd ${WORK.repo} && apt-ftparchive packages . > ../Packages && mv ../Packages Packages` +
          ` && apt-ftparchive -o "APT::FTPArchive::Release::Date=$1" -o APT::FTPArchive::Release::Origin=imctl release . > ../Release && mv ../Release Release`,
        [RELEASE_DATE],
      ),
      description: 'index the repository (Packages, Release)',
    },
    {
      argv: shScript(`echo "deb [trusted=yes] file:${WORK.repo} ./" > ${WORK.check}/sources.list && apt-get -qq "$@" update`, bundleOnlyAptOptions()),
      description: "read the bundle repository's index alone",
    },
    {
      argv: ['apt-get', '-qq', ...bundleOnlyAptOptions(), '--simulate', 'install', '--no-install-recommends', ...wanted],
      description: 'check that the bundle repository alone installs everything on an empty system',
    },
  ]
}

export const listFilesCommand: RemoteCommand = {
  argv: shScript(`cd ${WORK.repo} && sha256sum -- * && echo --- && stat -c '%s %n' -- *`),
  description: "hash the repository's files",
}

/** `apt-cache madison` lines: `name | version | source`, newest version first. */
export function parseMadison(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const line of text.split('\n')) {
    const parts = line.split('|').map((s) => s.trim())
    if (parts.length !== 3 || !parts[2]!.endsWith('Packages')) continue
    const [name, version] = parts as [string, string]
    const list = out.get(name) ?? []
    if (!list.includes(version)) list.push(version)
    out.set(name, list)
  }
  return out
}

/** For each root, the newest version the mirror has that matches the manifest's glob. */
export function pickVersions(roots: RootPackage[], available: Map<string, string[]>): {name: string; version: string}[] {
  return roots.map((r) => {
    const versions = available.get(r.name) ?? []
    if (!versions.length) throw new UserError(`the Debian mirror has no package ${r.name} (needed for ${r.for})`, ['Check --mirror: it must carry Debian 12 (bookworm) main.'])
    const version = versions.find((v) => versionMatches(r.version, v))
    if (!version) {
      throw new UserError(`the Debian mirror has ${r.name} ${versions.join(', ')}, none matching the release's ${r.version}`, [
        'Use a mirror that still carries a matching version (or a snapshot.debian.org date), or a release manifest that pins the version on offer.',
      ])
    }
    return {name: r.name, version}
  })
}

export interface IndexedPackage {
  name: string
  version: string
  arch: string
  filename: string
}

/** The stanzas of an apt `Packages` index (only the fields a bundle needs). */
export function parsePackagesIndex(text: string): IndexedPackage[] {
  return text
    .split(/\n\s*\n/)
    .map((stanza) => {
      const field = (k: string) => stanza.match(new RegExp(`^${k}: *(.*)$`, 'm'))?.[1]?.trim() ?? ''
      return {name: field('Package'), version: field('Version'), arch: field('Architecture'), filename: field('Filename').replace(/^\.\//, '')}
    })
    .filter((p) => p.name)
}

/** `sha256sum` then `---` then `stat -c '%s %n'`, into file entries sorted by path. */
export function parseFileList(text: string): BundleFile[] {
  const [sums = '', sizes = ''] = text.split(/^---$/m)
  const size = new Map<string, number>()
  for (const line of sizes.split('\n')) {
    const m = line.match(/^(\d+) (.+)$/)
    if (m) size.set(m[2]!, Number(m[1]))
  }
  const files: BundleFile[] = []
  for (const line of sums.split('\n')) {
    const m = line.match(/^([0-9a-f]{64}) [ *](.+)$/)
    if (!m) continue
    const path = m[2]!
    const n = size.get(path)
    if (n === undefined || !isSafeRelativePath(path)) throw new Error(`bug: unexpected file in the bundle repository: ${JSON.stringify(path)}`)
    files.push({path, sha256: m[1]!, size: n})
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

/** The release's packages as the repository carries them; a missing one or a version off its glob is a bug. */
export function bundledPackages(roots: RootPackage[], index: IndexedPackage[]): BundledPackage[] {
  return roots.map((r) => {
    const p = index.find((x) => x.name === r.name)
    if (!p || !versionMatches(r.version, p.version)) throw new Error(`bug: the bundle repository has ${r.name} ${p?.version ?? '(none)'}, not ${r.version}`)
    return {name: r.name, pattern: r.version, version: p.version, for: r.for}
  })
}

export interface DebRepository {
  arch: string
  packages: BundledPackage[]
  sources: string[]
  files: BundleFile[]
  /** Streams every file of the repository (the .debs, Packages, Release) out of the container. */
  stream(put: PutFile): Promise<void>
  /** Removes the throwaway container (gone already is fine). */
  remove(): Promise<void>
}

/** Makes the repository in a throwaway container; the caller streams it out, then removes the container. */
export async function buildDebRepository(opts: {docker: Docker; roots: RootPackage[]; sources: string[]; io: IoHost}): Promise<DebRepository> {
  const {docker, io} = opts
  await removeStaleContainers(docker)
  const image = await ensureBaseImage(docker, {notify: (message) => io.notify({type: 'info', message})})
  const name = `imctl-bundle-${randomBytes(4).toString('hex')}`
  const c = await docker.createContainer({
    name,
    Image: image,
    Cmd: ['sleep', 'infinity'],
    Labels: {[LABEL]: `${process.pid}`},
  })
  const remove = async () => {
    await c.remove({force: true}).catch((e: {statusCode?: number}) => {
      if (e.statusCode !== 404) throw e
    })
  }
  try {
    await c.start()
    const run = async (cmd: RemoteCommand): Promise<string> => {
      io.notify({type: 'info', message: `bundle: ${cmd.description}`})
      try {
        return await containerExec(c, cmd.argv)
      } catch (e) {
        throw new UserError(`making the bundle's package repository failed: ${cmd.description}:\n${tail((e as Error).message)}`, [
          'Check that this machine reaches the Debian mirror (--mirror, --security-mirror) and that the release names packages Debian 12 has.',
        ], 1)
      }
    }
    for (const cmd of prepareCommands(opts.sources)) await run(cmd)
    const arch = (await run({argv: ['dpkg', '--print-architecture'], description: 'read the architecture'})).trim()
    const pinned = pickVersions(opts.roots, parseMadison(await run({argv: ['apt-cache', 'madison', ...opts.roots.map((r) => r.name)], description: 'list the versions on offer'})))
    for (const cmd of repositoryCommands(pinned)) await run(cmd)
    const files = parseFileList(await run(listFilesCommand))
    const packages = bundledPackages(opts.roots, parsePackagesIndex(await containerExec(c, ['cat', `${WORK.repo}/Packages`])))
    return {
      arch,
      packages,
      sources: opts.sources,
      files,
      stream: (put) => streamFolder(c, WORK.repo, put),
      remove,
    }
  } catch (e) {
    await remove().catch(() => undefined)
    throw e
  }
}

/** Each file of a folder in the container, through the engine's archive API. */
async function streamFolder(c: Docker.Container, dir: string, put: PutFile): Promise<void> {
  const archive = (await c.getArchive({path: dir})) as unknown as Readable
  const extract = tar.extract()
  archive.on('error', (e) => extract.destroy(e))
  archive.pipe(extract)
  const top = dir.split('/').pop()!
  for await (const entry of extract) {
    const name = entry.header.name.replace(/^\.\//, '')
    const rel = name.startsWith(`${top}/`) ? name.slice(top.length + 1) : name
    if (entry.header.type !== 'file' || !rel) {
      entry.resume()
      continue
    }
    await put(rel, entry.header.size ?? 0, entry as unknown as Readable)
  }
}

/** Containers a killed `bundle create` on this machine left behind (their imctl is gone). */
async function removeStaleContainers(docker: Docker): Promise<void> {
  const list = await docker.listContainers({all: true, filters: JSON.stringify({label: [LABEL]})})
  for (const info of list) {
    const pid = Number(info.Labels[LABEL])
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) continue
    await docker.getContainer(info.Id).remove({force: true}).catch(() => undefined)
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}
