/**
 * The firewall on real hosts: PostgreSQL and Redis on h1, ejabberd on h2, `firewall:` on with
 * SSH limited to the sandbox network. A container on the same network that is not in
 * cluster.yaml scans every TCP port of both hosts and finds only SSH and the IM client
 * ports; inside the cluster ejabberd still reaches PostgreSQL and Redis (health's message
 * delivery). A host whose table is removed is reported, and install puts it back.
 * The same cluster has ejabberd's optional JWT login on: a token signed with the key from
 * the secrets file logs in, a forged or expired one does not, and passwords still work.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {after, before, describe, it} from 'node:test'
import {parse} from 'yaml'
import {signJwt} from '../../src/ops/jwt.js'
import {createSandbox, editConfig, imctl, type Sandbox} from './harness.js'
import {login} from './xmpp.js'

const NAME = 'fw1'
const OUTSIDE = `imctl-sbx-${NAME}-outside`
const CHECK = 'firewall (nftables table inet imctl)'
const podman = (...args: string[]) => execFileSync('podman', args, {encoding: 'utf8'})

/** Open TCP ports of each address, by an nmap connect scan (every port unless `ports` is given) from the outside container. */
function openPorts(addresses: string[], ports = '1-65535'): Record<string, number[]> {
  // A dropped SYN never answers: one retry, and a rate that keeps a full scan of a host near 15 s.
  const out = podman('exec', OUTSIDE, 'nmap', '-sT', '-Pn', '-n', '-T5', '--max-retries', '1', '--min-rate', '10000', '-p', ports, '-oG', '-', ...addresses)
  const found: Record<string, number[]> = Object.fromEntries(addresses.map((a) => [a, []]))
  for (const line of out.split('\n')) {
    const m = /^Host: (\S+) .*\tPorts: (.*?)(\t|$)/.exec(line)
    if (m) found[m[1]!] = [...m[2]!.matchAll(/(\d+)\/open\/tcp/g)].map((x) => Number(x[1])).sort((a, b) => a - b)
  }
  return found
}

function firewallCheck(checks: {host: string; check: string; ok: boolean; detail: string}[], host: string) {
  const c = checks.find((x) => x.host === host && x.check === CHECK)
  assert.ok(c, `no firewall check for ${host}: ${JSON.stringify(checks)}`)
  return c
}

