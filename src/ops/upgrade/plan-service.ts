import {component} from '../../components/registry.js'
import {containerRuntime} from '../../components/types.js'
import {listReleases, loadManifest} from '../../config/manifest.js'
import type {ComponentName} from '../../config/model.js'
import {UserError} from '../../errors.js'
import type {IoHost} from '../../io.js'
import {desiredState} from '../../plan/desired.js'
import type {HostFacts} from '../../plan/facts.js'
import {gatherFacts} from '../../plan/gather.js'
import {planChanges, type Plan} from '../../plan/planner.js'
import type {HostConnection} from '../../transport/types.js'
import {closeAll, componentOrder, connectHosts, loadCluster, usedHosts, type ClusterModel} from '../cluster.js'
import {viewStep, type StepView} from '../install.js'
import {findUpgradePath, reachableFrom} from './path.js'
import {planHop, predictFacts, type DowntimeEstimate, type HopPlan} from './plan.js'

// ---------------------------------------------------------------- shared

/** The cluster as it would be on another release: same hosts, placement and secrets. */
export function modelAt(model: ClusterModel, release: string): ClusterModel {
  const manifest = loadManifest(release)
  const config = {...model.config, release}
  return {...model, config, manifest, resources: desiredState(config, manifest, model.secrets)}
}

export function pathOrRefuse(from: string, to: string): string[] {
  const releases = listReleases()
  if (!releases.includes(to)) throw new UserError(`unknown release ${JSON.stringify(to)}`, [`Use one of: ${releases.join(', ')}.`])
  const path = findUpgradePath(from, to, releases, loadManifest)
  if (path) return path
  const reachable = reachableFrom(from, releases, loadManifest)
  throw new UserError(`no upgrade path from ${from} to ${to}: no chain of releases listing each other in upgradeFrom leads there`, [
    reachable.length ? `From ${from} imctl can upgrade to: ${reachable.join(', ')}.` : `No release lists ${from} in its upgradeFrom.`,
    'A downgrade is not an upgrade: restore a backup of the older release instead (`imctl backup restore`).',
  ])
}

export function refuseEngineHosts(model: ClusterModel): void {
  const engines = usedHosts(model).filter((h) => h.engine)
  if (engines.length) throw new UserError(`upgrades of components on engine hosts (${engines.map((h) => h.name).join(', ')}) are not supported yet`, ['Upgrade SSH hosts only, or recreate the containers with `imctl install` on a cluster.yaml naming the new release.'])
}

export async function observe(model: ClusterModel, conns: Map<string, HostConnection>): Promise<Record<string, HostFacts>> {
  const names = usedHosts(model).map((h) => h.name)
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, await gatherFacts(conns.get(n)!, model.resources, model.config.name)] as const)))
}

export function planFor(model: ClusterModel, facts: Record<string, HostFacts>, upgrade: boolean): Plan {
  return planChanges(model.resources, facts, componentOrder(), (c) => component(c).dependsOn, model.redact, {upgrade, ready: (c) => containerRuntime(component(c)).ready})
}

export function hopPlan(from: ClusterModel, to: ClusterModel, facts: Record<string, HostFacts>, basis: HopPlan['basis']): HopPlan {
  return planHop({config: to.config, from: from.manifest, to: to.manifest, plan: planFor(to, facts, true), resources: to.resources, componentOrder: componentOrder(), basis})
}

// ---------------------------------------------------------------- upgrade plan

export interface UnitView {
  id: string
  component: ComponentName
  host: string
  restarts: string[]
  estimateSeconds: number
  steps: StepView[]
}

export interface HopView {
  from: string
  to: string
  basis: HopPlan['basis']
  prepare: StepView[]
  units: UnitView[]
  migrations: {id: string; component: string; what: string; how: string}[]
  finalize: {component: string; what: string}[]
  downtime: DowntimeEstimate[]
  /** What a failure in this hop undoes, and how. */
  rollback: string
  blockers: string[]
}

