/**
 * Docker mode end to end on this machine's engine (podman's Docker-compatible
 * API): the reference cluster as containers built from Debian's packages, with
 * Kafka (one node) and MinIO (one container, 4 drive volumes) beside it, their
 * images built from the artifact cache (run `imctl artifacts fetch` first).
 * install → health with a delivered message, a Kafka record and an S3 round
 * trip → 0 changes → a config change recreates only the affected container and
 * its data survives (PostgreSQL's rows; Kafka's records and cluster id).
 */
import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {connect} from 'node:net'
import {createServer as createTlsServer} from 'node:tls'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {parse} from 'yaml'
import {imctl, removeEngineCluster, transcript, type CliRun} from './harness.js'

const CLUSTER = 'e2e-eng'
const DRIVES = ['/srv/minio/d1', '/srv/minio/d2', '/srv/minio/d3', '/srv/minio/d4']
const podman = (...args: string[]) => execFileSync('podman', args, {encoding: 'utf8'})
const inContainer = (component: string, script: string, stdin?: string) =>
  execFileSync('podman', ['exec', '-i', `imctl-${CLUSTER}-${component}`, 'sh', '-c', script], {encoding: 'utf8', ...(stdin !== undefined ? {input: stdin} : {})})

/**
 * Health, asked up to 3 more times 5 s apart while it fails: on this 2-core machine a JVM
 * starting (Kafka's, or its quorum tool's) has held PostgreSQL's login past its 10 s timeout
 * once right after an install. A real fault stays failed through the retries.
 */
async function settledHealth(c: string): Promise<CliRun> {
  let h = await imctl(['health', '-c', c, '--json'])
  for (let i = 0; i < 3 && h.exitCode !== 0; i++) {
    const failed = (h.json.result?.checks ?? []).filter((x: {ok: boolean}) => !x.ok).map((x: {check: string; detail: string}) => `${x.check}: ${x.detail}`)
    process.stderr.write(`health failed, asking again in 5 s: ${failed.join('; ') || h.stdout.slice(0, 300)}\n`)
    await new Promise((r) => setTimeout(r, 5000))
    h = await imctl(['health', '-c', c, '--json'])
  }
  return h
}

/** A container's log, both streams (entrypoints write their own lines to stderr). */
const containerLog = (component: string) => {
  const r = spawnSync('podman', ['logs', `imctl-${CLUSTER}-${component}`], {encoding: 'utf8'})
  return r.stdout + r.stderr
}

/** The imctl.health probe records in Kafka's log segment (kafkajs writes them uncompressed). */
const healthRecords = () => inContainer('kafka', 'cat /var/lib/kafka/data/imctl.health-0/*.log').match(/imctl-health-[0-9a-f]{12}/g) ?? []
const kafkaClusterId = () => /^cluster\.id=(.*)$/m.exec(inContainer('kafka', 'cat /var/lib/kafka/data/meta.properties'))?.[1]


