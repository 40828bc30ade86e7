/**
 * The full stack from an offline bundle, on three sandbox hosts whose network has
 * no route out: PostgreSQL, Redis, ejabberd, Kafka on all three (KRaft quorum,
 * replication 3) and MinIO erasure-coded over 4 drives (2 hosts x 2 tmpfs drives).
 * Health passes, a re-run changes nothing, a stopped broker leaves the cluster
 * degraded but serving, and starting it again makes it healthy.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {parse} from 'yaml'
import {createSandbox, editConfig, imctl, transcript, type Sandbox} from './harness.js'

const RELEASE = 'ejabberd-23.01-debian12'

describe('full stack from an offline bundle, on hosts with no route out', {timeout: 1_800_000}, () => {
  let sb: Sandbox
  let c: string
  let bundle: string

  before(async () => {
    sb = await createSandbox('e2e-off', 3, ['--offline', '--drives', '/srv/minio/d1,/srv/minio/d2'])
    c = sb.config
    bundle = join(sb.dir, `${RELEASE}.bundle`)
    editConfig(c, (t) => `${t}  kafka:\n    hosts: [h1, h2, h3]\n  minio:\n    hosts: [h2, h3]\n    drives: [/srv/minio/d1, /srv/minio/d2]\n    buckets: [chat-media]\n`)
    const gen = await imctl(['secrets', 'generate', '-c', c, '--json'])
    assert.equal(gen.exitCode, 0, gen.stdout + gen.stderr)
  })

  after(async () => {
    await sb?.destroy()
  })

  it('bundle create carries the packages with their dependencies, the Kafka jars and the MinIO binaries', async () => {
    // SSH hosts only here: the saved container images (1.2 GiB) would only add time.
    const r = await imctl(['bundle', 'create', '--release', RELEASE, '--out', bundle, '--no-images', '--json'], {timeoutMs: 1_200_000})
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const groups = JSON.stringify(r.json.result)
    for (const g of ['debs', 'artifacts/kafka-4.4.0', 'artifacts/minio-']) assert.ok(groups.includes(g), `${g} missing from ${groups.slice(0, 400)}`)
    const v = await imctl(['bundle', 'verify', bundle, '--json'])
    assert.equal(v.exitCode, 0, v.stdout + v.stderr)
  })

  it('the hosts reach no network outside the cluster', () => {
    // Given the sandbox on an internal network, Then apt cannot reach Debian's mirror
    const out = sb.onHost('h1', 'apt-get update -q -o Acquire::Retries=0 -o Acquire::http::Timeout=5 2>&1; echo "exit=$?"')
    assert.match(out, /Release file|Could not resolve|Failed to fetch|Temporary failure/, out)
  })

  it('install --bundle installs everything from the bundle', async () => {
    const r = await imctl(['install', '-c', c, '--bundle', bundle, '--accept-new-host-keys', '--json'], {timeoutMs: 900_000})
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const whats: string[] = r.json.result.steps.map((s: {host: string; what: string}) => `${s.host}: ${s.what}`)
    for (const h of ['h1', 'h2', 'h3']) {
      assert.ok(whats.some((w) => w.startsWith(`${h}: upload debs `)), `${h} gets the bundle's repository`)
      assert.ok(whats.includes(`${h}: upload kafka 4.4.0 (92 files) to /opt/imctl/kafka-4.4.0`), whats.join('\n'))
    }
    assert.ok(whats.some((w) => /^h1: install .*postgresql-15.* from the bundle$/.test(w)), whats.join('\n'))
    assert.equal(r.json.result.failed, 0)
    assert.equal(r.json.result.skipped, 0)
    // Every JVM and MinIO process got its secrets from files, never from argv.
    for (const h of ['h1', 'h2', 'h3']) assert.equal(sb.onHost(h, 'ps -eo args | grep -c -i "[p]assword=" || true').trim(), '0')
  })

  it('health passes for every component', async () => {
    const r = await imctl(['health', '-c', c, '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.status, 'healthy')
    const checks: {component: string; check: string}[] = r.json.result.checks
    const names = checks.map((x) => `${x.component}: ${x.check}`)
    for (const n of [1, 2, 3]) assert.ok(names.includes(`kafka: broker ${n} registered`), names.join('\n'))
    assert.ok(names.includes('kafka: controller quorum has a leader'))
    assert.ok(names.some((x) => x.startsWith('kafka: record produced (acks=all) and consumed')))
    assert.ok(checks.some((x) => x.component === 'minio'), names.join('\n'))
    assert.ok(checks.some((x) => x.component === 'ejabberd' && /message delivery/.test(x.check)))
  })

  it('a second install changes nothing, and the Kafka storage keeps its identity', async () => {
    const before = sb.onHost('h2', 'cat /var/lib/kafka/data/meta.properties')
    const r = await imctl(['install', '-c', c, '--bundle', bundle, '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.changes, 0, JSON.stringify(r.json.result.steps, null, 1))
    assert.equal(sb.onHost('h2', 'cat /var/lib/kafka/data/meta.properties'), before)
  })

  it('one broker stopped: DEGRADED (exit 5), naming it, and records still go through', async () => {
    sb.onHost('h3', 'systemctl stop imctl-kafka')
    const r = await imctl(['health', '-c', c, '--json'])
    assert.equal(r.exitCode, 5, r.stdout + r.stderr)
    assert.equal(r.json.result.status, 'degraded')
    const checks: {host: string; component: string; check: string; ok: boolean; degraded?: boolean}[] = r.json.result.checks
    const degraded = checks.filter((x) => x.degraded).map((x) => `${x.host} ${x.check}`)
    assert.deepEqual(degraded.sort(), ['h3 broker 3 registered', 'h3 systemd unit imctl-kafka'])
    const probe = checks.find((x) => x.check.startsWith('record produced'))
    assert.equal(probe?.ok, true, JSON.stringify(probe))
  })

  it('install starts it again, and the cluster is healthy', async () => {
    const r = await imctl(['install', '-c', c, '--bundle', bundle, '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.deepEqual(r.json.result.steps.map((s: {host: string; what: string}) => `${s.host}: ${s.what}`), ['h3: start imctl-kafka'])
    const h = await imctl(['health', '-c', c, '--json'])
    assert.equal(h.exitCode, 0, h.stdout + h.stderr)
  })

  it('no secret appears in any output', () => {
    const doc = parse(readFileSync(join(sb.dir, 'e2e-off.secrets.yaml'), 'utf8')) as Record<string, Record<string, string>>
    const secrets = Object.entries(doc).flatMap(([section, s]) => Object.entries(s).filter(([k]) => !(section === 'kafka' && k === 'cluster_id')).map(([, v]) => v))
    assert.equal(secrets.length, 9) // PostgreSQL, Redis, ejabberd: 1 each; Kafka: 2 passwords; MinIO: 4
    const all = transcript.join('\n')
    for (const s of secrets) assert.ok(!all.includes(s), 'a secret leaked into imctl output')
  })
})
