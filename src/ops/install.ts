import {UserError} from '../errors.js'
import type {IoHost} from '../io.js'
import {applyPlan, type StepOutcome} from '../plan/apply.js'
import type {Plan, Step} from '../plan/planner.js'
import {ensureArtifact} from './artifacts.js'
import {openBundle, requireBundledImages, type OpenedBundle} from './bundle/open.js'
import {appendAuditCommand, auditEntry} from './audit.js'
import type {HostConnection} from '../transport/types.js'
import type {PkiOptions} from '../pki/pki.js'
import {closeAll, connectHosts, loadCluster, observeAndPlan, usedHosts, type ClusterModel} from './cluster.js'
import {lockCluster} from './lock.js'

/** A plan step as shown to people and in --json (no stdin, so no secrets). */
export interface StepView {
  id: string
  host: string
  component: string
  action: Step['action']
  what: string
  why: string
  diff?: string
  commands: {description: string; argv: string[]}[]
}

export interface PlanResult {
  cluster: string
  release: string
  hosts: string[]
  changes: number
  unchanged: number
  blockers: string[]
  steps: StepView[]
}

export interface InstallResult extends PlanResult {
  applied: StepOutcome[]
  changed: number
  failed: number
  skipped: number
}

export function viewPlan(model: ClusterModel, plan: Plan, hosts: string[]): PlanResult {
  return {
    cluster: model.config.name,
    release: model.config.release,
    hosts,
    changes: plan.steps.length,
    unchanged: plan.unchanged,
    blockers: plan.blockers,
    steps: plan.steps.map(viewStep),
  }
}

export function viewStep(s: Step): StepView {
  return {
    id: s.id,
    host: s.host,
    component: s.component,
    action: s.action,
    what: s.what,
    why: s.why,
    ...(s.diff ? {diff: s.diff} : {}),
    commands: commandsOf(s),
  }
}

function commandsOf(s: Step): {description: string; argv: string[]}[] {
  const run = s.run
  switch (run.type) {
    case 'exec':
      return run.commands.map((c) => ({description: c.description, argv: c.argv}))
    case 'pipe':
      return [
        {description: `on ${run.source.host}: read ${run.source.path}`, argv: ['cat', run.source.path]},
        {description: `on ${run.target.host}: ${run.target.command.description}`, argv: run.target.command.argv},
      ]
    case 'xmpp-account':
      return [{description: `ejabberd admin API on 127.0.0.1:${run.apiPort}: check_account, then register or change_password`, argv: []}]
    case 'engine':
      return [{description: `engine API: ${run.op.op}`, argv: []}]
    case 'upload':
      return [{description: `upload the files of ${run.name} ${run.version} not yet in ${run.dir}.partial, check all of them against the release's sha256 list, then move it to ${run.dir}`, argv: []}]
  }
}

export interface RunOptions {
  configFile: string
  /** An offline bundle (`imctl bundle create`): hosts get every package and artifact from it, and nothing from any network. */
  bundle?: string
  /** When a container is removed because its component moved away, remove its volumes too. */
  purgeData?: boolean
  acceptNewHostKeys?: boolean
  io: IoHost
  /** How the PKI is read (cert rotate's passes). */
  pki?: PkiOptions
}

/** `imctl plan`: connect, observe read-only, return the steps that would change. */
export async function planService(opts: RunOptions): Promise<PlanResult> {
  const {model} = await loadForRun(opts)
  const hosts = usedHosts(model)
  const conns = await connectHosts(model.config, hosts, opts)
  try {
    const {plan} = await observeAndPlan(model, conns, {purgeData: opts.purgeData ?? false})
    return viewPlan(model, plan, hosts.map((h) => h.name))
  } finally {
    await closeAll(conns)
  }
}

/** A locked cluster with its plan computed: apply it, then close. */
export interface InstallSession {
  plan: PlanResult
  apply(io: IoHost): Promise<InstallResult>
  close(): Promise<void>
}

/** `imctl install`, first half: connect, lock, observe, plan. Nothing changes yet. */
export async function beginInstall(opts: RunOptions & {command?: string}): Promise<InstallSession> {
  const {model, bundle} = await loadForRun(opts)
  const hosts = usedHosts(model)
  const conns = await connectHosts(model.config, hosts, opts)
  let lock: Awaited<ReturnType<typeof lockCluster>> | undefined
  const close = async () => {
    await lock?.release()
    await closeAll(conns)
  }
  try {
    lock = await lockCluster([...conns.values()], opts.command ?? 'imctl install', opts.io)
    const {plan} = await observeAndPlan(model, conns, {purgeData: opts.purgeData ?? false})
    const view = viewPlan(model, plan, hosts.map((h) => h.name))
    if (plan.blockers.length) {
      throw new UserError(`nothing was changed: ${plan.blockers.join('; ')}`, ['Fix what each blocker names, then run install again (for a package version: use a cluster.yaml whose release matches what the hosts run).'])
    }
    return {plan: view, close, apply: (io) => applyInstall(model, plan, view, conns, io, opts.command ?? 'imctl install', bundle)}
  } catch (e) {
    await close()
    throw e
  }
}

