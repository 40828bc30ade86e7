import {EjabberdApiError, openEjabberdApi} from '../components/ejabberd/api.js'
import type {ComponentName} from '../config/model.js'
import type {IoHost} from '../io.js'
import {EngineConnection} from '../transport/engine.js'
import {artifactContextFiles, type ExtraContextFile} from '../transport/engine-images.js'
import type {HostConnection} from '../transport/types.js'
import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {PassThrough} from 'node:stream'
import * as tar from 'tar-stream'
import {join} from 'node:path'
import {shScript, type RemoteCommand} from '../transport/command.js'
import type {Plan, Step} from './planner.js'
import {artifactSums} from './resources.js'

export interface StepOutcome {
  id: string
  host: string
  component: ComponentName
  what: string
  status: 'changed' | 'failed' | 'skipped'
  error?: string
  /** How long the step ran (0 when skipped). */
  ms: number
}

export interface ApplyResult {
  outcomes: StepOutcome[]
  changed: number
  failed: number
  skipped: number
  /** Hosts on which at least one step ran (for the audit log). */
  touched: string[]
}

export interface ApplyOptions {
  /** Where an artifact's files are on this machine (fetched into the cache, or from a bundle). */
  artifactSource?: (name: string, version: string) => Promise<{dir: string}>
  /** Offline: the saved image (`docker save` tar) an engine loads instead of building it. */
  imageSource?: (tag: string) => Promise<string>
}

/**
 * Applies a plan: one lane per host, lanes in parallel, steps in a lane in order.
 * A step that needs another component waits until all of that component's steps
 * are done; after a failure a lane stops, and steps that needed it are skipped.
 */
export async function applyPlan(plan: Plan, conns: Map<string, HostConnection>, io: IoHost, opts: ApplyOptions = {}): Promise<ApplyResult> {
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

  const loads: ImageLoads = new Map()
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
          outcomes.push({...base, status: 'skipped', error: stopped, ms: 0})
          io.notify({type: 'step-done', host, stepId: step.id, what: step.what, status: 'skipped', error: stopped})
          finish(step.component, false)
          continue
        }
        io.notify({type: 'step-start', host, stepId: step.id, what: step.what})
        touched.add(host)
        const t0 = Date.now()
        try {
          await runStep(step, conns, opts, loads)
          if (step.run.type === 'pipe') touched.add(step.run.target.host)
          changed++
          outcomes.push({...base, status: 'changed', ms: Date.now() - t0})
          io.notify({type: 'step-done', host, stepId: step.id, what: step.what, status: 'changed'})
          finish(step.component, true)
        } catch (e) {
          const error = (e as Error).message
          stopped = `an earlier step on ${host} failed`
          outcomes.push({...base, status: 'failed', error, ms: Date.now() - t0})
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

/** Loads of saved-image files per engine host, so a tar holding several images is loaded once. */
type ImageLoads = Map<string, Promise<void>>

async function runStep(step: Step, conns: Map<string, HostConnection>, opts: ApplyOptions, loads: ImageLoads): Promise<void> {
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
      if (op.op === 'build-image') {
        // An artifact's files join the build context from where install keeps them (imctl's cache).
        const extra: ExtraContextFile[] = []
        for (const a of op.artifacts ?? []) {
          if (!opts.artifactSource) throw new Error(`bug: no artifact source for ${a.name} ${a.version}`)
          extra.push(...artifactContextFiles(a, (await opts.artifactSource(a.name, a.version)).dir))
        }
        return e.buildImage(op.tag, op.contextDir, op.contextFiles, undefined, extra)
      }
      if (op.op === 'load-image') {
        if (!opts.imageSource) throw new Error(`bug: no image source for ${op.tag}`)
        const file = await opts.imageSource(op.tag)
        const key = `${step.host}\0${file}`
        if (!loads.has(key)) loads.set(key, e.loadImages(file))
        await loads.get(key)
        return e.requireImage(op.tag, file)
      }
      if (op.op === 'create-container') return e.createContainer(op.spec, op.files, op.replace)
      if (op.op === 'start-container') return e.startContainer(op.name, op.ready)
      return e.removeContainer(op.name, op.purgeVolumes)
    }
    case 'xmpp-account':
      return ensureXmppAccount(conn(conns, step.host), run)
    case 'upload': {
      if (!opts.artifactSource) throw new Error(`bug: no artifact source for ${run.name} ${run.version}`)
      const local = await opts.artifactSource(run.name, run.version)
      return uploadArtifact(conn(conns, step.host), local.dir, run)
    }
  }
}

