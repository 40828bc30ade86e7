import {COMPONENTS, component} from '../components/registry.js'
import {containerRuntime} from '../components/types.js'
import {loadClusterConfig} from '../config/load.js'
import {loadManifest, type ReleaseManifest} from '../config/manifest.js'
import {secretSections, type ClusterConfig, type HostConfig} from '../config/model.js'
import {loadSecrets, redact, secretValues, type ClusterSecrets} from '../config/secrets.js'
import {UserError} from '../errors.js'
import {ensurePki, type PkiOptions} from '../pki/pki.js'
import type {IoHost} from '../io.js'
import {desiredState, hostsInUse, type OfflineSource} from '../plan/desired.js'
import type {HostFacts} from '../plan/facts.js'
import {gatherFacts} from '../plan/gather.js'
import {planChanges, type Plan} from '../plan/planner.js'
import type {Resource} from '../plan/resources.js'
import {KnownHosts} from '../transport/known-hosts.js'
import {connectEngine} from '../transport/engine.js'
import {connectSsh} from '../transport/ssh.js'
import type {HostConnection} from '../transport/types.js'

export interface ConnectOptions {
  acceptNewHostKeys?: boolean
  io: IoHost
}

/** A validated cluster with its secrets and desired state; no host contacted yet. */
export interface ClusterModel {
  config: ClusterConfig
  manifest: ReleaseManifest
  secrets: ClusterSecrets
  resources: Resource[]
  /** Replaces every secret value in a text with ********. */
  redact(text: string): string
}

export function loadCluster(configFile: string, opts: {offline?: OfflineSource; pki?: PkiOptions} = {}): ClusterModel {
  const config = loadClusterConfig(configFile, {checkKeyFiles: true})
  const manifest = loadManifest(config.release)
  const secrets = loadSecrets(config.secretsFile, secretSections(config))
  // The CA and each server certificate are made here when missing or no longer right, so plan shows what they change.
  if (config.tls) secrets.tls = ensurePki(config, opts.pki)
  const values = secretValues(secrets)
  return {config, manifest, secrets, resources: desiredState(config, manifest, secrets, undefined, opts.offline), redact: (t) => redact(t, values)}
}

/** Opens one SSH connection per host, in parallel; all or none. */
export async function connectHosts(config: ClusterConfig, hosts: HostConfig[], opts: ConnectOptions): Promise<Map<string, HostConnection>> {
  const knownHosts = new KnownHosts(config.knownHostsFile)
  const ssh = {knownHosts, acceptNewHostKeys: opts.acceptNewHostKeys ?? false, io: opts.io}
  const results = await Promise.allSettled(hosts.map((h): Promise<HostConnection> => (h.engine ? connectEngine(h, {...ssh, cluster: config.name}) : connectSsh(h, ssh))))
  const conns = new Map<string, HostConnection>()
  const errors: string[] = []
  const steps = new Set<string>()
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') conns.set(hosts[i]!.name, r.value)
    else {
      errors.push((r.reason as Error).message)
      for (const s of (r.reason as UserError).nextSteps ?? []) steps.add(s)
    }
  })
  if (errors.length) {
    await closeAll(conns)
    throw new UserError(errors.join('\n'), [...steps])
  }
  return conns
}

/**
 * Like connectHosts, but the hosts in `spare` may fail to answer: they are left out of the
 * connections and listed with their error. Any other host that fails fails the whole call.
 */
export async function connectReachable(config: ClusterConfig, hosts: HostConfig[], spare: Set<string>, opts: ConnectOptions): Promise<{conns: Map<string, HostConnection>; unreachable: {host: string; error: string}[]}> {
  const unreachable: {host: string; error: string}[] = []
  const optional = hosts
    .filter((h) => spare.has(h.name))
    .map((h) =>
      connectHosts(config, [h], opts).then(
        (c) => [h.name, c.get(h.name)!] as const,
        (e: Error) => {
          unreachable.push({host: h.name, error: e.message})
          return undefined
        },
      ),
    )
  const [needed, ...rest] = await Promise.allSettled([connectHosts(config, hosts.filter((h) => !spare.has(h.name)), opts), ...optional])
  const extra = rest.flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value] : []))
  if (needed!.status === 'rejected') {
    await closeAll(new Map(extra))
    throw needed!.reason
  }
  const conns = needed!.value as Map<string, HostConnection>
  for (const [n, c] of extra) conns.set(n, c)
  return {conns, unreachable}
}

export async function closeAll(conns: Map<string, HostConnection>): Promise<void> {
  await Promise.allSettled([...conns.values()].map((c) => c.close()))
}

export function componentOrder() {
  return COMPONENTS.map((c) => c.name)
}

/** Observes every host in parallel and computes the plan (read-only). */
export async function observeAndPlan(model: ClusterModel, conns: Map<string, HostConnection>, opts: {purgeData?: boolean} = {}): Promise<{plan: Plan; facts: Record<string, HostFacts>}> {
  const names = hostsInUse(model.config, model.resources)
  const facts = Object.fromEntries(
    await Promise.all(names.map(async (n) => [n, await gatherFacts(conns.get(n)!, model.resources, model.config.name)] as const)),
  )
  const plan = planChanges(model.resources, facts, componentOrder(), (c) => component(c).dependsOn, model.redact, {purgeData: opts.purgeData ?? false, ready: (c) => containerRuntime(component(c)).ready})
  return {plan, facts}
}

export function usedHosts(model: ClusterModel): HostConfig[] {
  const names = hostsInUse(model.config, model.resources)
  return model.config.hosts.filter((h) => names.includes(h.name))
}