async function applyInstall(model: ClusterModel, plan: Plan, view: PlanResult, conns: Map<string, HostConnection>, io: IoHost, command: string, bundle?: OpenedBundle): Promise<InstallResult> {
  if (!plan.steps.length) {
    return {...view, applied: [], changed: 0, failed: 0, skipped: 0}
  }
  const result = await applyPlan(plan, conns, io, {
    artifactSource: bundle ? bundleSource(bundle) : artifactSourceFor(model, io),
    ...(bundle ? {imageSource: async (tag: string) => bundle.images.get(tag)?.file ?? Promise.reject(new Error(`bug: bundle has no image ${tag}`))} : {}),
  })
  const entry = (host: string) =>
    auditEntry(
      command,
      model.config.release,
      result.failed || result.skipped ? 'failed' : 'ok',
      result.outcomes.filter((o) => o.host === host && o.status === 'changed').length,
      result.outcomes.filter((o) => o.host === host && o.status === 'failed').length,
      result.outcomes.filter((o) => o.host === host).map((o) => `${o.status}: ${o.what}`),
    )
  await Promise.allSettled(result.touched.map((h) => conns.get(h)!.exec(appendAuditCommand(entry(h)))))
  return {
    ...view,
    applied: result.outcomes.map((o) => (o.error ? {...o, error: model.redact(o.error)} : o)),
    changed: result.changed,
    failed: result.failed,
    skipped: result.skipped,
  }
}

/** With --bundle: the bundle is verified and extracted before any host is contacted, and must be for the cluster's release. */
async function loadForRun(opts: RunOptions): Promise<{model: ClusterModel; bundle?: OpenedBundle}> {
  if (!opts.bundle) return {model: loadCluster(opts.configFile, opts.pki ? {pki: opts.pki} : {})}
  loadCluster(opts.configFile) // a bad config is reported before a long bundle check
  const bundle = await openBundle(opts.bundle, opts.io)
  const model = loadCluster(opts.configFile, {offline: {id: bundle.sha256.slice(0, 16), debs: bundle.debs.files}})
  if (bundle.release !== model.config.release) {
    throw new UserError(`bundle ${bundle.file} is for release ${bundle.release}, the cluster runs ${model.config.release}`, [
      `Make one for this release: imctl bundle create --release ${model.config.release} --out FILE`,
    ])
  }
  if (bundle.os !== model.manifest.os) throw new UserError(`bundle ${bundle.file} is for ${bundle.os}, release ${model.config.release} is for ${model.manifest.os}`)
  requireBundledImages(bundle, model.resources.flatMap((r) => (r.kind === 'image' ? [{host: r.host, tag: r.tag}] : [])))
  return {model, bundle}
}

/** Files from an extracted bundle: its Debian repository and its artifacts. */
function bundleSource(bundle: OpenedBundle): (name: string, version: string) => Promise<{dir: string}> {
  return async (name, version) => {
    if (name === 'debs') return {dir: bundle.debs.dir}
    const a = bundle.artifacts.get(name)
    if (!a || a.version !== version) {
      throw new UserError(`bundle ${bundle.file} has no ${name} ${version}`, [`Make the bundle again with this imctl: imctl bundle create --release ${bundle.release} --out FILE`])
    }
    return {dir: a.dir}
  }
}

/** Artifacts from imctl's cache, fetched or built once per run however many hosts need them. */
function artifactSourceFor(model: ClusterModel, io: IoHost): (name: string, version: string) => Promise<{dir: string}> {
  const pending = new Map<string, Promise<{dir: string}>>()
  return (name, version) => {
    let p = pending.get(name)
    if (!p) {
      p = ensureArtifact(model.manifest, name, io).then((a) => {
        if (a.version !== version) throw new Error(`bug: plan wants ${name} ${version}, the release has ${a.version}`)
        return a
      })
      pending.set(name, p)
    }
    return p
  }
}

/** `imctl install` in one call (for tests and scripts). */
export async function installService(opts: RunOptions & {command?: string}): Promise<InstallResult> {
  const session = await beginInstall(opts)
  try {
    return await session.apply(opts.io)
  } finally {
    await session.close()
  }
}