/**
 * Resumable: files go to DIR.partial; those already there with the right sha256 are
 * kept. Once all check out, SHA256SUMS is written and DIR.partial replaces DIR.
 */
async function uploadArtifact(c: HostConnection, localDir: string, a: {dir: string; files: {path: string; sha256: string; mode?: string}[]}): Promise<void> {
  const partial = `${a.dir}.partial`
  await c.exec(seedPartial(a.dir))
  const have = await c.exec(hashFiles(partial, a.files.map((f) => f.path)))
  const good = new Set(
    have.stdout
      .split('\n')
      .map((l) => /^([0-9a-f]{64}) {2}(.+)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => `${m[1]}  ${m[2]}`),
  )
  const missing = a.files.filter((f) => !good.has(`${f.sha256}  ${f.path}`))
  // One tar stream for all missing files: one round trip instead of one per file.
  if (missing.length) await c.exec({...extractInto(partial), stdinStream: tarOf(localDir, missing)})
  await c.exec({...finishArtifact(a.dir), stdin: artifactSums(a.files)})
}

/** Packs files (paths relative to `dir`) into a tar stream with their modes, one after the other. */
export function tarOf(dir: string, files: {path: string; mode?: string}[]): NodeJS.ReadableStream {
  const pack = tar.pack()
  void (async () => {
    try {
      for (const f of files) {
        const file = join(dir, f.path)
        const size = (await stat(file)).size
        await new Promise<void>((resolve, reject) => {
          const entry = pack.entry({name: f.path, size, mode: parseInt(f.mode ?? '644', 8), uid: 0, gid: 0}, (err) => (err ? reject(err) : resolve()))
          createReadStream(file).on('error', reject).pipe(entry)
        })
      }
      pack.finalize()
    } catch (e) {
      pack.destroy(e as Error)
    }
  })()
  const out = new PassThrough()
  pack.on('error', (e: Error) => out.destroy(e))
  pack.pipe(out)
  return out
}

/**
 * Unpacks a tar from stdin into `dir`. An existing file is unlinked first, so a hard
 * link seeded from the finished copy is replaced, never written through.
 */
export function extractInto(dir: string): RemoteCommand {
  return {
    argv: shScript('mkdir -p "$1" && tar -C "$1" -xf - --unlink-first --no-same-owner', [dir]),
    root: true,
    description: `unpack the missing files into ${dir}`,
  }
}

/**
 * Starts DIR.partial from the copy already in DIR (hard links, no bytes copied), so a
 * new version of an artifact (a newer bundle) uploads only the files that changed.
 * Files are replaced by rename, never written in place, so DIR itself is not touched.
 */
export function seedPartial(dir: string): RemoteCommand {
  return {
    argv: shScript('p="$1.partial"; if [ ! -d "$p" ] && [ -d "$1" ]; then cp -al "$1" "$p" && rm -f "$p/SHA256SUMS"; fi', [dir]),
    root: true,
    description: `start ${dir}.partial from what ${dir} already holds`,
  }
}

/** sha256 of those of `paths` that exist under `dir` (paths relative to it). */
export function hashFiles(dir: string, paths: string[]): RemoteCommand {
  return {
    argv: shScript('cd "$1" 2>/dev/null || exit 0; shift; for f; do [ -f "$f" ] && sha256sum -- "$f"; done; exit 0', [dir, ...paths]),
    root: true,
    description: `check which files are already in ${dir}`,
  }
}

/** Checks DIR.partial against the sums on stdin, keeps them as its SHA256SUMS, then puts it in place of DIR. */
export function finishArtifact(dir: string): RemoteCommand {
  return {
    argv: shScript('p="$1.partial" && cat > "$p/SHA256SUMS" && chmod 644 "$p/SHA256SUMS" && (cd "$p" && sha256sum -c --quiet --strict SHA256SUMS) && rm -rf "$1" && mv "$p" "$1"', [dir]),
    root: true,
    description: `check every file of ${dir}, then put it in place`,
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
