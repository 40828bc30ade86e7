import type {Migration, ReleaseManifest} from '../../config/manifest.js'
import type {ClusterConfig, ComponentName} from '../../config/model.js'
import type {HostFacts} from '../../plan/facts.js'
import type {Plan, Step} from '../../plan/planner.js'
import {artifactSums, resourceKey, type Resource} from '../../plan/resources.js'

/** One component on one host, changed as one piece: the only place where its service is interrupted. */
export interface UnitPlan {
  /** `component@host`. */
  id: string
  component: ComponentName
  host: string
  steps: Step[]
  /** systemd units this unit restarts or starts. */
  restarts: string[]
  /** Seconds its service is expected to be interrupted (see DOWNTIME_ESTIMATES). */
  estimateSeconds: number
}

export interface DowntimeEstimate {
  component: ComponentName
  /** Seconds its clients cannot use it. */
  seconds: number
  /** Nodes go one at a time while the others serve. */
  rolling: boolean
  how: string
}

/** What runs once every node has the new version (and cannot be undone). */
export interface FinalizeAction {
  kind: 'kafka-features'
  component: 'kafka'
  /** e.g. `4.4`: FeatureCommand's --release-version. */
  releaseVersion: string
  what: string
}

export interface HopPlan {
  from: string
  to: string
  /** Planned on the hosts as observed now, or (after the first stop) on the state the hop before leaves. */
  basis: 'observed' | 'predicted'
  /** Steps that interrupt nothing (apt sources, artifact uploads, directories): all hosts in parallel, first. */
  prepare: Step[]
  /** Then one unit at a time, components in dependency order, a clustered component's nodes in turn. */
  units: UnitPlan[]
  migrations: Migration[]
  finalize: FinalizeAction[]
  downtime: DowntimeEstimate[]
  blockers: string[]
  /** A store's server or its data changes: rolling this hop back restores the pre-upgrade backup. */
  touchesData: boolean
}

/**
 * Seconds per disruptive step, measured on the reference machine (2 cores, sandbox hosts,
 * Debian's mirror): `upgrade` is apt replacing the packages while the old server is stopped
 * (its prerm) until the new one starts (its postinst); `restart` is systemd's restart until the
 * readiness check passes. A unit's estimate is the sum over its steps.
 */
export const DOWNTIME_ESTIMATES: Record<ComponentName, {upgrade: number; restart: number; note: string}> = {
  postgresql: {upgrade: 20, restart: 3, note: 'a minor upgrade of the same major version (the data directory stays)'},
  redis: {upgrade: 10, restart: 2, note: 'reloads its RDB/AOF at start'},
  ejabberd: {upgrade: 28, restart: 8, note: 'the upgrade step to 24.12 (list refresh, download, 18 packages replaced) took 27-28 s, the server stopped for part of it; a restart until its API answers 8-12 s'},
  kafka: {upgrade: 0, restart: 15, note: 'per node: restart with the new jars until it listens again took 12-16 s'},
  minio: {upgrade: 0, restart: 5, note: 'per node, until it serves with the others'},
  haproxy: {upgrade: 5, restart: 1, note: 'not measured yet: a reload-free restart of the balancer, clients reconnect'},
}

const PREPARE_KINDS = new Set<Resource['kind']>(['artifact', 'system-user', 'directory'])

/**
 * Splits a planner's upgrade-mode plan for one hop into what an upgrade runs: the steps that
 * interrupt nothing, then units (a component on a host) one at a time, then migrations and
 * finalizing actions. Pure: the same plan gives the same hop.
 */
