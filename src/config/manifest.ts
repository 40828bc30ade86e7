import {readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {parse} from 'yaml'
import {UserError} from '../errors.js'
import {manifestsDir} from '../paths.js'

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

export interface ReleaseManifest {
  release: string
  os: string
  components: Record<string, ComponentRelease>
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

/** True when a Debian version string matches a manifest's glob (only `*` is special). */
export function versionMatches(pattern: string, version: string): boolean {
  const re = new RegExp('^' + pattern.split('*').map(escapeRegExp).join('.*') + '$')
  return re.test(version)
}

function escapeRegExp(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')
}
