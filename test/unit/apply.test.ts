import assert from 'node:assert/strict'
import {setTimeout as sleep} from 'node:timers/promises'
import {describe, it} from 'node:test'
import type {ComponentName, HostConfig} from '../../src/config/model.js'
import {RemoteError} from '../../src/errors.js'
import type {IoHost, ProgressEvent} from '../../src/io.js'
import {applyPlan} from '../../src/plan/apply.js'
import {loadSchema, type Plan, type Step} from '../../src/plan/planner.js'
import type {ExecResult, RemoteCommand} from '../../src/transport/command.js'
import type {HostConnection, Tunnel} from '../../src/transport/types.js'

interface Behaviour {
  /** Fail (like a non-zero exit) when asked to run the command with this description. */
  failOn?: string
  /** Milliseconds to take for a command, by description. */
  delays?: Record<string, number>
  /** What a command prints, by description. */
  stdout?: Record<string, string>
}

/** A HostConnection that runs nothing: it records what it is asked, in one log shared by all hosts. */
class RecordingConnection implements HostConnection {
  readonly host: HostConfig
  readonly ran: RemoteCommand[] = []

  constructor(
    name: string,
    private readonly log: string[],
    private readonly behaviour: Behaviour = {},
  ) {
    this.host = {name, address: '10.0.0.1', port: 22, user: 'root', sudo: false, auth: {kind: 'agent'}}
  }

  async exec(cmd: RemoteCommand): Promise<ExecResult> {
    const r = await this.execBuffer(cmd)
    return {exitCode: r.exitCode, stdout: r.stdout.toString('utf8'), stderr: r.stderr}
  }

  async execBuffer(cmd: RemoteCommand): Promise<{exitCode: number | null; stdout: Buffer; stderr: string}> {
    const name = this.host.name
    this.ran.push(cmd)
    this.log.push(`${name} start ${cmd.description}`)
    const delay = this.behaviour.delays?.[cmd.description]
    if (delay) await sleep(delay)
    if (this.behaviour.failOn === cmd.description) {
      this.log.push(`${name} fail ${cmd.description}`)
      throw new RemoteError(name, cmd.description, 1, 'boom')
    }
    this.log.push(`${name} end ${cmd.description}`)
    return {exitCode: 0, stdout: Buffer.from(this.behaviour.stdout?.[cmd.description] ?? ''), stderr: ''}
  }

  tunnel(): Promise<Tunnel> {
    throw new Error('no tunnels in unit tests')
  }

  async close(): Promise<void> {}
}

class RecordingIo implements IoHost {
  readonly events: ProgressEvent[] = []
  notify(e: ProgressEvent): void {
    this.events.push(e)
  }
  async confirmHostKey(): Promise<boolean> {
    return false
  }
}

/** A step that runs one command per description, on its host. */
function step(id: string, host: string, component: ComponentName, after: ComponentName[] = []): Step {
  return {id, host, component, action: 'write', what: `do ${id}`, why: 'test', after, run: {type: 'exec', commands: [{argv: ['true', id], description: id}]}}
}

function setup(behaviours: Record<string, Behaviour>) {
  const log: string[] = []
  const conns = new Map<string, RecordingConnection>(Object.entries(behaviours).map(([h, b]) => [h, new RecordingConnection(h, log, b)]))
  return {log, conns, io: new RecordingIo()}
}

function planOf(steps: Step[]): Plan {
  return {steps, unchanged: 0, blockers: []}
}