export function planHop(input: {
  config: ClusterConfig
  from: ReleaseManifest
  to: ReleaseManifest
  plan: Plan
  resources: Resource[]
  componentOrder: ComponentName[]
  basis: HopPlan['basis']
}): HopPlan {
  const {config, from, to, plan, resources} = input
  const byId = new Map(resources.map((r) => [resourceKey(r), r]))
  const resourceOf = (s: Step) => byId.get(s.id) ?? byId.get(s.id.replace(/:[a-z]+$/, ''))
  const prepare: Step[] = []
  const groups = new Map<string, Step[]>()
  for (const s of plan.steps) {
    const r = resourceOf(s)
    if (r && (PREPARE_KINDS.has(r.kind) || (r.kind === 'file' && r.aptSource))) {
      prepare.push(s)
      continue
    }
    const key = `${s.component}@${s.host}`
    groups.set(key, [...(groups.get(key) ?? []), s])
  }
  const hostIndex = (h: string) => config.hosts.findIndex((x) => x.name === h)
  const units = [...groups]
    .map(([id, steps]): UnitPlan => {
      const [component, host] = id.split('@') as [ComponentName, string]
      // Config files first (nothing reads them until the restart), then packages, then the rest.
      const rank = (s: Step) => (s.action === 'write' ? 0 : s.action === 'upgrade' || s.action === 'install' ? 1 : 2)
      const ordered = steps.map((s, i) => ({s, i})).sort((a, b) => rank(a.s) - rank(b.s) || a.i - b.i).map((x) => x.s)
      const restarts = ordered.flatMap((s) => {
        const r = resourceOf(s)
        return (s.action === 'restart' || s.action === 'start') && r?.kind === 'service' ? [r.unit] : []
      })
      const est = DOWNTIME_ESTIMATES[component]
      const estimateSeconds = ordered.reduce((n, s) => n + (s.action === 'upgrade' ? est.upgrade : s.action === 'restart' || s.action === 'start' ? est.restart : 0), 0)
      return {id, component, host, steps: ordered, restarts, estimateSeconds}
    })
    .sort((a, b) => input.componentOrder.indexOf(a.component) - input.componentOrder.indexOf(b.component) || hostIndex(a.host) - hostIndex(b.host))

  const placed = (c: string) => Boolean(config.components[c as ComponentName])
  const migrations = (to.migrations ?? []).filter((m) => placed(m.component))
  const finalize: FinalizeAction[] = []
  const kFrom = from.artifacts?.kafka?.version
  const kTo = to.artifacts?.kafka?.version
  if (config.components.kafka && kFrom && kTo && compareDotted(kTo, kFrom) > 0) {
    const releaseVersion = kTo.split('.').slice(0, 2).join('.')
    finalize.push({
      kind: 'kafka-features',
      component: 'kafka',
      releaseVersion,
      what: `raise Kafka's finalized features (metadata.version and the rest) to release ${releaseVersion} once every node runs ${kTo}: one-way, Kafka cannot go back to ${kFrom} after it`,
    })
  }
  return {
    from: from.release,
    to: to.release,
    basis: input.basis,
    prepare,
    units,
    migrations,
    finalize,
    downtime: estimateDowntime(config, units),
    blockers: plan.blockers,
    touchesData: units.some((u) => u.component === 'postgresql' || u.component === 'redis' || u.component === 'ejabberd') || migrations.length > 0,
  }
}

/** Per component: rolling (0 s) when it has nodes enough to serve with one down, else the sum of its units' estimates. */
export function estimateDowntime(config: ClusterConfig, units: UnitPlan[]): DowntimeEstimate[] {
  const components = [...new Set(units.filter((u) => u.estimateSeconds > 0).map((u) => u.component))]
  return components.map((c) => {
    const mine = units.filter((u) => u.component === c)
    const est = DOWNTIME_ESTIMATES[c]
    const rolling = (c === 'kafka' && (config.components.kafka?.hosts.length ?? 0) >= 3) || (c === 'minio' && (config.components.minio?.hosts.length ?? 0) >= 3)
    const perNode = Math.max(...mine.map((u) => u.estimateSeconds))
    return rolling
      ? {component: c, seconds: 0, rolling, how: `${mine.length} node(s) one at a time, each about ${perNode} s while the others serve (${est.note})`}
      : {component: c, seconds: mine.reduce((n, u) => n + u.estimateSeconds, 0), rolling, how: `sum of its measured step times: upgrade ${est.upgrade} s, restart ${est.restart} s (${est.note})`}
  })
}

/** Compares dotted numeric versions (`4.10.0` > `4.4.0`). */
export function compareDotted(a: string, b: string): number {
  const x = a.split('.').map(Number)
  const y = b.split('.').map(Number)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0)
    if (d) return Math.sign(d)
  }
  return 0
}

/**
 * The facts a converged hop leaves behind, for planning the hop after it before the first has
 * run: every desired resource as desired (a package at its pin, shown as the pin itself).
 */
export function predictFacts(facts: Record<string, HostFacts>, resources: Resource[]): Record<string, HostFacts> {
  // Copies of the records this changes (a FileFact's Buffer is replaced, never changed).
  const out: Record<string, HostFacts> = Object.fromEntries(
    Object.entries(facts).map(([h, f]) => [h, {...f, packages: {...f.packages}, files: {...f.files}, services: {...f.services}, paths: {...f.paths}, users: {...f.users}, pendingRestarts: []}]),
  )
  for (const r of resources) {
    const f = out[r.host]
    if (!f) continue
    switch (r.kind) {
      case 'packages':
        for (const p of r.packages) f.packages[p.name] = p.version
        break
      case 'file':
        f.files[r.path] = {owner: r.owner, group: r.group, mode: r.mode, content: Buffer.from(r.content)}
        break
      case 'artifact':
        f.files[`${r.dir}/SHA256SUMS`] = {owner: 'root', group: 'root', mode: '644', content: Buffer.from(artifactSums(r.files))}
        break
      case 'service':
        for (const u of [r.unit, r.enableUnit ?? r.unit]) f.services[u] = {loaded: true, active: true, enabled: true}
        break
      case 'directory':
        f.paths[r.path] = {type: 'directory', owner: r.owner, group: r.group, mode: r.mode}
        break
      case 'once':
        f.paths[r.marker] = {type: 'file', owner: 'root', group: 'root', mode: '644'}
        break
      case 'system-user':
        f.users[r.user] = true
        break
      default:
        break
    }
  }
  return out
}
