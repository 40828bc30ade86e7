import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {component} from '../../components/registry.js'
import {kafkaHome, kafkaNodes} from '../../components/kafka/index.js'
import {featureCommand, parseFeatures, waitForFullIsr} from '../../components/kafka/upgrade.js'
import {setRelease} from '../../config/edit.js'
import type {Migration} from '../../config/manifest.js'
import type {ComponentName} from '../../config/model.js'
import {UserError} from '../../errors.js'
import type {IoHost} from '../../io.js'
import {applyPlan, type StepOutcome} from '../../plan/apply.js'
import type {Step} from '../../plan/planner.js'
import type {HostConnection} from '../../transport/types.js'
import {ensureArtifact} from '../artifacts.js'
import {appendAuditCommand, auditEntry} from '../audit.js'
import {backupRoot, createBackup, defaultKeyFile, verifyBackup, type BackupManifest} from '../backup/backup.js'
import {restoreBackup} from '../backup/restore.js'
import {closeAll, componentOrder, connectHosts, loadCluster, usedHosts, type ClusterModel} from '../cluster.js'
import {classifyHealth, runHealthChecks, type HealthCheck} from '../health.js'
import {lockCluster} from '../lock.js'
import {DEFAULT_BACKUP_MAX_AGE_MS, MIN_FREE_BYTES, hopPlan, modelAt, observe, pathOrRefuse, planFor, refuseEngineHosts, type UpgradeOptions} from './plan-service.js'
import type {HopPlan, UnitPlan} from './plan.js'
import {diskFreeQuery, migrationCheck, packageChanges, packageSnapshotQuery, parseDiskFree, parsePackageSnapshot, pgDatabaseSizeQuery, removeAptFiles, restorePackages} from './steps.js'

// ---------------------------------------------------------------- upgrade

/** One thing the upgrade did (or tried), in order: the run's timeline. */
export interface PhaseRecord {
  /** `A -> B`, or `-` before the first hop. */
  hop: string
  phase: 'preflight' | 'backup' | 'prepare' | 'unit' | 'gate' | 'migration' | 'finalize' | 'health' | 'commit' | 'rollback'
  id: string
  ok: boolean
  ms: number
  detail: string
  steps?: StepOutcome[]
  /** For a unit: how long its service was interrupted (its package upgrade and restart steps). */
  interruptedMs?: number
}

export interface PreflightCheck {
  check: string
  ok: boolean
  detail: string
}

export interface UpgradeResult {
  cluster: string
  from: string
  to: string
  path: string[]
  /** upgraded; rolled-back: a hop failed and the cluster is back on `release`; rollback-failed: see failure and timeline; refused: preflight said no, nothing changed. */
  status: 'upgraded' | 'rolled-back' | 'rollback-failed' | 'refused' | 'unchanged'
  /** What cluster.yaml says now, and what the cluster runs. */
  release: string
  preflight: PreflightCheck[]
  backup?: {id: string; startedAt: string; ageSeconds: number; taken: boolean; dir: string}
  timeline: PhaseRecord[]
  failure?: {hop: string; at: string; error: string}
  rollback?: {ok: boolean; restored?: string; keptAside: string[]; packagesLeft: string[]; health: HealthCheck[]; notes: string[]}
  /** Measured per component: the longest its service was interrupted in one unit, and in total. */
  downtime: {component: ComponentName; totalMs: number; rolling: boolean}[]
  ms: number
}

class InjectedFailure extends Error {}

/** How far a hop got: what its rollback has to undo. */
interface HopProgress {
  /** Kafka's features were raised: one-way, Kafka cannot go back. */
  finalized: boolean
  /** A store's unit or a migration started: the backup is restored. */
  dataTouched: boolean
}

const STORES: ComponentName[] = ['postgresql', 'redis', 'ejabberd']