export interface UpgradePlanResult {
  cluster: string
  from: string
  to: string
  path: string[]
  hops: HopView[]
  /** What `imctl upgrade` checks before it changes anything. */
  preflight: string[]
  blockers: string[]
  estimates: string
}

export interface UpgradeOptions {
  configFile: string
  to: string
  /** A verified backup at most this old (ms) will do; else one is taken. */
  backupMaxAgeMs?: number
  /** Where backup sets are (default: backups/ beside cluster.yaml). */
  backupTo?: string
  keyFile?: string
  acceptNewHostKeys?: boolean
  io: IoHost
  /** Fault injection for tests: fail right after this step id, unit (`component@host`), migration id, or `finalize`. */
  failAfter?: string
}

export const DEFAULT_BACKUP_MAX_AGE_MS = 6 * 3600 * 1000
export const MIN_FREE_BYTES = 1024 ** 3

function viewHop(h: HopPlan): HopView {
  return {
    from: h.from,
    to: h.to,
    basis: h.basis,
    prepare: h.prepare.map(viewStep),
    units: h.units.map((u) => ({id: u.id, component: u.component, host: u.host, restarts: u.restarts, estimateSeconds: u.estimateSeconds, steps: u.steps.map(viewStep)})),
    migrations: h.migrations.map((m) => ({id: m.id, component: m.component, what: m.what, how: m.run.type === 'at-start' ? `${m.component} runs it at its first start on ${h.to}; imctl waits until its check holds` : `imctl runs ${m.run.argv.join(' ')}, then waits until its check holds`})),
    finalize: h.finalize.map((f) => ({component: f.component, what: f.what})),
    downtime: h.downtime,
    rollback: h.touchesData
      ? `packages back to the versions installed before (apt, name=version), ${h.from}'s files and services, then the pre-upgrade backup restored (its stores' writes since the backup are kept aside, not lost), then health`
      : `packages back to the versions installed before, ${h.from}'s files and services (one node at a time), then health; no data changes, so no restore`,
    blockers: h.blockers,
  }
}

function preflightList(maxAgeMs: number): string[] {
  return [
    'the cluster is converged on its current release (imctl plan: 0 changes)',
    'health is green (every check of `imctl health`)',
    `at least ${MIN_FREE_BYTES / 1024 ** 3} GiB free under /var and /opt on every host, plus twice the database's size on the PostgreSQL host (a restore stages a copy)`,
    `a verified backup of the current release at most ${Math.round(maxAgeMs / 3600_000)} h old, or one taken now with \`imctl backup create\``,
  ]
}

/** `imctl upgrade plan --to R`: read-only. The path, and for each hop its steps per host, restarts and expected downtime. */
export async function upgradePlanService(opts: UpgradeOptions): Promise<UpgradePlanResult> {
  const model = loadCluster(opts.configFile)
  const path = pathOrRefuse(model.config.release, opts.to)
  refuseEngineHosts(model)
  const conns = await connectHosts(model.config, usedHosts(model), opts)
  try {
    const hops: HopView[] = []
    let facts = await observe(modelAt(model, path[1] ?? path[0]!), conns)
    for (let i = 0; i + 1 < path.length; i++) {
      const from = modelAt(model, path[i]!)
      const to = modelAt(model, path[i + 1]!)
      if (i > 0) facts = predictFacts(await observe(to, conns), from.resources)
      hops.push(viewHop(hopPlan(from, to, facts, i === 0 ? 'observed' : 'predicted')))
    }
    return {
      cluster: model.config.name,
      from: model.config.release,
      to: opts.to,
      path,
      hops,
      preflight: preflightList(opts.backupMaxAgeMs ?? DEFAULT_BACKUP_MAX_AGE_MS),
      blockers: hops.flatMap((h) => h.blockers),
      estimates:
        'Downtime is estimated per component from step times measured on the reference machine (2 cores, sandbox hosts): a single node is down for its package upgrade and restart; ' +
        'a clustered component (Kafka with 3 or 5 nodes) goes one node at a time while the others serve, so clients see no downtime. `imctl upgrade` reports the measured times.',
    }
  } finally {
    await closeAll(conns)
  }
}