describe('firewall: only SSH and the IM client ports are open from outside the cluster', {timeout: 600_000}, () => {
  let sb: Sandbox
  let h1: string
  let h2: string

  before(async () => {
    try {
      podman('rm', '-f', OUTSIDE)
    } catch {
      // not there
    }
    sb = await createSandbox(NAME, 2)
    h1 = sb.hosts[0]!.address
    h2 = sb.hosts[1]!.address
    const net = JSON.parse(podman('network', 'inspect', `imctl-sbx-${NAME}`))[0]
    const subnet: string = net.subnets[0].subnet
    // imctl reaches the hosts from this network's gateway: SSH stays open to the network only.
    editConfig(sb.config, (t) => `${t.trimEnd()}\nfirewall: { enabled: true, adminSources: [${subnet}] }\n`)
    // JWT login on: the key is a new secret, added by `secrets generate`.
    editConfig(sb.config, (t) => t.replace(/^( +)ejabberd:\s*\{\s*host:\s*(\w+)\s*\}$/m, '$1ejabberd: {host: $2, jwt: {enabled: true}}'))
    assert.match(readFileSync(sb.config, 'utf8'), /jwt: \{enabled: true\}/)
    const gen = await imctl(['secrets', 'generate', '-c', sb.config, '--json'])
    assert.deepEqual(gen.json.result.created, ['ejabberd_jwt.key'], gen.stdout + gen.stderr)
    const image = JSON.parse(podman('inspect', sb.hosts[0]!.container))[0].ImageName
    podman('run', '-d', '--name', OUTSIDE, '--network', `imctl-sbx-${NAME}`, image, 'sleep', 'infinity')
    podman('exec', OUTSIDE, 'sh', '-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nmap >/dev/null 2>&1')
  })

  after(async () => {
    if (process.env.IMCTL_E2E_KEEP) return
    try {
      podman('rm', '-f', '-t', '0', OUTSIDE)
    } catch {
      // already gone
    }
    await sb?.destroy()
  })

  it('installs with the firewall and health checks every host\'s rules', async () => {
    const r = await imctl(['install', '-c', sb.config, '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const whats = r.json.result.steps.map((s: {host: string; what: string}) => `${s.host}: ${s.what}`)
    for (const h of ['h1', 'h2']) assert.ok(whats.includes(`${h}: load the firewall rules from /etc/imctl/firewall.nft`), whats.join('\n'))
    const health = await imctl(['health', '-c', sb.config, '--json'])
    assert.equal(health.exitCode, 0, health.stdout + health.stderr)
    assert.equal(health.json.result.status, 'healthy', JSON.stringify(health.json.result.checks, null, 1))
    for (const h of ['h1', 'h2']) assert.equal(firewallCheck(health.json.result.checks, h).ok, true)
    // Inside the cluster, ejabberd on h2 reaches PostgreSQL and Redis on h1, and a message goes through.
    const ok = (check: string) => health.json.result.checks.find((c: {check: string; ok: boolean}) => c.check === check)?.ok
    assert.equal(ok('login as ejabberd from h2, SELECT 1'), true)
    assert.equal(ok('AUTH and PING from h2'), true)
    assert.equal(ok('WebSocket login and message delivery'), true)
  })

  it('JWT login: a token signed with the cluster\'s key logs in; a forged or expired one does not; passwords still work', async () => {
    const ws = `ws://${h2}:5280/ws`
    const domain = parse(readFileSync(sb.config, 'utf8')).domain as string
    const secretsFile = (await imctl(['secrets', 'generate', '-c', sb.config, '--json'])).json.result.secretsFile as string
    const secrets = parse(readFileSync(secretsFile, 'utf8'))
    const key = secrets.ejabberd_jwt.key as string
    // The key sits on the host as a JWK only ejabberd reads.
    assert.equal(sb.onHost('h2', 'stat -c "%U:%G %a" /etc/ejabberd/jwt.jwk').trim(), 'ejabberd:ejabberd 600')
    // With jwt among its auth methods ejabberd offers PLAIN only (SCRAM needs a stored key); this cluster has no
    // TLS, so the client is told to use PLAIN over ws:// (it refuses to on its own).
    const as = (user: string, password: string) => login(ws, domain, user, password, {mechanism: 'PLAIN'})
    const refused = /not-authorized/
    const signed = await imctl(['jwt', 'sign', '-c', sb.config, '--user', 'carol', '--ttl', '10m', '--json'])
    assert.equal(signed.exitCode, 0, signed.stdout + signed.stderr)
    const carol = await as('carol', signed.json.result.token)
    await carol.stop()
    // A token for carol does not log in dave.
    await assert.rejects(as('dave', signed.json.result.token), refused)
    const now = Math.floor(Date.now() / 1000)
    await assert.rejects(as('carol', signJwt({jid: `carol@${domain}`, exp: now + 600}, Buffer.alloc(32, 7).toString('base64url'))), refused)
    await assert.rejects(as('carol', signJwt({jid: `carol@${domain}`, exp: now - 60}, key)), refused)
    // The same claims with the right key and a future exp log in: the refusals were the signature's and exp's.
    const fresh = await as('carol', signJwt({jid: `carol@${domain}`, exp: now + 600}, key))
    await fresh.stop()
    // An account with a password in PostgreSQL logs in as before, and a wrong password is refused.
    const admin = await as('admin', secrets.ejabberd.admin_password)
    await admin.stop()
    await assert.rejects(as('admin', 'not-the-password'), refused)
    const health = await imctl(['health', '-c', sb.config, '--json'])
    assert.equal(health.json.result.checks.find((c: {check: string}) => c.check === 'WebSocket login and message delivery')?.ok, true, JSON.stringify(health.json.result.checks))
  })

  it('a scan of every TCP port from a container outside the cluster finds only SSH and the IM client ports', () => {
    assert.deepEqual(openPorts([h1, h2]), {[h1]: [22], [h2]: [22, 1883, 5222, 5280]})
    // The services listen there all the same: it is the rules that keep them in.
    assert.match(sb.onHost('h1', 'ss -Htln'), /:5432\b/)
    assert.match(sb.onHost('h1', 'ss -Htln'), /:6379\b/)
    assert.match(sb.onHost('h2', 'ss -Htln'), /:4369\b/)
  })

  it('a host whose table is gone is reported, is open again, and install restores it', async () => {
    sb.onHost('h1', 'nft delete table inet imctl')
    // Without the rules the scan does see PostgreSQL and Redis: the scan can tell open from filtered.
    assert.deepEqual(openPorts([h1], '22,5432,6379'), {[h1]: [22, 5432, 6379]})
    const bad = await imctl(['health', '-c', sb.config, '--json'])
    assert.notEqual(bad.exitCode, 0)
    assert.equal(bad.json.result.status, 'unhealthy')
    const c = firewallCheck(bad.json.result.checks, 'h1')
    assert.equal(c.ok, false)
    assert.match(c.detail, /table inet imctl is not loaded.*run `imctl install`/)
    assert.equal(firewallCheck(bad.json.result.checks, 'h2').ok, true)
    const text = await imctl(['health', '-c', sb.config])
    assert.match(text.stdout + text.stderr, /firewall/)

    const fix = await imctl(['install', '-c', sb.config, '--json'])
    assert.equal(fix.exitCode, 0, fix.stdout + fix.stderr)
    assert.deepEqual(fix.json.result.steps.map((s: {host: string; what: string}) => `${s.host}: ${s.what}`), ['h1: load the firewall rules from /etc/imctl/firewall.nft'])
    assert.deepEqual(openPorts([h1], '22,5432,6379'), {[h1]: [22]})
    const again = await imctl(['install', '-c', sb.config, '--json'])
    assert.equal(again.exitCode, 0, again.stdout + again.stderr)
    assert.equal(again.json.result.changes, 0, JSON.stringify(again.json.result.steps))
  })

  it('the rules are loaded again at boot', async () => {
    // A reboot that keeps the host's address, as a server's does (podman would hand out a new one).
    const c = sb.hosts[0]!.container
    const net = `imctl-sbx-${NAME}`
    podman('stop', '-t', '5', c)
    podman('network', 'disconnect', net, c)
    podman('network', 'connect', '--ip', h1, net, c)
    podman('start', c)
    let state = ''
    for (let i = 0; i < 120 && !/^(running|degraded)$/m.test(state); i++) {
      await new Promise((r) => setTimeout(r, 500))
      try {
        state = sb.onHost('h1', 'systemctl is-system-running 2>/dev/null || true')
      } catch {
        // not up yet
      }
    }
    assert.match(sb.onHost('h1', 'nft list table inet imctl'), /policy drop/)
    // ejabberd on h2 reconnects to the restarted PostgreSQL on its own: give it a few tries.
    let health = await imctl(['health', '-c', sb.config, '--json'])
    for (let i = 0; i < 6 && health.json.result?.status !== 'healthy'; i++) {
      await new Promise((r) => setTimeout(r, 5000))
      health = await imctl(['health', '-c', sb.config, '--json'])
    }
    assert.equal(health.json.result?.status, 'healthy', health.stdout + health.stderr)
    // The loaded table is the rendered one again: the same rules the scans above tested.
    assert.equal(firewallCheck(health.json.result.checks, 'h1').ok, true)
  })
})