/** `imctl upgrade --to R`: preflight, then each hop of the path; a failed hop is rolled back to the release before it. */
export async function upgradeService(opts: UpgradeOptions): Promise<UpgradeResult> {
  const t0 = Date.now()
  const model = loadCluster(opts.configFile)
  const path = pathOrRefuse(model.config.release, opts.to)
  refuseEngineHosts(model)
  const result: UpgradeResult = {cluster: model.config.name, from: model.config.release, to: opts.to, path, status: 'unchanged', release: model.config.release, preflight: [], timeline: [], downtime: [], ms: 0}
  if (path.length === 1) return {...result, ms: Date.now() - t0}
  const status = await runUpgrade(model, path, opts, result)
  return {...result, status, downtime: measuredDowntime(model, result.timeline), ms: Date.now() - t0}
}

/** Fills `result` as it goes (so a failure still reports all that happened) and returns the final status. */
async function runUpgrade(model: ClusterModel, path: string[], opts: UpgradeOptions, result: UpgradeResult): Promise<UpgradeResult['status']> {
  const conns = await connectHosts(model.config, usedHosts(model), opts)
  const io = opts.io
  const record = (r: PhaseRecord) => {
    result.timeline.push(r)
    io.notify({type: 'info', message: `${r.ok ? 'ok  ' : 'FAIL'} ${r.phase} ${r.id}${r.detail ? `: ${r.detail}` : ''} (${(r.ms / 1000).toFixed(1)} s)`})
  }
  try {
    const lock = await lockCluster([...conns.values()], `imctl upgrade --to ${opts.to}`, io)
    try {
      // Preflight: read-only checks, then the backup.
      const pre = Date.now()
      result.preflight = await preflight(model, conns)
      const bad = result.preflight.filter((c) => !c.ok)
      record({hop: '-', phase: 'preflight', id: 'checks', ok: !bad.length, ms: Date.now() - pre, detail: bad.map((c) => `${c.check}: ${c.detail}`).join('; ')})
      if (bad.length) return 'refused'
      const b0 = Date.now()
      result.backup = await backupForUpgrade(model, opts, io)
      record({hop: '-', phase: 'backup', id: result.backup.id, ok: true, ms: Date.now() - b0, detail: `${result.backup.taken ? 'taken now' : `verified, ${Math.round(result.backup.ageSeconds / 60)} min old`}: ${result.backup.dir}`})

      for (let i = 0; i + 1 < path.length; i++) {
        const from = modelAt(model, path[i]!)
        const to = modelAt(model, path[i + 1]!)
        const hop = `${from.config.release} -> ${to.config.release}`
        let backupId = result.backup.id
        if (i > 0) {
          // A stop on the way: back it up, so a failure in the next hop returns to it with its own data.
          const b = Date.now()
          const set = await createBackup({configFile: opts.configFile, ...(opts.backupTo ? {to: opts.backupTo} : {}), ...(opts.keyFile ? {keyFile: opts.keyFile} : {}), lockHeld: true, io})
          backupId = set.id
          record({hop, phase: 'backup', id: set.id, ok: true, ms: Date.now() - b, detail: `at the stop ${from.config.release}`})
        }
        const snapshot = await snapshotPackages(from, conns)
        const plan = hopPlan(from, to, await observe(to, conns), 'observed')
        if (plan.blockers.length) {
          record({hop, phase: 'prepare', id: 'plan', ok: false, ms: 0, detail: plan.blockers.join('; ')})
          result.failure = {hop, at: 'plan', error: plan.blockers.join('; ')}
          return i === 0 ? 'refused' : 'rolled-back'
        }
        const progress: HopProgress = {finalized: false, dataTouched: false}
        try {
          await runHop(plan, to, conns, opts, record, progress, hop)
        } catch (e) {
          const error = to.redact((e as Error).message)
          result.failure = {hop, at: result.timeline.at(-1)?.id ?? '?', error}
          io.notify({type: 'warning', message: `upgrade ${hop} failed (${error.split('\n')[0]}); rolling back to ${from.config.release}`})
          result.rollback = await rollbackHop({from, to, conns, snapshot, backupId, progress, opts, record, hop})
          return result.rollback.ok ? 'rolled-back' : 'rollback-failed'
        }
        // The cluster runs this release now: cluster.yaml says so (comments and layout kept).
        const c0 = Date.now()
        setRelease(opts.configFile, to.config.release)
        result.release = to.config.release
        record({hop, phase: 'commit', id: 'cluster.yaml', ok: true, ms: Date.now() - c0, detail: `release: ${to.config.release}`})
        await audit(conns, `imctl upgrade --to ${opts.to}`, to.config.release, 'ok', result.timeline.filter((r) => r.hop === hop))
      }
      return 'upgraded'
    } finally {
      await lock.release()
    }
  } finally {
    await closeAll(conns)
  }
}

