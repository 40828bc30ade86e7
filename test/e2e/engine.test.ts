/**
 * Docker mode end to end on this machine's engine (podman's Docker-compatible
 * API): the reference cluster as containers built from Debian's packages.
 * install → health with a delivered message → 0 changes → a config change
 * recreates only the affected container and its data survives.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {connect} from 'node:net'
import {createServer as createTlsServer} from 'node:tls'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {parse} from 'yaml'
import {imctl, transcript} from './harness.js'

const CLUSTER = 'e2e-eng'
const podman = (...args: string[]) => execFileSync('podman', args, {encoding: 'utf8'})
const inContainer = (component: string, script: string, stdin?: string) =>
  execFileSync('podman', ['exec', '-i', `imctl-${CLUSTER}-${component}`, 'sh', '-c', script], {encoding: 'utf8', ...(stdin !== undefined ? {input: stdin} : {})})

function removeAll(): void {
  const ids = podman('ps', '-aq', '--filter', `label=io.imctl.cluster=${CLUSTER}`).split('\n').filter(Boolean)
  if (ids.length) podman('rm', '-f', ...ids)
  const vols = podman('volume', 'ls', '-q', '--filter', `name=imctl-${CLUSTER}-`).split('\n').filter(Boolean)
  if (vols.length) podman('volume', 'rm', '-f', ...vols)
  if (podman('network', 'ls', '--format', '{{.Name}}').split('\n').includes(`imctl-${CLUSTER}`)) podman('network', 'rm', `imctl-${CLUSTER}`)
}

describe('Docker mode: the reference cluster as containers on the local engine', {timeout: 1_500_000}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'imctl-e2e-engine-'))
  const c = join(dir, 'cluster.yaml')
  let secrets: string[] = []

  before(async () => {
    removeAll()
    // Given one engine host, with non-default published ports bound to loopback only.
    writeFileSync(
      c,
      [
        'apiVersion: imctl/v1',
        `name: ${CLUSTER}`,
        'domain: eng.imctl.test',
        'release: ejabberd-23.01-debian12',
        'hosts:',
        '  - name: local',
        '    address: 127.0.0.1',
        '    engine: {socket: /run/podman/podman.sock}',
        'components:',
        '  postgresql: {host: local, port: 15432}',
        '  redis: {host: local, port: 16379}',
        '  ejabberd: {host: local, ports: {c2s: 15222, http: 15280, mqtt: 11883}}',
        '',
      ].join('\n'),
    )
    const gen = await imctl(['secrets', 'generate', '-c', c, '--json'])
    assert.equal(gen.exitCode, 0, gen.stdout + gen.stderr)
    const doc = parse(readFileSync(join(dir, `${CLUSTER}.secrets.yaml`), 'utf8')) as Record<string, Record<string, string>>
    secrets = Object.values(doc).flatMap((s) => Object.values(s))
  })

  after(() => removeAll())

  it('plans images, containers and their start, touching nothing', async () => {
    const r = await imctl(['plan', '-c', c, '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const whats = r.json.result.steps.map((s: {what: string}) => s.what) as string[]
    assert.ok(whats.includes(`create network imctl-${CLUSTER}`), whats.join('\n'))
    for (const comp of ['postgresql', 'redis', 'ejabberd']) {
      // Built now, or already built by an earlier run on this engine.
      const built = podman('images', '--format', '{{.Repository}}').split('\n').includes(`localhost/imctl-${comp}`)
      assert.ok(built || whats.some((w) => w.startsWith(`build image localhost/imctl-${comp}:`)), `${comp}: neither built nor planned`)
      assert.ok(whats.includes(`create container imctl-${CLUSTER}-${comp}`), whats.join('\n'))
      assert.ok(whats.includes(`start container imctl-${CLUSTER}-${comp}`))
    }
    assert.ok(whats.includes(`load /usr/share/ejabberd/sql/pg.new.sql into database ejabberd on local`))
    assert.equal(podman('ps', '-aq', '--filter', `label=io.imctl.component`, '--filter', `label=io.imctl.cluster=${CLUSTER}`).trim(), '')
  })

  it('installs, and health delivers a message', async () => {
    const r = await imctl(['install', '-c', c, '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.failed, 0)
    const h = await imctl(['health', '-c', c, '--json'])
    assert.equal(h.exitCode, 0, h.stdout)
    assert.ok(h.json.result.checks.find((x: {check: string; ok: boolean}) => /message delivery/.test(x.check))?.ok)
  })

  it('labels containers, binds published ports to the configured address, and keeps data in named volumes', () => {
    const info = JSON.parse(podman('inspect', `imctl-${CLUSTER}-postgresql`))[0]
    assert.equal(info.Config.Labels['io.imctl.cluster'], CLUSTER)
    assert.equal(info.Config.Labels['io.imctl.component'], 'postgresql')
    assert.equal(info.Config.Labels['io.imctl.release'], 'ejabberd-23.01-debian12')
    assert.match(info.Config.Labels['io.imctl.config-hash'], /^[0-9a-f]{16}$/)
    assert.deepEqual(info.HostConfig.PortBindings['5432/tcp'], [{HostIp: '127.0.0.1', HostPort: '15432'}])
    assert.equal(info.HostConfig.RestartPolicy.Name, 'unless-stopped')
    assert.ok(info.Mounts.some((m: {Name: string; Destination: string}) => m.Name === `imctl-${CLUSTER}-postgresql-data` && m.Destination === '/var/lib/postgresql/15/main'))
    // The admin API is not published.
    const ej = JSON.parse(podman('inspect', `imctl-${CLUSTER}-ejabberd`))[0]
    assert.equal(ej.HostConfig.PortBindings['5281/tcp'] ?? null, null)
  })

  it('keeps the audit log and the lock in imctl\'s state container on the engine', () => {
    const lines = podman('exec', `imctl-${CLUSTER}-imctl-state`, 'cat', '/var/log/imctl/audit.log').trim().split('\n').map((l) => JSON.parse(l))
    assert.equal(lines.length, 1)
    assert.equal(lines[0].result, 'ok')
    assert.ok(lines[0].steps.some((x: string) => x === `changed: start container imctl-${CLUSTER}-ejabberd`), JSON.stringify(lines[0].steps))
    // The lock was released at the end of the run.
    assert.equal(podman('exec', `imctl-${CLUSTER}-imctl-state`, 'sh', '-c', 'test -e /var/lib/imctl/lock && echo held || echo free').trim(), 'free')
  })

  it('a second install changes nothing', async () => {
    const r = await imctl(['install', '-c', c, '--json'])
    assert.equal(r.exitCode, 0, r.stdout)
    assert.equal(r.json.result.changes, 0, JSON.stringify(r.json.result.steps))
  })

  it('a config change recreates only the affected container, and its data survives', async () => {
    // Given a user and a Redis key written before the change
    inContainer('ejabberd', 'ejabberdctl register e2e-survivor eng.imctl.test "$(cat)"', 'survivor-password-123')
    const usersBefore = inContainer('postgresql', `runuser -u postgres -- psql -XAt -d ejabberd -c "SELECT count(*) FROM users"`).trim()
    const pgId = JSON.parse(podman('inspect', `imctl-${CLUSTER}-postgresql`))[0].Id
    const redisId = JSON.parse(podman('inspect', `imctl-${CLUSTER}-redis`))[0].Id
    // When PostgreSQL's published port changes
    writeFileSync(c, readFileSync(c, 'utf8').replace('port: 15432', 'port: 15433'))
    const plan = await imctl(['plan', '-c', c, '--json'])
    assert.deepEqual(
      plan.json.result.steps.map((s: {what: string}) => s.what),
      [`recreate container imctl-${CLUSTER}-postgresql (its volumes are kept)`, `start container imctl-${CLUSTER}-postgresql`],
    )
    const r = await imctl(['install', '-c', c, '--json'])
    assert.equal(r.exitCode, 0, r.stdout)
    // Then only PostgreSQL's container is new, and the rows are still there
    assert.notEqual(JSON.parse(podman('inspect', `imctl-${CLUSTER}-postgresql`))[0].Id, pgId)
    assert.equal(JSON.parse(podman('inspect', `imctl-${CLUSTER}-redis`))[0].Id, redisId)
    assert.equal(inContainer('postgresql', `runuser -u postgres -- psql -XAt -d ejabberd -c "SELECT count(*) FROM users WHERE username = 'e2e-survivor'"`).trim(), '1')
    assert.equal(inContainer('postgresql', `runuser -u postgres -- psql -XAt -d ejabberd -c "SELECT count(*) FROM users"`).trim(), usersBefore)
    // ejabberd reconnects to the recreated database within its retry interval (3 s here).
    let h = await imctl(['health', '-c', c, '--json'])
    for (let i = 0; i < 3 && h.exitCode !== 0; i++) {
      await new Promise((r) => setTimeout(r, 5000))
      h = await imctl(['health', '-c', c, '--json'])
    }
    assert.equal(h.exitCode, 0, h.stdout)
  })

  it('shows a container\'s log', async () => {
    const r = await imctl(['logs', 'postgresql', '-c', c, '-n', '20', '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    // ejabberd's own logins are in PostgreSQL's recent log lines.
    assert.ok(r.json.result.lines.some((l: string) => /connection authorized: user=ejabberd database=ejabberd/.test(l)), JSON.stringify(r.json.result.lines))
  })

  it('reaches the same engine over TCP with TLS client certificates, and refuses a wrong CA', async () => {
    // Given a TLS front for the engine's API that demands a client certificate from our CA
    const tls = join(dir, 'tls')
    execFileSync('sh', ['-c', [
      `mkdir -p ${tls} && cd ${tls}`,
      'openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=imctl-e2e-ca -keyout ca.key -out ca.pem',
      'openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr',
      'printf "subjectAltName=IP:127.0.0.1\\n" > san.ext && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem',
      'openssl req -newkey rsa:2048 -nodes -subj /CN=imctl -keyout key.pem -out client.csr',
      'openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out cert.pem',
      'openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other.key -out other.pem',
    ].join(' && ')], {stdio: 'ignore'})
    const open = new Set<import('node:tls').TLSSocket>()
    const front = createTlsServer(
      // Half-open like Docker's own TLS listener: a client's end of stdin must not cut the output.
      {cert: readFileSync(join(tls, 'server.pem')), key: readFileSync(join(tls, 'server.key')), ca: readFileSync(join(tls, 'ca.pem')), requestCert: true, rejectUnauthorized: true, allowHalfOpen: true},
      (client) => {
        open.add(client)
        client.on('close', () => open.delete(client))
        const engine = connect('/run/podman/podman.sock')
        client.pipe(engine).pipe(client)
        client.on('error', () => engine.destroy())
        engine.on('error', () => client.destroy())
      },
    )
    const port = await new Promise<number>((resolve, reject) => {
      front.once('error', reject)
      front.listen(0, '127.0.0.1', () => resolve((front.address() as import('node:net').AddressInfo).port))
    })
    try {
      const original = readFileSync(c, 'utf8')
      writeFileSync(c, original.replace('engine: {socket: /run/podman/podman.sock}', `engine: {tcp: {host: 127.0.0.1, port: ${port}, ca: tls/ca.pem, cert: tls/cert.pem, key: tls/key.pem}}`))
      // When planning through it, Then it sees the same converged containers
      const r = await imctl(['plan', '-c', c, '--json'])
      assert.equal(r.exitCode, 0, r.stdout + r.stderr)
      assert.equal(r.json.result.changes, 0, JSON.stringify(r.json.result.steps))
      // And a server certificate from another CA is refused
      writeFileSync(c, readFileSync(c, 'utf8').replace('ca: tls/ca.pem', 'ca: tls/other.pem'))
      const bad = await imctl(['plan', '-c', c, '--json'])
      assert.equal(bad.exitCode, 2)
      assert.match(bad.json.error!.message, /the container engine does not answer/)
      writeFileSync(c, original)
    } finally {
      // Not awaited: a connection refused mid-handshake can keep close()'s callback from ever firing.
      for (const s of open) s.destroy()
      front.close()
    }
  })

  it('never prints a secret', () => {
    const all = transcript.join('\n') + readFileSync(c, 'utf8')
    for (const s of secrets) assert.ok(!all.includes(s), 'a secret value appeared in imctl output or cluster.yaml')
  })
})
