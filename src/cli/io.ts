import {confirm} from '@inquirer/prompts'
import {Listr, type ListrTask} from 'listr2'
import type {IoHost, ProgressEvent} from '../io.js'
import type {StepView} from '../ops/install.js'

/** Plain IoHost for the terminal: warnings and infos on stderr; asks for host keys only when a person is there. */
export function terminalIo(opts: {interactive: boolean; quiet: boolean; warn: (m: string) => void}): IoHost {
  // Hosts connect in parallel; their host-key questions are asked one at a time.
  let asking: Promise<unknown> = Promise.resolve()
  return {
    notify(e: ProgressEvent) {
      if (e.type === 'warning') opts.warn(e.message)
      else if (e.type === 'info' && !opts.quiet) process.stderr.write(`${e.message}\n`)
    },
    async confirmHostKey(endpoint, keyType, fp) {
      if (!opts.interactive) return false
      const answer = asking.then(() => confirm({message: `${endpoint} is a new host with key ${keyType} ${fp}. Pin it and continue?`, default: false}))
      asking = answer.catch(() => undefined)
      return answer
    },
  }
}

interface Deferred {
  promise: Promise<{status: string; error?: string}>
  resolve: (v: {status: string; error?: string}) => void
}

/**
 * Shows a plan's steps as listr2 tasks, one group per host, advanced by the
 * core's progress events. Returns the IoHost to hand to the core and the render promise.
 */
export function planProgress(steps: StepView[], base: IoHost, opts: {renderer: 'default' | 'simple' | 'silent'}): {io: IoHost; done: Promise<unknown>} {
  const waits = new Map<string, Deferred>()
  for (const s of steps) {
    let resolve!: Deferred['resolve']
    const promise = new Promise<{status: string; error?: string}>((r) => (resolve = r))
    waits.set(s.id, {promise, resolve})
  }
  const hosts = [...new Set(steps.map((s) => s.host))]
  const tasks: ListrTask[] = hosts.map((host) => ({
    title: host,
    task: (_ctx, task) =>
      task.newListr(
        steps
          .filter((s) => s.host === host)
          .map((s) => ({
            title: `${s.what}`,
            task: async (_c, t) => {
              const r = await waits.get(s.id)!.promise
              if (r.status === 'skipped') t.skip(`${s.what} (skipped: ${r.error})`)
              if (r.status === 'failed') throw new Error(`${s.what}: ${r.error}`)
            },
          })),
        {concurrent: false, exitOnError: true},
      ),
  }))
  const list = new Listr(tasks, {
    concurrent: true,
    exitOnError: false,
    renderer: opts.renderer,
    fallbackRenderer: 'simple',
    rendererOptions: {collapseSubtasks: false},
  })
  const done = list.run().catch(() => undefined)
  // Fault injection for the end-to-end tests: die like `kill -9` right after this step.
  const killAfter = process.env.IMCTL_TEST_KILL_AFTER_STEP
  const io: IoHost = {
    confirmHostKey: base.confirmHostKey,
    notify(e) {
      if (e.type === 'step-done' && e.stepId === killAfter) process.kill(process.pid, 'SIGKILL')
      if (e.type === 'step-done') waits.get(e.stepId)?.resolve({status: e.status, ...(e.error ? {error: e.error} : {})})
      else if (e.type === 'warning' || e.type === 'info') base.notify(e)
    },
  }
  return {io, done}
}
