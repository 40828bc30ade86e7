/**
 * ejabberd as a cluster of two nodes behind HAProxy, on real hosts: h1 runs PostgreSQL,
 * Redis and HAProxy; h2 and h3 are ejabberd nodes joined with ejabberd's own join_cluster;
 * h2 runs a second HAProxy (on other ports than its node's), and keepalived keeps a virtual
 * IP on h1, or on h2 when h1's HAProxy stops: clients connect to the virtual IP.
 * A client connected through HAProxy loses its node, reconnects through HAProxy to the
 * other one, and a message is delivered and archived; health says DEGRADED and names the
 * stopped node; install starts it again; a re-run changes nothing. The firewall is on
 * throughout: the nodes' client ports and Erlang distribution are open to the cluster only.
 * Needs no Kafka or MinIO artifacts.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'
import {createSandbox, editConfig, imctl, transcript, type Sandbox} from './harness.js'
import {archive, login, send} from './xmpp.js'
import {xml} from '@xmpp/client'

describe('ejabberd cluster behind HAProxy', {timeout: 900_000}, () => {
  let sb: Sandbox
  let c: string
  const domain = 'ha3.imctl.test'
  const node = (host: string) => `ejabberd@${sb.hosts.find((h) => h.name === host)!.address}`
  // A free address high in the sandbox network (podman hands out addresses from the bottom), on the hosts' interface.
  let vip = ''
  let iface = ''
  const ws = () => `ws://${vip}:5380/ws`
  const holders = () => ['h1', 'h2'].filter((h) => sb.onHost(h, `ip -o -4 addr show dev ${iface}`).includes(` inet ${vip}/`))
  // After a node starts, each HAProxy marks it up only after 2 passed checks 2 s apart ("DOWN 1/2" meanwhile): a few seconds.
  async function healthySoon(): Promise<void> {
    let h = await imctl(['health', '-c', c, '--json'])
    for (let i = 0; i < 4 && h.json.result.status !== 'healthy'; i++) {
      await new Promise((r) => setTimeout(r, 3000))
      h = await imctl(['health', '-c', c, '--json'])
    }
    assert.equal(h.json.result.status, 'healthy', h.stdout)
  }
  async function until(what: string, ok: () => boolean, ms: number): Promise<number> {
    const t0 = Date.now()
    while (!ok()) {
      if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms (holders: ${holders().join(', ') || 'none'})`)
      await new Promise((r) => setTimeout(r, 250))
    }
    return Date.now() - t0
  }

  before(async () => {
    sb = await createSandbox('ha3', 3)
    c = sb.config
    const h1 = sb.hosts.find((h) => h.name === 'h1')!.address
    const line = sb.onHost('h1', 'ip -o -4 addr show').split('\n').find((l) => l.includes(` inet ${h1}/`))!
    const [, dev, bits] = /^\d+:\s+(\S+)\s+inet [\d.]+\/(\d+)/.exec(line)!
    iface = dev!
    const size = 2 ** (32 - Number(bits))
    const n = h1.split('.').reduce((a, o) => a * 256 + Number(o), 0)
    const pick = n - (n % size) + size - 6
    vip = [24, 16, 8, 0].map((sh) => (pick >>> sh) & 255).join('.')
    assert.ok(size >= 16 && !sb.hosts.some((h) => h.address === vip), `${vip} in /${bits}`)
    editConfig(c, (t) =>
      t
        .replace('redis: { host: h2 }', 'redis: { host: h1 }')
        .replace(
          'ejabberd: { host: h3 }',
          `ejabberd: { hosts: [h2, h3] }\n  haproxy:\n    hosts: [h1, h2]\n    ports: { c2s: 5322, http: 5380, mqtt: 1983 }\n    virtualIp: { address: ${vip}/${bits}, interface: ${iface} }`,
        ) +
        // With the firewall on: clients reach HAProxy only; the nodes talk Erlang among the cluster's hosts.
        'firewall: { enabled: true }\n',
    )
  })

  after(async () => {
    await sb?.destroy()
  })

  it('installs two joined ejabberd nodes and HAProxy; health shows both nodes and HAProxy\'s backends up', async () => {
    // The cluster's Erlang cookie is a new secret: generated beside the others.
    const gen = await imctl(['secrets', 'generate', '-c', c, '--json'])
    assert.equal(gen.exitCode, 0, gen.stdout + gen.stderr)
    const r = await imctl(['install', '-c', c, '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const whats = r.json.result.steps.map((s: {host: string; what: string}) => `${s.host}: ${s.what}`)
    assert.ok(whats.includes(`h3: join ejabberd node ${node('h3')} to the cluster of ${node('h2')}`), whats.join('\n'))
    // The schema is loaded once, from the first node.
    assert.equal(whats.filter((w: string) => w.includes('pg.new.sql')).length, 1, whats.join('\n'))
    for (const h of ['h2', 'h3']) {
      assert.deepEqual(sb.onHost(h, 'ejabberdctl list_cluster').trim().split('\n').sort(), [`'${node('h2')}'`, `'${node('h3')}'`].sort())
      assert.equal(sb.onHost(h, 'stat -c "%U %a" /var/lib/ejabberd/.erlang.cookie').trim(), 'ejabberd 400')
    }
    assert.equal(sb.onHost('h2', 'cat /var/lib/ejabberd/.erlang.cookie'), sb.onHost('h3', 'cat /var/lib/ejabberd/.erlang.cookie'))
    // The firewall is loaded: Erlang distribution between the nodes from cluster addresses only; HAProxy's ports public.
    const h3 = sb.hosts.find((h) => h.name === 'h3')!.address
    assert.match(sb.onHost('h2', 'nft list table inet imctl'), new RegExp(`ip saddr ${h3.replace(/\./g, '\\.')} tcp dport 4370 accept`))
    assert.doesNotMatch(sb.onHost('h2', 'nft list table inet imctl'), /^\s*tcp dport (5222|4370) accept/m)
    assert.match(sb.onHost('h1', 'nft list table inet imctl'), /^\s*tcp dport 5322 accept/m)
    // VRRP between the two HAProxy hosts only.
    const h2 = sb.hosts.find((h) => h.name === 'h2')!.address
    assert.match(sb.onHost('h1', 'nft list table inet imctl'), new RegExp(`ip saddr ${h2.replace(/\./g, '\\.')} ip protocol (vrrp|112) accept`))
    assert.doesNotMatch(sb.onHost('h3', 'nft list table inet imctl'), /ip protocol/)
    // keepalived's config is root's only; the first HAProxy host holds the virtual IP.
    for (const h of ['h1', 'h2']) assert.equal(sb.onHost(h, 'stat -c "%U %a" /etc/keepalived/keepalived.conf').trim(), 'root 600')
    await until('the virtual IP on h1', () => holders().join() === 'h1', 15_000)

    const health = await imctl(['health', '-c', c, '--json'])
    assert.equal(health.exitCode, 0, health.stdout)
    assert.equal(health.json.result.status, 'healthy')
    const checks = health.json.result.checks as {host: string; check: string; ok: boolean; detail: string}[]
    for (const h of ['h2', 'h3']) {
      const member = checks.find((x) => x.check === `node ${node(h)} in the cluster`)
      assert.ok(member?.ok && member.detail.includes(node('h2')) && member.detail.includes(node('h3')), JSON.stringify(member))
      for (const hp of ['h1', 'h2']) {
        const seen = checks.find((x) => x.check === `HAProxy on ${hp} passes clients to ${h}`)
        assert.match(seen?.detail ?? '', /xmpp UP.*http UP.*mqtt UP/, JSON.stringify(seen))
      }
    }
    assert.ok(checks.some((x) => x.check === `WebSocket login and message delivery through the virtual IP ${vip}` && x.ok), JSON.stringify(checks))
    assert.deepEqual(checks.filter((x) => x.check === `virtual IP ${vip} on one HAProxy host`).map((x) => [x.ok, x.detail]), [[true, 'held by h1']])
  })

  it('HAProxy stops on the virtual IP\'s holder: the address moves to the other host, clients connect and a message is delivered', async () => {
    for (const u of ['carol', 'dave']) sb.onHost('h2', `ejabberdctl register ${u} ${domain} secret-${u}-pw`)
    const before = await login(ws(), domain, 'carol', 'secret-carol-pw')
    await before.stop()
    sb.onHost('h1', 'systemctl stop haproxy')
    const moveMs = await until('the virtual IP moved to h2', () => holders().join() === 'h2', 20_000)
    console.log(`virtual IP ${vip} moved to h2 ${moveMs} ms after HAProxy on h1 stopped`)
    const carol = await login(ws(), domain, 'carol', 'secret-carol-pw')
    const dave = await login(ws(), domain, 'dave', 'secret-dave-pw')
    await dave.send(xml('presence'))
    const body = `through ${vip} on h2 ${Date.now()}`
    const got = new Promise<void>((resolve) => dave.on('stanza', (st) => st.is('message') && st.getChildText('body') === body && resolve()))
    await send(carol, `dave@${domain}`, body)
    await Promise.race([got, new Promise((_, reject) => setTimeout(() => reject(new Error('message not delivered through the virtual IP')), 20_000))])
    await Promise.allSettled([carol.stop(), dave.stop()])

    // Serving through h2: degraded, and only h1's HAProxy is named.
    const health = await imctl(['health', '-c', c, '--json'])
    assert.equal(health.exitCode, 5, health.stdout)
    assert.equal(health.json.result.status, 'degraded')
    const checks = health.json.result.checks as {host: string; check: string; ok: boolean; degraded?: boolean; detail: string}[]
    const degraded = checks.filter((x) => x.degraded)
    assert.ok(degraded.length && degraded.every((x) => x.host === 'h1' && ['systemd unit haproxy', 'HAProxy stats'].includes(x.check)), JSON.stringify(degraded))
    assert.deepEqual(checks.filter((x) => x.check === `virtual IP ${vip} on one HAProxy host`).map((x) => [x.ok, x.detail]), [[true, 'held by h2']])

    // install starts HAProxy again; the first host, preferred, takes the address back.
    const fix = await imctl(['install', '-c', c, '--json'])
    assert.equal(fix.exitCode, 0, fix.stdout + fix.stderr)
    assert.ok(fix.json.result.steps.some((s: {host: string; what: string}) => s.host === 'h1' && /haproxy/.test(s.what)), fix.stdout)
    await until('the virtual IP back on h1', () => holders().join() === 'h1', 20_000)
    await healthySoon()
  })

  it('a client whose node stops reconnects through HAProxy to the other node; the message is delivered and archived', async () => {
    for (const u of ['alice', 'bob']) sb.onHost('h2', `ejabberdctl register ${u} ${domain} secret-${u}-pw`)
    const bob = await login(ws(), domain, 'bob', 'secret-bob-pw')
    const info = sb.onHost('h2', `ejabberdctl user_sessions_info bob ${domain}`)
    const serving = ['h2', 'h3'].find((h) => info.includes(node(h)))
    assert.ok(serving, info)
    const other = serving === 'h2' ? 'h3' : 'h2'
    const gone = new Promise<void>((resolve) => bob.on('disconnect', () => resolve()))
    const t0 = Date.now()
    sb.onHost(serving, 'systemctl stop ejabberd')
    await Promise.race([gone, new Promise((_, reject) => setTimeout(() => reject(new Error('bob was not disconnected')), 60_000))])

    // Reconnect as any client does: to the same address, i.e. HAProxy, which now picks the node left.
    let bob2: Awaited<ReturnType<typeof login>> | undefined
    for (let i = 0; i < 15 && !bob2; i++) {
      bob2 = await login(ws(), domain, 'bob', 'secret-bob-pw').catch(() => undefined)
      if (!bob2) await new Promise((r) => setTimeout(r, 2000))
    }
    assert.ok(bob2, 'bob could not log in again through HAProxy')
    const reconnectMs = Date.now() - t0
    assert.ok(sb.onHost(other, `ejabberdctl user_sessions_info bob ${domain}`).includes(node(other)))
    await bob2.send(xml('presence'))
    const alice = await login(ws(), domain, 'alice', 'secret-alice-pw')
    const body = `after ${serving} stopped ${Date.now()}`
    const got = new Promise<void>((resolve) => bob2!.on('stanza', (st) => st.is('message') && st.getChildText('body') === body && resolve()))
    await send(alice, `bob@${domain}`, body)
    await Promise.race([got, new Promise((_, reject) => setTimeout(() => reject(new Error('message not delivered')), 20_000))])
    assert.ok((await archive(bob2)).includes(body))
    await Promise.allSettled([alice.stop(), bob2.stop(), bob.stop()])
    console.log(`reconnected through HAProxy to ${other} ${reconnectMs} ms after ${serving} was stopped`)

    const health = await imctl(['health', '-c', c, '--json'])
    assert.equal(health.exitCode, 5, health.stdout)
    assert.equal(health.json.result.status, 'degraded')
    const degraded = (health.json.result.checks as {host: string; check: string; degraded?: boolean}[]).filter((x) => x.degraded)
    assert.ok(degraded.length && degraded.every((x) => x.host === serving), JSON.stringify(degraded))
    assert.ok(degraded.some((x) => x.check === `node ${node(serving)} in the cluster`), JSON.stringify(degraded))

    const fix = await imctl(['install', '-c', c, '--json'])
    assert.equal(fix.exitCode, 0, fix.stdout + fix.stderr)
    await healthySoon()
    for (const h of ['h2', 'h3']) assert.equal(sb.onHost(h, 'ejabberdctl list_cluster').trim().split('\n').length, 2)
  })

  it('the first node stopped: health delivers through the other node, DEGRADED naming it; install starts it', async () => {
    // The first node is the one imctl's admin calls prefer: health must go on through the other.
    sb.onHost('h2', 'systemctl stop ejabberd')
    const health = await imctl(['health', '-c', c, '--json'])
    assert.equal(health.exitCode, 5, health.stdout)
    const checks = health.json.result.checks as {host: string; check: string; ok: boolean; degraded?: boolean; detail: string}[]
    assert.ok(checks.filter((x) => x.degraded).every((x) => x.host === 'h2'), JSON.stringify(checks))
    assert.ok(checks.some((x) => x.check.startsWith('WebSocket login and message delivery through the virtual IP') && x.ok && !x.degraded), JSON.stringify(checks))
    const fix = await imctl(['install', '-c', c, '--json'])
    assert.equal(fix.exitCode, 0, fix.stdout + fix.stderr)
    await healthySoon()
  })

  it('a re-run changes nothing; no secret in any output', async () => {
    const r = await imctl(['install', '-c', c, '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.deepEqual(r.json.result.steps.map((s: {host: string; what: string; why: string}) => `${s.host}: ${s.what} (${s.why})`), [])
    const cookie = sb.onHost('h2', 'cat /var/lib/ejabberd/.erlang.cookie').trim()
    for (const out of transcript) assert.ok(!out.includes(cookie))
  })
})