describe('applyPlan', () => {
  it('runs the lanes of different hosts concurrently and reports outcomes in plan order', async () => {
    // Given a slow step on db1 and an independent fast one on cache1
    const {log, conns, io} = setup({db1: {delays: {a1: 100}}, cache1: {}})
    // When applied
    const result = await applyPlan(planOf([step('a1', 'db1', 'postgresql'), step('b1', 'cache1', 'redis')]), conns, io)
    // Then cache1 did not wait for db1
    assert.deepEqual(log, ['db1 start a1', 'cache1 start b1', 'cache1 end b1', 'db1 end a1'])
    const done = io.events.filter((e) => e.type === 'step-done').map((e) => (e.type === 'step-done' ? e.stepId : ''))
    assert.deepEqual(done, ['b1', 'a1'])
    // And yet the outcomes come back in plan order
    assert.deepEqual(result.outcomes.map((o) => [o.id, o.host, o.status]), [['a1', 'db1', 'changed'], ['b1', 'cache1', 'changed']])
    assert.deepEqual([result.changed, result.failed, result.skipped], [2, 0, 0])
    assert.deepEqual(result.touched.sort(), ['cache1', 'db1'])
  })

  it('runs the steps of one lane one after the other, in order', async () => {
    const {log, conns, io} = setup({db1: {delays: {a1: 30}}})
    await applyPlan(planOf([step('a1', 'db1', 'postgresql'), step('a2', 'db1', 'postgresql'), step('a3', 'db1', 'postgresql')]), conns, io)
    assert.deepEqual(log, ['db1 start a1', 'db1 end a1', 'db1 start a2', 'db1 end a2', 'db1 start a3', 'db1 end a3'])
  })

  it('does not start a step with after: [postgresql] before every postgresql step has finished', async () => {
    // Given two slow postgresql steps on db1, and on im1 one free step and one that needs postgresql
    const {log, conns, io} = setup({db1: {delays: {p1: 30, p2: 30}}, im1: {}})
    const plan = planOf([step('p1', 'db1', 'postgresql'), step('p2', 'db1', 'postgresql'), step('e1', 'im1', 'ejabberd'), step('e2', 'im1', 'ejabberd', ['postgresql'])])
    // When applied
    const result = await applyPlan(plan, conns, io)
    // Then e1 ran at once, and e2 only after p2 ended
    assert.deepEqual(log, ['db1 start p1', 'im1 start e1', 'im1 end e1', 'db1 end p1', 'db1 start p2', 'db1 end p2', 'im1 start e2', 'im1 end e2'])
    assert.deepEqual(result.outcomes.map((o) => o.status), ['changed', 'changed', 'changed', 'changed'])
  })

  it('does not wait for a component that has no steps in the plan', async () => {
    const {log, conns, io} = setup({im1: {}})
    const result = await applyPlan(planOf([step('e1', 'im1', 'ejabberd', ['postgresql', 'redis'])]), conns, io)
    assert.deepEqual(log, ['im1 start e1', 'im1 end e1'])
    assert.equal(result.changed, 1)
  })

  it('stops a lane at a failure and skips the steps that needed the failed component', async () => {
    // Given p1 on db1 fails; im1 has a free step, then one that needs postgresql, then another
    const {log, conns, io} = setup({db1: {failOn: 'p1', delays: {p1: 20}}, cache1: {}, im1: {}})
    const plan = planOf([
      step('p1', 'db1', 'postgresql'),
      step('p2', 'db1', 'postgresql'),
      step('r1', 'cache1', 'redis'),
      step('e1', 'im1', 'ejabberd'),
      step('e2', 'im1', 'ejabberd', ['postgresql']),
      step('e3', 'im1', 'ejabberd'),
    ])
    // When applied
    const result = await applyPlan(plan, conns, io)
    // Then
    assert.deepEqual(
      result.outcomes.map((o) => [o.id, o.status, o.error]),
      [
        ['p1', 'failed', 'db1: p1 failed (exit 1):\n    boom'],
        ['p2', 'skipped', 'an earlier step on db1 failed'],
        ['r1', 'changed', undefined],
        ['e1', 'changed', undefined],
        ['e2', 'skipped', 'postgresql did not converge'],
        ['e3', 'skipped', 'postgresql did not converge'],
      ],
    )
    assert.deepEqual([result.changed, result.failed, result.skipped], [2, 1, 3])
    // Nothing was run for a skipped step
    assert.deepEqual(conns.get('db1')!.ran.map((c) => c.description), ['p1'])
    assert.deepEqual(conns.get('im1')!.ran.map((c) => c.description), ['e1'])
    assert.ok(!log.some((l) => / (p2|e2|e3)$/.test(l)), log.join('\n'))
    const hostDone = io.events.flatMap((e) => (e.type === 'host-done' ? [`${e.host} ${e.status} ${e.changed}`] : [])).sort()
    assert.deepEqual(hostDone, ['cache1 ok 1', 'db1 failed 0', 'im1 failed 1'])
  })

  it('stops at the failing command within a step', async () => {
    const {conns, io} = setup({db1: {failOn: 'second'}})
    const s: Step = {...step('s', 'db1', 'postgresql'), run: {type: 'exec', commands: ['first', 'second', 'third'].map((d) => ({argv: ['true'], description: d}))}}
    const result = await applyPlan(planOf([s]), conns, io)
    assert.equal(result.outcomes[0]!.status, 'failed')
    assert.deepEqual(conns.get('db1')!.ran.map((c) => c.description), ['first', 'second'])
  })

  it('feeds the stdout of a pipe step\'s source to the stdin of its target', async () => {
    // Given im1 holds the schema and db1 runs psql
    const schema = 'CREATE TABLE users (username text PRIMARY KEY);\n'
    const {conns, io} = setup({im1: {stdout: {'read /usr/share/ejabberd/sql/pg.new.sql': schema}}, db1: {}})
    const load = loadSchema('ejabberd', 'ejabberd')
    const pipe: Step = {
      ...step('load', 'im1', 'ejabberd'),
      run: {type: 'pipe', source: {host: 'im1', path: '/usr/share/ejabberd/sql/pg.new.sql', component: 'ejabberd'}, target: {host: 'db1', command: load}},
    }
    // When applied
    const result = await applyPlan(planOf([pipe]), conns, io)
    // Then db1 got the exact bytes im1 printed, with the load command unchanged
    assert.deepEqual(conns.get('im1')!.ran.map((c) => [c.argv, c.root]), [[['cat', '/usr/share/ejabberd/sql/pg.new.sql'], true]])
    const ran = conns.get('db1')!.ran
    assert.equal(ran.length, 1)
    assert.deepEqual(ran[0]!.argv, load.argv)
    assert.equal(ran[0]!.asUser, 'postgres')
    assert.ok(Buffer.isBuffer(ran[0]!.stdin))
    assert.equal((ran[0]!.stdin as Buffer).toString('utf8'), schema)
    assert.deepEqual(result.touched.sort(), ['db1', 'im1'])
  })

  it('tells the io host about each lane and step as it goes', async () => {
    const {conns, io} = setup({db1: {}})
    await applyPlan(planOf([step('a1', 'db1', 'postgresql')]), conns, io)
    assert.deepEqual(io.events, [
      {type: 'host-start', host: 'db1'},
      {type: 'step-start', host: 'db1', stepId: 'a1', what: 'do a1'},
      {type: 'step-done', host: 'db1', stepId: 'a1', what: 'do a1', status: 'changed'},
      {type: 'host-done', host: 'db1', status: 'ok', changed: 1},
    ])
  })
})