describe('Docker mode: the reference cluster as containers on the local engine', {timeout: 1_500_000}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'imctl-e2e-engine-'))
  const c = join(dir, 'cluster.yaml')
  let secrets: string[] = []
  let kafkaSecrets: Record<string, string> = {}

  before(async () => {
    removeEngineCluster(CLUSTER)
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
        '  kafka: {hosts: [local], port: 39092, controllerPort: 39093}',
        `  minio: {hosts: [local], drives: [${DRIVES.join(', ')}], port: 39000, consolePort: 39001}`,
        '',
      ].join('\n'),
    )
    const gen = await imctl(['secrets', 'generate', '-c', c, '--json'])
    assert.equal(gen.exitCode, 0, gen.stdout + gen.stderr)
    const doc = parse(readFileSync(join(dir, `${CLUSTER}.secrets.yaml`), 'utf8')) as Record<string, Record<string, string>>
    secrets = Object.values(doc).flatMap((s) => Object.values(s))
    kafkaSecrets = doc.kafka!
  })

  after(() => removeEngineCluster(CLUSTER))

  it('plans images, containers and their start, touching nothing', async () => {
    const r = await imctl(['plan', '-c', c, '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const whats = r.json.result.steps.map((s: {what: string}) => s.what) as string[]
    assert.ok(whats.includes(`create network imctl-${CLUSTER}`), whats.join('\n'))
    for (const comp of ['postgresql', 'redis', 'ejabberd', 'kafka', 'minio']) {
      // Built now, or already built by an earlier run on this engine.
      const built = podman('images', '--format', '{{.Repository}}').split('\n').includes(`localhost/imctl-${comp}`)
      assert.ok(built || whats.some((w) => w.startsWith(`build image localhost/imctl-${comp}:`)), `${comp}: neither built nor planned`)
      assert.ok(whats.includes(`create container imctl-${CLUSTER}-${comp}`), whats.join('\n'))
      assert.ok(whats.includes(`start container imctl-${CLUSTER}-${comp}`))
    }
    assert.ok(whats.includes(`load /usr/share/ejabberd/sql/pg.new.sql into database ejabberd on local`))
    assert.equal(podman('ps', '-aq', '--filter', `label=io.imctl.component`, '--filter', `label=io.imctl.cluster=${CLUSTER}`).trim(), '')
  })

  it('installs, and health delivers a message, a Kafka record and an S3 object', async () => {
    const r = await imctl(['install', '-c', c, '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.failed, 0)
    const h = await settledHealth(c)
    assert.equal(h.exitCode, 0, h.stdout)
    const ok = (re: RegExp) => h.json.result.checks.find((x: {check: string; ok: boolean}) => re.test(x.check))?.ok
    assert.ok(ok(/message delivery/))
    assert.ok(ok(/record produced \(acks=all\) and consumed on imctl\.health/))
    assert.ok(ok(/controller quorum has a leader/))
    assert.ok(ok(/put, get and delete an object in imctl-health/))
  })

  it('runs Kafka formatted once from a 0600 file, and MinIO on one volume per drive', () => {
    // Kafka: published on the host address, its data in a volume, formatted with the cluster id from the secrets file
    const k = JSON.parse(podman('inspect', `imctl-${CLUSTER}-kafka`))[0]
    assert.deepEqual(k.HostConfig.PortBindings['9092/tcp'], [{HostIp: '127.0.0.1', HostPort: '39092'}])
    assert.deepEqual(k.HostConfig.PortBindings['9093/tcp'], [{HostIp: '127.0.0.1', HostPort: '39093'}])
    assert.ok(k.Mounts.some((m: {Name: string; Destination: string}) => m.Name === `imctl-${CLUSTER}-kafka-data` && m.Destination === '/var/lib/kafka/data'))
    assert.equal(kafkaClusterId(), kafkaSecrets.cluster_id)
    assert.equal(inContainer('kafka', 'stat -c "%U:%G %a" /etc/kafka/imctl-format.args').trim(), 'kafka:kafka 600')
    assert.equal((containerLog('kafka').match(/imctl-entrypoint: formatting the storage/g) ?? []).length, 1)
    // No password in any process's argv
    const argv = inContainer('kafka', 'ps -eo args') + inContainer('minio', 'ps -eo args')
    for (const v of secrets) assert.ok(!argv.includes(v), 'a secret is in a process\'s argv')
    // MinIO: each drive a volume of its own, all four formatted into one erasure set
    const m = JSON.parse(podman('inspect', `imctl-${CLUSTER}-minio`))[0]
    assert.deepEqual(
      DRIVES.map((d) => m.Mounts.find((x: {Destination: string}) => x.Destination === d)?.Name),
      DRIVES.map((_, i) => `imctl-${CLUSTER}-minio-data${i + 1}`),
    )
    assert.equal(inContainer('minio', `for d in ${DRIVES.join(' ')}; do test -s $d/.minio.sys/format.json && echo ok; done`).trim().split('\n').length, 4)
    assert.deepEqual(m.HostConfig.PortBindings['9000/tcp'], [{HostIp: '127.0.0.1', HostPort: '39000'}])
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
    const h = await settledHealth(c)
    assert.equal(h.exitCode, 0, h.stdout)
  })

  it('a changed Kafka port recreates only Kafka\'s container, and its records and cluster id survive', async () => {
    // Given the probe records health wrote, and the formatted storage's cluster id
    const before = healthRecords()
    assert.ok(before.length >= 1, 'no imctl.health record in the log segment')
    const kafkaId = JSON.parse(podman('inspect', `imctl-${CLUSTER}-kafka`))[0].Id
    const minioId = JSON.parse(podman('inspect', `imctl-${CLUSTER}-minio`))[0].Id
    // When Kafka's published client port changes
    writeFileSync(c, readFileSync(c, 'utf8').replace('port: 39092', 'port: 39094'))
    const plan = await imctl(['plan', '-c', c, '--json'])
    assert.deepEqual(
      plan.json.result.steps.map((s: {what: string}) => s.what),
      [`recreate container imctl-${CLUSTER}-kafka (its volumes are kept)`, `start container imctl-${CLUSTER}-kafka`],
    )
    const r = await imctl(['install', '-c', c, '--json'])
    assert.equal(r.exitCode, 0, r.stdout)
    // Then Kafka's container is new, MinIO's is not, and the data volume kept everything: never formatted again
    assert.notEqual(JSON.parse(podman('inspect', `imctl-${CLUSTER}-kafka`))[0].Id, kafkaId)
    assert.equal(JSON.parse(podman('inspect', `imctl-${CLUSTER}-minio`))[0].Id, minioId)
    assert.deepEqual(JSON.parse(podman('inspect', `imctl-${CLUSTER}-kafka`))[0].HostConfig.PortBindings['9092/tcp'], [{HostIp: '127.0.0.1', HostPort: '39094'}])
    assert.equal(kafkaClusterId(), kafkaSecrets.cluster_id)
    assert.doesNotMatch(containerLog('kafka'), /formatting the storage/)
    assert.deepEqual(healthRecords().slice(0, before.length), before)
    // And clients told the new port still produce and consume
    const h = await settledHealth(c)
    assert.equal(h.exitCode, 0, h.stdout)
    assert.ok(healthRecords().length > before.length)
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
