/**
 * PostgreSQL under Patroni: h1 and h2 run PostgreSQL (Patroni, Debian's packages), etcd runs
 * on h1, h2 and h3, and h3 runs Redis, ejabberd and the HAProxy that sends ejabberd to the
 * current primary. The primary's host is killed (its container, as a power cut): Patroni
 * promotes the replica, ejabberd keeps serving through the proxy, and a message sent after
 * the failover is delivered and archived on the new primary. The host comes back at its
 * address and rejoins as a replica. No Kafka or MinIO artifacts needed.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {parse} from 'yaml'
import {xml} from '@xmpp/client'
import {createSandbox, editConfig, imctl, transcript, type Sandbox} from './harness.js'
import {archive, login, send} from './xmpp.js'

const NAME = 'pt2'
const DOMAIN = `${NAME}.imctl.test`
const podman = (...args: string[]) => execFileSync('podman', args, {encoding: 'utf8'})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Check {
  host: string
  check: string
  ok: boolean
  degraded?: boolean
  detail: string
}

describe('PostgreSQL under Patroni: failover of the primary\'s host', {timeout: 900_000}, () => {
  let sb: Sandbox
  const c = () => sb.config
  const ws = () => `ws://${sb.hosts[2]!.address}:5280/ws`
  const archiveRows = (host: string) => Number(sb.onHost(host, `runuser -u postgres -- psql -XtA -d ejabberd -c "SELECT count(*) FROM archive WHERE username IN ('alice', 'bob')"`).trim())

  /** Runs `imctl health` until `until` holds for its report (bounded), and returns that report. */
  async function healthUntil(until: (r: {exitCode: number | null; status: string; checks: Check[]}) => boolean, seconds: number) {
    const deadline = Date.now() + seconds * 1000
    let last: {exitCode: number | null; status: string; checks: Check[]} | undefined
    while (Date.now() < deadline) {
      const h = await imctl(['health', '-c', c(), '--json'])
      last = {exitCode: h.exitCode, status: h.json.result?.status ?? h.json.error?.message ?? '?', checks: h.json.result?.checks ?? []}
      if (until(last)) return last
      await sleep(5000)
    }
    assert.fail(`health did not reach the expected state in ${seconds} s; last: ${JSON.stringify(last, null, 1)}`)
  }
  const detailOf = (r: {checks: Check[]}, host: string, check: RegExp) => r.checks.find((x) => x.host === host && check.test(x.check))

  /** alice sends bob one message over WebSocket; resolves once bob has received it. */
  async function deliver(body: string): Promise<void> {
    const alice = await login(ws(), DOMAIN, 'alice', 'alice-password-123')
    const bob = await login(ws(), DOMAIN, 'bob', 'bob-password-123')
    try {
      const got = new Promise<void>((resolve) => bob.on('stanza', (st) => st.is('message') && st.getChildText('body') === body && resolve()))
      await bob.send(xml('presence'))
      await send(alice, `bob@${DOMAIN}`, body)
      await Promise.race([got, sleep(20_000).then(() => assert.fail(`bob did not receive "${body}" in 20 s`))])
      await sleep(1000)
      assert.ok((await archive(alice)).includes(body), `"${body}" is not in alice's archive`)
    } finally {
      await alice.stop()
      await bob.stop()
    }
  }

  before(async () => {
    sb = await createSandbox(NAME, 3)
    editConfig(c(), (t) =>
      t
        .replace('postgresql: { host: h1 }', 'postgresql: { hosts: [h1, h2], etcd: [h1, h2, h3] }')
        .replace('redis: { host: h2 }', 'redis: { host: h3 }'),
    )
    const gen = await imctl(['secrets', 'generate', '-c', c(), '--json'])
    assert.equal(gen.exitCode, 0, gen.stdout + gen.stderr)
    // Patroni's passwords were added to the file: they must never show either.
    const doc = parse(readFileSync(join(sb.dir, `${NAME}.secrets.yaml`), 'utf8')) as Record<string, Record<string, string>>
    sb.secrets.push(...Object.values(doc.patroni ?? {}))
    assert.equal(Object.keys(doc.patroni ?? {}).length, 3)
  })

  after(async () => {
    if (process.env.IMCTL_E2E_KEEP) return
    await sb?.destroy()
  })

  it('installs Patroni on h1 and h2, etcd on h1-h3, the proxy on h3; health shows h1 leading and h2 replicating', async () => {
    const r = await imctl(['install', '-c', c(), '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    // ejabberd reaches the primary through its local proxy, never one node directly.
    assert.match(sb.onHost('h3', 'cat /etc/ejabberd/ejabberd.yml'), /sql_server: "127\.0\.0\.1"\nsql_port: 6432\n/)
    assert.match(sb.onHost('h1', 'pg_lsclusters -h'), /^15 main 5432 down /m, 'Debian\'s own cluster is stopped, Patroni runs PostgreSQL')
    assert.equal(sb.onHost('h1', 'stat -c "%U %a" /etc/patroni/config.yml').trim(), 'postgres 600')
    const h = await healthUntil((x) => x.status === 'healthy', 60)
    assert.equal(h.exitCode, 0)
    assert.match(detailOf(h, 'h1', /^Patroni member/)!.detail, /^leader \(primary\)/)
    assert.match(detailOf(h, 'h2', /^Patroni member/)!.detail, /^replica, (running|streaming), lag 0\.0 MB/)
    assert.match(detailOf(h, 'h1,h2,h3', /^etcd quorum/)!.detail, /^3 of 3 members healthy/)
    // Users and a first message, archived on the primary.
    for (const u of ['alice', 'bob']) sb.onHost('h3', `printf %s '${u}-password-123' | (read p; ejabberdctl register ${u} ${DOMAIN} "$p")`)
    await deliver('before the failover')
    assert.equal(archiveRows('h1'), 2, 'a delivered message is archived twice (sender and receiver)')
  })

  it('kills the primary\'s host: Patroni promotes h2, health is DEGRADED, a message after the failover is delivered and archived', async () => {
    const h1 = sb.hosts[0]!
    podman('kill', h1.container)
    const h = await healthUntil((x) => x.status === 'degraded' && /^leader \(primary\)/.test(detailOf(x, 'h2', /^Patroni member/)?.detail ?? ''), 180)
    assert.equal(h.exitCode, 5, 'degraded exits 5')
    const degraded = h.checks.filter((x) => x.degraded).map((x) => `${x.host} ${x.check}`)
    assert.ok(degraded.includes('h1 host answers over SSH'), degraded.join('\n'))
    assert.ok(degraded.includes('h1 Patroni member: role, state, lag'), degraded.join('\n'))
    assert.ok(degraded.includes('h1 etcd member health'), degraded.join('\n'))
    assert.match(detailOf(h, 'h1,h2', /^Patroni cluster/)!.detail, /^leader h2 \(timeline 2\)/)
    assert.ok(h.checks.filter((x) => !x.degraded).every((x) => x.ok), JSON.stringify(h.checks, null, 1))
    await deliver('after the failover')
    assert.equal(archiveRows('h2'), 4, 'both messages are in the archive on the new primary')
  })

  it('the host comes back at its address and rejoins as a replica; health is HEALTHY; a config fix is a reload; install then changes nothing', async () => {
    const h1 = sb.hosts[0]!
    // A restarted container gets a new address unless it is pinned: a server keeps its own.
    podman('network', 'disconnect', `imctl-sbx-${NAME}`, h1.container)
    podman('network', 'connect', '--ip', h1.address, `imctl-sbx-${NAME}`, h1.container)
    podman('start', h1.container)
    // Healthy comes first; the member shows its timeline once it follows the new leader's WAL.
    const rejoined = /^replica, (running|streaming), lag 0\.0 MB, timeline 2/
    const h = await healthUntil((x) => x.status === 'healthy' && rejoined.test(detailOf(x, 'h1', /^Patroni member/)?.detail ?? ''), 180)
    assert.match(detailOf(h, 'h1', /^Patroni member/)!.detail, rejoined)
    assert.match(detailOf(h, 'h2', /^Patroni member/)!.detail, /^leader \(primary\)/)
    assert.equal(archiveRows('h1'), 4, 'the former primary replicates what was written after the failover')
    // A hand edit of the primary's config.yml is put back with a reload: no failover.
    sb.onHost('h2', 'echo "# edited by hand" >> /etc/patroni/config.yml')
    const fix = await imctl(['install', '-c', c(), '--json'])
    assert.equal(fix.exitCode, 0, fix.stdout)
    assert.deepEqual(fix.json.result.steps.map((s: {host: string; what: string}) => `${s.host}: ${s.what}`), ['h2: write /etc/patroni/config.yml (postgres:postgres 600)', 'h2: reload patroni'])
    const still = await healthUntil((x) => x.status === 'healthy', 30)
    assert.match(detailOf(still, 'h2', /^Patroni member/)!.detail, /^leader \(primary\), timeline 2$/)
    const again = await imctl(['install', '-c', c(), '--json'])
    assert.equal(again.exitCode, 0, again.stdout)
    assert.equal(again.json.result.changes, 0, JSON.stringify(again.json.result.steps, null, 1))
  })

  it('never printed a secret', () => {
    const all = transcript.join('\n')
    for (const s of sb.secrets) assert.ok(!all.includes(s), 'a secret appeared in imctl output')
  })
})