async function audit(conns: Map<string, HostConnection>, command: string, release: string, outcome: 'ok' | 'failed', records: PhaseRecord[]): Promise<void> {
  const steps = records.map((r) => `${r.ok ? 'ok' : 'failed'}: ${r.phase} ${r.id}`)
  const entry = auditEntry(command, release, outcome, records.filter((r) => r.ok && r.steps?.length).length, records.filter((r) => !r.ok).length, steps)
  await Promise.allSettled([...conns.values()].map((c) => c.exec(appendAuditCommand(entry))))
}

function measuredDowntime(model: ClusterModel, timeline: PhaseRecord[]): UpgradeResult['downtime'] {
  const out = new Map<ComponentName, number>()
  for (const r of timeline) {
    if (r.phase !== 'unit' || r.interruptedMs === undefined) continue
    const c = r.id.split('@')[0] as ComponentName
    out.set(c, (out.get(c) ?? 0) + r.interruptedMs)
  }
  const rolling = (c: ComponentName) => (c === 'kafka' || c === 'minio') && (model.config.components[c]?.hosts.length ?? 0) >= 3
  return [...out].map(([component, totalMs]) => ({component, totalMs, rolling: rolling(component)}))
}

async function preflight(model: ClusterModel, conns: Map<string, HostConnection>): Promise<PreflightCheck[]> {
  const checks: PreflightCheck[] = []
  const plan = planFor(model, await observe(model, conns), false)
  checks.push({
    check: `converged on ${model.config.release}`,
    ok: !plan.steps.length && !plan.blockers.length,
    detail: plan.blockers.length ? plan.blockers.join('; ') : plan.steps.length ? `${plan.steps.length} changes pending (${plan.steps.slice(0, 3).map((s) => `${s.host}: ${s.what}`).join('; ')}); run \`imctl install\` first` : 'imctl plan: 0 changes',
  })
  const health = classifyHealth(await runHealthChecks(model, conns, 20))
  const failing = health.checks.filter((c) => !c.ok || c.degraded)
  checks.push({check: 'health is green', ok: health.status === 'healthy', detail: failing.length ? failing.map((c) => `${c.host} ${c.component} ${c.check}: ${c.detail}`).join('; ') : `${health.checks.length} checks passed`})
  const pgHost = model.config.components.postgresql.host
  await Promise.all(
    usedHosts(model).map(async (h) => {
      const c = conns.get(h.name)!
      const free = parseDiskFree((await c.exec(diskFreeQuery(['/var', '/opt']))).stdout)
      const db = h.name === pgHost ? Number((await c.exec(pgDatabaseSizeQuery('ejabberd'))).stdout.trim()) || 0 : 0
      const need = MIN_FREE_BYTES + 2 * db
      const least = Math.min(...Object.values(free))
      const gib = (n: number) => `${(n / 1024 ** 3).toFixed(1)} GiB`
      checks.push({check: `disk space on ${h.name}`, ok: least >= need, detail: `${gib(least)} free under /var and /opt, ${gib(need)} needed${db ? ` (1 GiB + twice the database's ${gib(db)})` : ''}`})
    }),
  )
  return checks
}

/** The newest complete set of this release within the age limit that verifies; else a new one. */
async function backupForUpgrade(model: ClusterModel, opts: UpgradeOptions, io: IoHost): Promise<NonNullable<UpgradeResult['backup']>> {
  const maxAge = opts.backupMaxAgeMs ?? DEFAULT_BACKUP_MAX_AGE_MS
  const root = backupRoot(model, opts.backupTo)
  const keyFile = opts.keyFile ?? defaultKeyFile(model.config.name)
  const sets = existsSync(root) ? readdirSync(root).sort().reverse() : []
  for (const id of sets) {
    let m: BackupManifest
    try {
      m = JSON.parse(readFileSync(join(root, id, 'manifest.json'), 'utf8')) as BackupManifest
    } catch {
      continue
    }
    const age = Date.now() - Date.parse(m.startedAt)
    if (m.release !== model.config.release || !(age <= maxAge)) continue
    if (!existsSync(keyFile)) break
    const v = await verifyBackup({configFile: model.config.file, id, to: opts.backupTo, keyFile})
    if (v.ok) return {id, startedAt: m.startedAt, ageSeconds: Math.round(age / 1000), taken: false, dir: join(root, id)}
    io.notify({type: 'warning', message: `backup set ${id} does not verify (${v.problems.map((p) => `${p.artifact}: ${p.problem}`).join('; ')}); taking a new one`})
  }
  const set = await createBackup({configFile: model.config.file, ...(opts.backupTo ? {to: opts.backupTo} : {}), keyFile, lockHeld: true, acceptNewHostKeys: opts.acceptNewHostKeys ?? false, io})
  const v = await verifyBackup({configFile: model.config.file, id: set.id, to: opts.backupTo, keyFile})
  if (!v.ok) throw new UserError(`the backup taken before the upgrade does not verify: ${v.problems.map((p) => `${p.artifact}: ${p.problem}`).join('; ')}`, ['Nothing was changed. Check the disk that holds the backups, then run the upgrade again.'])
  return {id: set.id, startedAt: set.startedAt, ageSeconds: 0, taken: true, dir: set.dir}
}

async function snapshotPackages(model: ClusterModel, conns: Map<string, HostConnection>): Promise<Record<string, Record<string, string>>> {
  const hosts = usedHosts(model)
  return Object.fromEntries(await Promise.all(hosts.map(async (h) => [h.name, parsePackageSnapshot((await conns.get(h.name)!.exec(packageSnapshotQuery())).stdout)] as const)))
}

/** Artifacts from imctl's cache, for the release being moved to. */
function artifactSource(model: ClusterModel, io: IoHost): (name: string, version: string) => Promise<{dir: string}> {
  const pending = new Map<string, Promise<{dir: string}>>()
  return (name, version) => {
    let p = pending.get(name)
    if (!p) {
      p = ensureArtifact(model.manifest, name, io).then((a) => {
        if (a.version !== version) throw new Error(`bug: the plan wants ${name} ${version}, release ${model.config.release} has ${a.version}`)
        return a
      })
      pending.set(name, p)
    }
    return p
  }
}

/** Runs steps as one small plan (lanes per host in parallel); throws naming the first failed step. */
async function runSteps(steps: Step[], conns: Map<string, HostConnection>, model: ClusterModel, io: IoHost): Promise<StepOutcome[]> {
  if (!steps.length) return []
  const r = await applyPlan({steps, unchanged: 0, blockers: []}, conns, {...io, notify: (e) => (e.type === 'warning' || e.type === 'info' ? io.notify(e) : undefined)}, {artifactSource: artifactSource(model, io)})
  const failed = r.outcomes.find((o) => o.status === 'failed')
  if (failed || r.skipped) {
    const e = new Error(failed ? `${failed.host}: ${failed.what}: ${failed.error}` : 'a step was skipped') as Error & {outcomes?: StepOutcome[]}
    e.outcomes = r.outcomes
    throw e
  }
  return r.outcomes
}

/** Health must be green: retried a few times (a restarted service needs a moment), bounded. */
async function healthGate(model: ClusterModel, conns: Map<string, HostConnection>, attempts = 8): Promise<{ok: boolean; detail: string; checks: HealthCheck[]}> {
  let last: ReturnType<typeof classifyHealth> = {status: 'unhealthy', checks: []}
  for (let i = 0; i < attempts; i++) {
    last = classifyHealth(await runHealthChecks(model, conns, 20))
    if (last.status === 'healthy') return {ok: true, detail: `${last.checks.length} checks passed`, checks: last.checks}
    await new Promise((r) => setTimeout(r, 5000))
  }
  const bad = last.checks.filter((c) => !c.ok || c.degraded)
  return {ok: false, detail: `${last.status}: ${bad.map((c) => `${c.host} ${c.component} ${c.check}: ${c.detail}`).join('; ')}`, checks: last.checks}
}

function injected(opts: UpgradeOptions, ids: string[]): void {
  if (opts.failAfter && ids.includes(opts.failAfter)) throw new InjectedFailure(`failure injected after ${opts.failAfter} (IMCTL_TEST_UPGRADE_FAIL_AFTER)`)
}

/** Kafka's quorum leader last: each restart then moves leadership once at most. */
async function kafkaUnitsLeaderLast(units: UnitPlan[], model: ClusterModel, conns: Map<string, HostConnection>): Promise<UnitPlan[]> {
  const kafka = units.filter((u) => u.component === 'kafka')
  if (kafka.length < 2 || !model.config.components.kafka) return units
  try {
    const {quorumStatusQuery, parseQuorumStatus} = await import('../../components/kafka/health.js')
    const nodes = kafkaNodes(model.config)
    const first = nodes[0]!
    const s = parseQuorumStatus((await conns.get(first.host)!.exec(quorumStatusQuery(kafkaHome(model.manifest.artifacts!.kafka!.version), first.address, model.config.components.kafka.controllerPort))).stdout)
    const leader = nodes.find((n) => n.nodeId === s.leaderId)?.host
    const ordered = [...kafka.filter((u) => u.host !== leader), ...kafka.filter((u) => u.host === leader)]
    let k = 0
    return units.map((u) => (u.component === 'kafka' ? ordered[k++]! : u))
  } catch {
    return units // the old version's tools may differ: node order then
  }
}

async function runUnits(
  units: UnitPlan[],
  model: ClusterModel,
  conns: Map<string, HostConnection>,
  opts: UpgradeOptions,
  record: (r: PhaseRecord) => void,
  hop: string,
  strict: boolean,
  progress?: HopProgress,
): Promise<void> {
  const kafkaTimeout = 300_000
  for (const u of await kafkaUnitsLeaderLast(units, model, conns)) {
    if (progress && STORES.includes(u.component)) progress.dataTouched = true
    if (u.component === 'kafka') {
      // Never stop a node while a partition lacks an in-sync replica: that one would go offline.
      const g = Date.now()
      try {
        const isr = await waitForFullIsr(model, conns, kafkaTimeout)
        record({hop, phase: 'gate', id: `kafka isr before ${u.id}`, ok: true, ms: Date.now() - g, detail: `${isr.partitions} partitions, every ISR full`})
      } catch (e) {
        record({hop, phase: 'gate', id: `kafka isr before ${u.id}`, ok: false, ms: Date.now() - g, detail: (e as Error).message})
        if (strict) throw e
      }
    }
    const t = Date.now()
    let outcomes: StepOutcome[] = []
    try {
      outcomes = await runSteps(u.steps, conns, model, opts.io)
    } catch (e) {
      outcomes = (e as {outcomes?: StepOutcome[]}).outcomes ?? []
      record({hop, phase: 'unit', id: u.id, ok: false, ms: Date.now() - t, detail: (e as Error).message, steps: outcomes})
      if (strict) throw e
      continue
    }
    const interruptedMs = outcomes.filter((o) => {
      const s = u.steps.find((x) => x.id === o.id)
      return s && (s.action === 'upgrade' || s.action === 'restart' || s.action === 'start')
    }).reduce((n, o) => n + o.ms, 0)
    record({hop, phase: 'unit', id: u.id, ok: true, ms: Date.now() - t, detail: `${outcomes.length} steps${u.restarts.length ? `, restarted ${u.restarts.join(', ')}` : ''}`, steps: outcomes, interruptedMs})
    if (strict) injected(opts, [u.id, ...u.steps.map((s) => s.id)])
    if (u.component === 'kafka') {
      const g = Date.now()
      try {
        const isr = await waitForFullIsr(model, conns, kafkaTimeout)
        record({hop, phase: 'gate', id: `kafka isr after ${u.id}`, ok: true, ms: Date.now() - g, detail: `${isr.partitions} partitions, every ISR full`})
      } catch (e) {
        record({hop, phase: 'gate', id: `kafka isr after ${u.id}`, ok: false, ms: Date.now() - g, detail: (e as Error).message})
        if (strict) throw e
      }
    }
    const h = Date.now()
    const gate = await healthGate(model, conns)
    record({hop, phase: 'health', id: `after ${u.id}`, ok: gate.ok, ms: Date.now() - h, detail: gate.detail})
    if (!gate.ok && strict) throw new Error(`health after ${u.id}: ${gate.detail}`)
  }
}

async function runHop(plan: HopPlan, to: ClusterModel, conns: Map<string, HostConnection>, opts: UpgradeOptions, record: (r: PhaseRecord) => void, progress: HopProgress, hop: string): Promise<void> {
  const io = opts.io
  const p = Date.now()
  try {
    const outcomes = await runSteps(plan.prepare, conns, to, io)
    record({hop, phase: 'prepare', id: 'sources and artifacts', ok: true, ms: Date.now() - p, detail: `${outcomes.length} steps, nothing interrupted`, steps: outcomes})
  } catch (e) {
    record({hop, phase: 'prepare', id: 'sources and artifacts', ok: false, ms: Date.now() - p, detail: (e as Error).message, steps: (e as {outcomes?: StepOutcome[]}).outcomes ?? []})
    throw e
  }
  injected(opts, ['prepare', ...plan.prepare.map((s) => s.id)])
  await runUnits(plan.units, to, conns, opts, record, hop, true, progress)

  for (const m of plan.migrations) {
    const t = Date.now()
    progress.dataTouched = true
    try {
      const detail = await runMigration(m, to, conns)
      record({hop, phase: 'migration', id: m.id, ok: true, ms: Date.now() - t, detail})
    } catch (e) {
      record({hop, phase: 'migration', id: m.id, ok: false, ms: Date.now() - t, detail: (e as Error).message})
      throw e
    }
    injected(opts, [m.id])
  }

  for (const f of plan.finalize) {
    const t = Date.now()
    injected(opts, ['before-finalize'])
    try {
      const detail = await raiseKafkaFeatures(to, conns, f.releaseVersion)
      progress.finalized = true
      record({hop, phase: 'finalize', id: f.kind, ok: true, ms: Date.now() - t, detail})
    } catch (e) {
      record({hop, phase: 'finalize', id: f.kind, ok: false, ms: Date.now() - t, detail: (e as Error).message})
      throw e
    }
    injected(opts, ['finalize'])
  }

  const h = Date.now()
  const gate = await healthGate(to, conns)
  record({hop, phase: 'health', id: 'end of hop', ok: gate.ok, ms: Date.now() - h, detail: gate.detail})
  if (!gate.ok) throw new Error(`health at the end of ${hop}: ${gate.detail}`)
}

async function runMigration(m: Migration, model: ClusterModel, conns: Map<string, HostConnection>): Promise<string> {
  const c = model.config.components
  const pg = conns.get(c.postgresql.host)!
  if (m.run.type === 'command') {
    const host = component(m.component as ComponentName).hosts(model.config)[0]!
    await conns.get(host)!.exec({argv: m.run.argv, root: true, description: `migration ${m.id}`})
  }
  const deadline = Date.now() + (m.timeout ?? 120) * 1000
  let got = ''
  for (;;) {
    got = (await pg.exec(migrationCheck(m))).stdout.trim()
    if (got === m.check.expect) return `${m.what}: check gives ${got}`
    if (Date.now() > deadline) throw new Error(`migration ${m.id} is not done after ${m.timeout ?? 120} s: its check gives ${JSON.stringify(got)}, not ${JSON.stringify(m.check.expect)}`)
    await new Promise((r) => setTimeout(r, 2000))
  }
}

/** FeatureCommand upgrade --release-version on one node, then describe to see metadata.version at that release. */
async function raiseKafkaFeatures(model: ClusterModel, conns: Map<string, HostConnection>, releaseVersion: string): Promise<string> {
  const k = model.config.components.kafka!
  const home = kafkaHome(model.manifest.artifacts!.kafka!.version)
  const first = kafkaNodes(model.config)[0]!
  const conn = conns.get(first.host)!
  const before = parseFeatures((await conn.exec(featureCommand(home, first.address, k.controllerPort, ['describe']))).stdout)
  await conn.exec(featureCommand(home, first.address, k.controllerPort, ['upgrade', '--release-version', releaseVersion]))
  const after = parseFeatures((await conn.exec(featureCommand(home, first.address, k.controllerPort, ['describe']))).stdout)
  const mv = after['metadata.version'] ?? '?'
  if (!mv.startsWith(`${releaseVersion}-`)) throw new Error(`metadata.version is ${mv} after FeatureCommand upgrade --release-version ${releaseVersion}`)
  const changed = Object.keys(after).filter((f) => after[f] !== before[f]).map((f) => `${f} ${before[f] ?? '-'} -> ${after[f]}`)
  return changed.length ? changed.join(', ') : `already at ${mv}`
}

/**
 * Back to the release before the hop: the release's files first (the new server accepts the
 * old configuration; the old one may reject the new), every package whose version changed put
 * back as it was, services restarted one unit at a time, the suite files the old release did not
 * have removed, then the pre-upgrade backup restored when the hop touched a store, then health.
 */
async function rollbackHop(input: {
  from: ClusterModel
  to: ClusterModel
  conns: Map<string, HostConnection>
  snapshot: Record<string, Record<string, string>>
  backupId: string
  progress: HopProgress
  opts: UpgradeOptions
  record: (r: PhaseRecord) => void
  hop: string
}): Promise<NonNullable<UpgradeResult['rollback']>> {
  const {from, to, conns, snapshot, opts, progress} = input
  const hop = `rollback ${input.hop}`
  const notes: string[] = []
  const packagesLeft: string[] = []
  let ok = true
  const record = (r: PhaseRecord) => {
    if (!r.ok) ok = false
    input.record(r)
  }

  // What to put back, per host: every package whose version moved (dependencies too), not only the release's.
  const now = await snapshotPackages(from, conns)
  const restoreOn = new Map<string, {name: string; version: string}[]>()
  for (const [host, before] of Object.entries(snapshot)) {
    const d = packageChanges(before, now[host] ?? {})
    if (d.restore.length) restoreOn.set(host, d.restore)
    packagesLeft.push(...d.added.map((n) => `${host}: ${n} ${now[host]![n]} (installed by the upgrade, left in place)`))
  }
  const back = hopPlan(to, from, await observe(from, conns), 'observed')
  const units = back.units
    .filter((u) => !(progress.finalized && u.component === 'kafka'))
    .map((u): UnitPlan => ({
      ...u,
      // The old release's pin may match newer dependencies than were installed: put back the exact versions.
      steps: u.steps.flatMap((s): Step[] => {
        if (s.action !== 'upgrade') return [s]
        const pkgs = restoreOn.get(u.host)
        restoreOn.delete(u.host)
        return pkgs ? [{...s, what: `put back ${pkgs.length} packages as before the upgrade`, run: {type: 'exec', commands: [restorePackages(pkgs)]}}] : []
      }),
    }))
  if (progress.finalized) notes.push('Kafka stays on the new version: its features were raised (one-way) before the failure')
  // Hosts with changed packages but no unit that upgrades them (e.g. only dependencies moved).
  for (const [host, pkgs] of restoreOn) {
    const c = componentOrder().find((x) => from.config.components[x] && component(x).hosts(from.config).includes(host)) ?? 'postgresql'
    const step: Step = {id: `${host}:packages:rollback`, host, component: c, after: [], action: 'upgrade', what: `put back ${pkgs.length} packages as before the upgrade`, why: 'changed by the failed upgrade', run: {type: 'exec', commands: [restorePackages(pkgs)]}}
    units.unshift({id: `${c}@${host}`, component: c, host, restarts: [], estimateSeconds: 0, steps: [step]})
  }
  // What the old release needs back that interrupts nothing (its artifacts, should they be gone), then the units.
  if (back.prepare.length) {
    const t = Date.now()
    try {
      const outcomes = await runSteps(back.prepare, conns, from, opts.io)
      record({hop, phase: 'prepare', id: 'sources and artifacts', ok: true, ms: Date.now() - t, detail: `${outcomes.length} steps`, steps: outcomes})
    } catch (e) {
      record({hop, phase: 'prepare', id: 'sources and artifacts', ok: false, ms: Date.now() - t, detail: (e as Error).message})
    }
  }
  await runUnits(units, from, conns, opts, record, hop, false)

  // Suite files of the new release that the old one does not have.
  const keep = new Set(from.resources.flatMap((r) => (r.kind === 'file' ? [`${r.host}:${r.path}`] : [])))
  const extra = new Map<string, string[]>()
  for (const r of to.resources) if (r.kind === 'file' && r.aptSource && !keep.has(`${r.host}:${r.path}`)) extra.set(r.host, [...(extra.get(r.host) ?? []), r.path])
  for (const [host, paths] of extra) {
    const t = Date.now()
    try {
      for (const c of removeAptFiles(paths)) await conns.get(host)!.exec(c)
      record({hop, phase: 'rollback', id: `apt sources@${host}`, ok: true, ms: Date.now() - t, detail: `removed ${paths.join(', ')}`})
    } catch (e) {
      record({hop, phase: 'rollback', id: `apt sources@${host}`, ok: false, ms: Date.now() - t, detail: (e as Error).message})
    }
  }

  let restored: string | undefined
  const keptAside: string[] = []
  if (progress.dataTouched) {
    const t = Date.now()
    try {
      const r = await restoreBackup({configFile: opts.configFile, id: input.backupId, ...(opts.backupTo ? {to: opts.backupTo} : {}), ...(opts.keyFile ? {keyFile: opts.keyFile} : {}), lockHeld: true, io: opts.io})
      restored = r.id
      keptAside.push(...r.keptAside)
      record({hop, phase: 'rollback', id: `restore ${r.id}`, ok: r.healthy, ms: Date.now() - t, detail: `${r.steps.length} steps; kept aside: ${r.keptAside.join('; ')}`})
    } catch (e) {
      record({hop, phase: 'rollback', id: `restore ${input.backupId}`, ok: false, ms: Date.now() - t, detail: from.redact((e as Error).message)})
    }
  }

  const h = Date.now()
  const gate = await healthGate(from, conns)
  record({hop, phase: 'health', id: 'after rollback', ok: gate.ok, ms: Date.now() - h, detail: gate.detail})
  await audit(conns, `imctl upgrade --to ${opts.to} (rolled back)`, from.config.release, 'failed', [])
  return {ok, ...(restored ? {restored} : {}), keptAside, packagesLeft, health: gate.checks, notes}
}
