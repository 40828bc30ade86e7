import type {ComponentName} from '../config/model.js'
import type {PinnedPackage, ReleaseManifest} from '../config/manifest.js'
import type {FileResource} from './resources.js'

/** Where a suite's sources entry and its pin go on a host. */
export function aptSuitePaths(suite: string): {sources: string; preferences: string} {
  return {sources: `/etc/apt/sources.list.d/imctl-${suite}.sources`, preferences: `/etc/apt/preferences.d/imctl-${suite}`}
}

/**
 * The files that let a host install packages from a suite beyond the OS's own: a deb822
 * sources entry, and a pin that gives only the release's packages from that suite the
 * priority of a normal suite. Everything else in it keeps apt's default (backports: 100,
 * taken only when asked for), so the install's `-t SUITE` brings in just what they depend on.
 */
export function aptSuiteFiles(cluster: string, manifest: ReleaseManifest, host: string, component: ComponentName, packages: PinnedPackage[]): FileResource[] {
  const bySuite = new Map<string, string[]>()
  for (const p of packages) if (p.suite) bySuite.set(p.suite, [...(bySuite.get(p.suite) ?? []), p.name])
  return [...bySuite].flatMap(([suite, names]) => {
    const s = manifest.aptSuites?.[suite]
    if (!s) throw new Error(`bug: manifest ${manifest.release} has no aptSuites.${suite}`)
    const paths = aptSuitePaths(suite)
    const base = {kind: 'file' as const, host, component, owner: 'root', group: 'root', mode: '644', secret: false, notify: [], aptSource: true}
    return [
      {
        ...base,
        path: paths.sources,
        content:
          `# Managed by imctl for cluster ${cluster}: ${suite}, for ${names.join(', ')} only (pinned in ${paths.preferences}).\n` +
          `Types: deb\nURIs: ${s.uri}\nSuites: ${suite}\nComponents: ${s.components.join(' ')}\nSigned-By: ${s.signedBy}\n`,
      },
      {
        ...base,
        path: paths.preferences,
        content:
          `Explanation: Managed by imctl for cluster ${cluster}: these come from ${suite};\n` +
          `Explanation: the rest of ${suite} keeps apt's default priority.\n` +
          `Package: ${names.join(' ')}\nPin: release n=${suite}\nPin-Priority: 500\n`,
      },
    ]
  })
}
