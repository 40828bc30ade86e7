/** Backup and restore on engine hosts: the exec stream's demultiplexer, and the steps chosen per kind of host. */
import assert from 'node:assert/strict'
import {Readable, Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {describe, it} from 'node:test'
import {localPort, managedFile, onStore, REDIS_STAGED, redisKeepAside, redisPutSteps, runStoreStep, serviceStep} from '../../src/ops/backup/store-host.js'
import type {ClusterModel} from '../../src/ops/cluster.js'
import type {RemoteCommand} from '../../src/transport/command.js'
import {ExecDemux, execFrame, logText} from '../../src/transport/engine-stream.js'
import type {HostConnection} from '../../src/transport/types.js'
import {configFrom, ONE_HOST_YAML, RELEASE, resourcesFor} from './helpers.js'

const ENGINE_YAML = `apiVersion: imctl/v1
name: dock
domain: dock.example.org
release: ${RELEASE}
hosts:
  - name: local
    address: 127.0.0.1
    engine: {socket: /run/podman/podman.sock}
components:
  postgresql: {host: local, port: 15432}
  redis: {host: local, port: 16379}
  ejabberd: {host: local}
`

const modelOf = (yaml: string) => ({config: configFrom(yaml), resources: resourcesFor(yaml)}) as unknown as ClusterModel

/** Feeds `input` in chunks of `size` bytes and collects what comes out. */
async function demux(input: Buffer, size: number, finish?: (stderr: string) => Promise<void>): Promise<{out: Buffer; demux: ExecDemux}> {
  const chunks: Buffer[] = []
  for (let i = 0; i < input.length; i += size) chunks.push(input.subarray(i, i + size))
  const d = new ExecDemux(finish)
  const out: Buffer[] = []
  await pipeline(Readable.from(chunks), d, new Writable({write: (c, _e, cb) => (out.push(c), cb())}))
  return {out: Buffer.concat(out), demux: d}
}

describe('ExecDemux: an engine exec\'s multiplexed stream, split as it arrives', () => {
  const input = Buffer.concat([execFrame(1, 'PGDMP'), execFrame(2, 'warning: one\n'), execFrame(1, Buffer.alloc(70_000, 7)), execFrame(1, ''), execFrame(2, 'warning: two\n'), execFrame(1, 'end')])
  const expected = Buffer.concat([Buffer.from('PGDMP'), Buffer.alloc(70_000, 7), Buffer.from('end')])

  it('passes stdout on and keeps stderr, however the bytes are cut into chunks', async () => {
    for (const size of [1, 3, 7, 8, 9, 4096, input.length]) {
      const {out, demux: d} = await demux(input, size)
      assert.ok(out.equals(expected), `chunks of ${size}`)
      assert.equal(d.stderr, 'warning: one\nwarning: two\n')
    }
  })

  it('ends in the error `finish` raises (a non-zero exit), with the stderr seen', async () => {
    let seen = ''
    await assert.rejects(
      demux(input, 100, async (stderr) => {
        seen = stderr
        throw new Error('exit 1')
      }),
      /exit 1/,
    )
    assert.equal(seen, 'warning: one\nwarning: two\n')
  })

  it('refuses a stream cut inside a frame or one that is not multiplexed', async () => {
    await assert.rejects(demux(input.subarray(0, input.length - 2), 50), /ended inside a frame/)
    await assert.rejects(demux(Buffer.from('plain text, no frame headers'), 50), /frame header that is not one/)
  })

  it('keeps only the end of a long stderr', async () => {
    const noise = Buffer.concat(Array.from({length: 100}, (_, i) => execFrame(2, `${String(i).padStart(3, '0')} ${'x'.repeat(2000)}\n`)))
    const {demux: d} = await demux(noise, 65_536)
    assert.ok(d.stderr.length <= 64 * 1024 + 2100, String(d.stderr.length))
    assert.ok(d.stderr.endsWith(`099 ${'x'.repeat(2000)}\n`))
    assert.ok(!d.stderr.includes('000 '))
  })

  it('applies backpressure: without a reader it stops taking input', () => {
    const d = new ExecDemux()
    let accepted = 0
    while (d.write(execFrame(1, Buffer.alloc(16_384))) && accepted < 1000) accepted++
    assert.ok(accepted < 10, `took ${accepted} frames with nobody reading`)
    d.destroy()
  })

  it('logText: a container log as text, with or without frame headers', () => {
    assert.equal(logText(Buffer.concat([execFrame(1, 'a\n'), execFrame(2, 'b\n')])), 'a\nb\n')
    assert.equal(logText(Buffer.from('raw tty text\n')), 'raw tty text\n')
  })
})

describe('store steps per kind of host', () => {
  it('stops and starts a store: systemctl over SSH, its container (waiting until it answers) on an engine', () => {
    assert.deepEqual(serviceStep('ssh', 'dock', 'ejabberd', 'stop'), {do: 'exec', cmd: {argv: ['systemctl', 'stop', 'ejabberd'], root: true, description: 'stop ejabberd'}})
    assert.deepEqual(serviceStep('ssh', 'dock', 'redis', 'start'), {do: 'exec', cmd: {argv: ['systemctl', 'start', 'redis-server'], root: true, description: 'start redis-server'}})
    assert.deepEqual(serviceStep('engine', 'dock', 'ejabberd', 'stop'), {
      do: 'stop-container',
      name: 'imctl-dock-ejabberd',
      ready: {argv: ['/usr/local/bin/imctl-healthcheck'], description: 'wait until ejabberd answers', component: 'ejabberd'},
      description: 'stop container imctl-dock-ejabberd',
    })
    const start = serviceStep('engine', 'dock', 'redis', 'start')
    assert.equal(start.do, 'start-container')
    assert.equal(start.do === 'start-container' && start.ready.component, 'redis')
  })

  it('Redis over SSH: stop, keep aside, write dump.rdb from the set, config with AOF off', () => {
    const conf: RemoteCommand = {argv: ['true'], description: 'write redis.conf with AOF off for the load'}
    const steps = redisPutSteps('ssh', 'dock', 'set1_t', conf)
    assert.deepEqual(
      steps.map((s) => (s.do === 'exec' ? `${s.cmd.description}${s.input ? ' <- set' : ''}` : s.do)),
      ['stop redis-server', 'keep the current Redis data aside', 'write /var/lib/redis/dump.rdb <- set', 'write redis.conf with AOF off for the load'],
    )
    assert.deepEqual(steps[1], {do: 'exec', cmd: redisKeepAside('set1_t')})
  })

  it('Redis on an engine: every write while the container runs, then stop, then the swap on its stopped volume', () => {
    const conf: RemoteCommand = {argv: ['true'], description: 'write redis.conf with AOF off for the load'}
    const steps = redisPutSteps('engine', 'dock', 'set1_t', conf)
    assert.deepEqual(
      steps.map((s) => (s.do === 'exec' ? `${s.cmd.description}${s.input ? ' <- set' : ''}` : s.do === 'on-volumes' ? `on volumes of ${s.component}: ${s.cmd.description}` : `${s.do} ${s.name}`)),
      [
        'start-container imctl-dock-redis',
        'write redis.conf with AOF off for the load',
        `stage the RDB from the set as ${REDIS_STAGED} <- set`,
        'stop-container imctl-dock-redis',
        'on volumes of redis: keep the current Redis data aside and put the restored RDB in place',
      ],
    )
    assert.deepEqual(redisKeepAside('set1_t', REDIS_STAGED).argv, [
      'sh',
      '-c',
      'cd /var/lib/redis && for f in dump.rdb appendonlydir; do if [ -e "$f" ]; then mv "$f" "$f.before-$1"; fi; done && mv "$2" dump.rdb && chown redis:redis dump.rdb',
      'sh',
      'set1_t',
      REDIS_STAGED,
    ])
  })

  it('runs a step on the connection: input streamed as stdin; a container step over SSH is a bug', async () => {
    const seen: RemoteCommand[] = []
    const conn = recording('ssh', seen)
    const body = Readable.from(['rdb'])
    await runStoreStep(conn, {do: 'exec', cmd: {argv: ['cat'], description: 'write'}, input: 'data'}, async () => body)
    assert.equal(seen[0]!.stdinStream, body)
    await assert.rejects(runStoreStep(conn, serviceStep('engine', 'dock', 'redis', 'stop')), /bug: stop-container on SSH host/)
  })

  it('onStore runs every command in the store\'s container unless it names another', async () => {
    const seen: RemoteCommand[] = []
    const pg = onStore(recording('engine', seen), 'postgresql')
    await pg.exec({argv: ['pg_dump', '--version'], description: 'v'})
    await pg.exec({argv: ['x'], description: 'other', component: 'redis'})
    await pg.output!({argv: ['pg_dump'], description: 'dump'})
    assert.deepEqual(seen.map((c) => c.component), ['postgresql', 'redis', 'postgresql'])
    assert.equal(pg.base.kind, 'engine')
  })

  it('finds Redis at its own port where it runs, and its managed config as a host file or a container file', () => {
    const engine = modelOf(ENGINE_YAML)
    const ssh = modelOf(ONE_HOST_YAML)
    assert.equal(localPort(engine, 'engine', 'redis'), 6379)
    assert.equal(localPort(engine, 'ssh', 'redis'), 16379)
    const inContainer = managedFile(engine, 'redis', '/etc/redis/redis.conf')
    const onHost = managedFile(ssh, 'redis', '/etc/redis/redis.conf')
    assert.match(inContainer.content, /^port 6379$/m)
    assert.match(onHost.content, /^appendonly yes$/m)
    assert.throws(() => managedFile(engine, 'redis', '/etc/nothing'), /bug: no managed \/etc\/nothing/)
  })
})

function recording(kind: 'ssh' | 'engine', seen: RemoteCommand[]): HostConnection {
  return {
    kind,
    host: {name: 'h'} as HostConnection['host'],
    exec: async (cmd) => (seen.push(cmd), {exitCode: 0, stdout: '', stderr: ''}),
    execBuffer: async (cmd) => (seen.push(cmd), {exitCode: 0, stdout: Buffer.alloc(0), stderr: ''}),
    output: async (cmd) => (seen.push(cmd), Readable.from([])),
    tunnel: async () => ({port: 1, close: async () => {}}),
    close: async () => {},
  }
}
