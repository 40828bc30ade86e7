import {EjabberdApiError, openEjabberdApi} from '../components/ejabberd/api.js'
import type {ComponentName} from '../config/model.js'
import type {IoHost} from '../io.js'
import {EngineConnection} from '../transport/engine.js'
import type {HostConnection} from '../transport/types.js'
import type {Plan, Step} from './planner.js'

export interface StepOutcome {
  id: string
  host: string
  component: ComponentName
  what: string
  status: 'changed' | 'failed' | 'skipped'
  error?: string
}

export interface ApplyResult {
  outcomes: StepOutcome[]
  changed: number
  failed: number
  skipped: number
  /** Hosts on which at least one step ran (for the audit log). */
  touched: string[]
}

/**
 * Applies a plan: one lane per host, lanes in parallel, steps in a lane in order.
 * A step that needs another component waits until all of that component's steps
 * are done; after a failure a lane stops, and steps that needed it are skipped.
 */
export async function applyPlan(plan: Plan, conns: Map<string, HostConnection>, io: IoHost): Promise<ApplyResult> {
  const remaining = new Map<ComponentName, number>()
  for (const s of plan.steps) remaining.set(s.component, (remaining.get(s.component) ?? 0) + 1)
  const settle = new Map<ComponentName, (ok: boolean) => void>()
  const done = new Map<ComponentName, Promise<boolean>>()
  const componentOf = (c: ComponentName) => {
    if (!done.has(c)) {
      done.set(c, new Promise<boolean>((resolve) => settle.set(c, resolve)))
      if (!remaining.get(c)) settle.get(c)!(true)
    }
    return done.get(c)!
  }
  const finish = (c: ComponentName, ok: boolean) => {
    componentOf(c)
    if (!ok) return settle.get(c)!(false)
    const left = (remaining.get(c) ?? 1) - 1
    remaining.set(c, left)
    if (left === 0) settle.get(c)!(true)
  }

  const lanes = new Map<string, Step[]>()
  for (const s of plan.steps) lanes.set(s.host, [...(lanes.get(s.host) ?? []), s])
  const outcomes: StepOutcome[] = []
  const touched = new Set<string>()

  await Promise.all(
    [...lanes].map(async ([host, steps]) => {
      io.notify({type: 'host-start', host})
      let stopped: string | undefined
      let changed = 0
      for (const step of steps) {
        const base = {id: step.id, host, component: step.component, what: step.what}
        if (!stopped) {
          for (const dep of step.after) {
            if (!(await componentOf(dep))) {
              stopped = `${dep} did not converge`
              break
            }
          }
        }
        if (stopped) {
          outcomes.push({...base, status: 'skipped', error: stopped})
          io.notify({type: 'step-done', host, stepId: step.id, what: step.what, status: 'skipped', error: stopped})
          finish(step.component, false)
          continue
        }
        io.notify({type: 'step-start', host, stepId: step.id, what: step.what})
        touched.add(host)
        try {
          await runStep(step, conns)
          if (step.run.type === 'pipe') touched.add(step.run.target.host)
          changed++
          outcomes.push({...base, status: 'changed'})
          io.notify({type: 'step-done', host, stepId: step.id, what: step.what, status: 'changed'})
          finish(step.component, true)
        } catch (e) {
          const error = (e as Error).message
          stopped = `an earlier step on ${host} failed`
          outcomes.push({...base, status: 'failed', error})
          io.notify({type: 'step-done', host, stepId: step.id, what: step.what, status: 'failed', error})
          finish(step.component, false)
        }
      }
      io.notify({type: 'host-done', host, status: stopped ? 'failed' : 'ok', changed})
    }),
  )
  const order = new Map(plan.steps.map((s, i) => [s.id, i]))
  outcomes.sort((a, b) => order.get(a.id)! - order.get(b.id)!)
  return {
    outcomes,
    changed: outcomes.filter((o) => o.status === 'changed').length,
    failed: outcomes.filter((o) => o.status === 'failed').length,
    skipped: outcomes.filter((o) => o.status === 'skipped').length,
    touched: [...touched],
  }
}

function conn(conns: Map<string, HostConnection>, host: string): HostConnection {
  const c = conns.get(host)
  if (!c) throw new Error(`bug: no connection to ${host}`)
  return c
}

async function runStep(step: Step, conns: Map<string, HostConnection>): Promise<void> {
  const run = step.run
  switch (run.type) {
    case 'exec':
      for (const cmd of run.commands) await conn(conns, step.host).exec(cmd)
      return
    case 'pipe': {
      const from = conn(conns, run.source.host)
      const content =
        from instanceof EngineConnection
          ? await from.readFile(run.source.component, run.source.path)
          : (await from.execBuffer({argv: ['cat', run.source.path], root: true, description: `read ${run.source.path}`})).stdout
      if (content === null) throw new Error(`${run.source.host}: ${run.source.path} does not exist in the ${run.source.component} container`)
      await conn(conns, run.target.host).exec({...run.target.command, stdin: content})
      return
    }
    case 'engine': {
      const e = conn(conns, step.host)
      if (!(e instanceof EngineConnection)) throw new Error(`bug: engine step on SSH host ${step.host}`)
      const op = run.op
      if (op.op === 'network') return e.ensureNetwork(op.name)
      if (op.op === 'build-image') return e.buildImage(op.tag, op.contextDir, op.contextFiles)
      if (op.op === 'create-container') return e.createContainer(op.spec, op.files, op.replace)
      if (op.op === 'start-container') return e.startContainer(op.name, op.ready)
      return e.removeContainer(op.name, op.purgeVolumes)
    }
    case 'xmpp-account':
      return ensureXmppAccount(conn(conns, step.host), run)
  }
}

async function ensureXmppAccount(c: HostConnection, a: {user: string; domain: string; password: string; apiPort: number}): Promise<void> {
  // ejabberd may still be opening its listeners right after a restart.
  const deadline = Date.now() + 90_000
  for (;;) {
    try {
      const api = await openEjabberdApi(c, a.apiPort)
      try {
        const exists = (await api.call<number>('check_account', {user: a.user, host: a.domain})) === 0
        if (exists) await api.call('change_password', {user: a.user, host: a.domain, newpass: a.password})
        else await api.call('register', {user: a.user, host: a.domain, password: a.password})
        return
      } finally {
        await api.close()
      }
    } catch (e) {
      if (e instanceof EjabberdApiError || Date.now() > deadline) throw e
      await new Promise((r) => setTimeout(r, 1000))
    }
  }
}
