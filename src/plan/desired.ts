import {COMPONENTS} from '../components/registry.js'
import type {ComponentContext} from '../components/types.js'
import type {ClusterConfig} from '../config/model.js'
import {hostByName} from '../config/model.js'
import type {ReleaseManifest} from '../config/manifest.js'
import type {ClusterSecrets} from '../config/secrets.js'
import {createRenderer, type TemplateRenderer} from '../render/templates.js'
import type {PackagesResource, Resource} from './resources.js'

/** Every resource of the cluster, packages merged per host so each host runs apt once. */
export function desiredState(
  config: ClusterConfig,
  manifest: ReleaseManifest,
  secrets: ClusterSecrets,
  render: TemplateRenderer = createRenderer(),
): Resource[] {
  const ctx: ComponentContext = {config, manifest, secrets, render, host: (n) => hostByName(config, n)}
  const all = COMPONENTS.flatMap((c) => c.resources(ctx))
  const merged = new Map<string, PackagesResource>()
  const rest: Resource[] = []
  for (const r of all) {
    if (r.kind !== 'packages') {
      rest.push(r)
      continue
    }
    const prev = merged.get(r.host)
    if (prev) prev.packages = [...prev.packages, ...r.packages.filter((p) => !prev.packages.some((q) => q.name === p.name))]
    else merged.set(r.host, {...r, packages: [...r.packages]})
  }
  return [...merged.values(), ...rest]
}

/** Hosts that have at least one resource, in cluster.yaml order. */
export function hostsInUse(config: ClusterConfig, resources: Resource[]): string[] {
  const used = new Set(resources.flatMap((r) => (r.kind === 'sql-schema' ? [r.host, r.dbHost] : [r.host])))
  return config.hosts.map((h) => h.name).filter((n) => used.has(n))
}
