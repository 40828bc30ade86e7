import type {ReleaseManifest} from '../../config/manifest.js'

/**
 * The shortest chain of releases from `from` to `to`, both ends included, where each
 * release lists the one before it in `upgradeFrom` (a required stop is a release that
 * must be reached on the way). Null when there is none. Pure: manifests come as a lookup.
 */
export function findUpgradePath(from: string, to: string, releases: string[], manifest: (release: string) => ReleaseManifest): string[] | null {
  if (from === to) return [from]
  // Edges point from a release to those that list it in upgradeFrom.
  const next = new Map<string, string[]>()
  for (const r of releases) {
    for (const src of manifest(r).upgradeFrom ?? []) next.set(src, [...(next.get(src) ?? []), r])
  }
  const cameFrom = new Map<string, string>([[from, '']])
  const queue = [from]
  while (queue.length) {
    const at = queue.shift()!
    for (const n of (next.get(at) ?? []).sort()) {
      if (cameFrom.has(n)) continue
      cameFrom.set(n, at)
      if (n === to) {
        const path = [n]
        for (let p = at; p; p = cameFrom.get(p)!) path.unshift(p)
        return path
      }
      queue.push(n)
    }
  }
  return null
}

/** The releases reachable from `from` by upgrades, nearest first (for error messages). */
export function reachableFrom(from: string, releases: string[], manifest: (release: string) => ReleaseManifest): string[] {
  return releases.filter((r) => r !== from && findUpgradePath(from, r, releases, manifest))
}
