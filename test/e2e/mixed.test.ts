/**
 * A mixed cluster: PostgreSQL on a sandbox SSH host; Redis and ejabberd as
 * containers on an engine reached over SSH (a host that has the engine's
 * socket and a `docker system dial-stdio` shim, as a remote Docker host has).
 * Then the same engine through its local socket sees the same, converged state.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {appendFileSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createSandbox, imctl, type Sandbox} from './harness.js'

const CLUSTER = 'e2e-mix'
const podman = (...args: string[]) => execFileSync('podman', args, {encoding: 'utf8'})
const ENGINE_HOST = `imctl-sbx-${CLUSTER}-engine`

function removeEngineSide(): void {
  for (const filter of [`label=io.imctl.cluster=${CLUSTER}`, `name=${ENGINE_HOST}`]) {
    const ids = podman('ps', '-aq', '--filter', filter).split('\n').filter(Boolean)
    if (ids.length) podman('rm', '-f', ...ids)
  }
  const vols = podman('volume', 'ls', '-q', '--filter', `name=imctl-${CLUSTER}-`).split('\n').filter(Boolean)
  if (vols.length) podman('volume', 'rm', '-f', ...vols)
  if (podman('network', 'ls', '--format', '{{.Name}}').split('\n').includes(`imctl-${CLUSTER}`)) podman('network', 'rm', `imctl-${CLUSTER}`)
}

describe('mixed cluster: PostgreSQL over SSH, Redis and ejabberd on an engine reached over SSH', {timeout: 1_500_000}, () => {
  let sb: Sandbox
  let c: string
  let gateway: string
  let engineAddress: string

  before(async () => {
    removeEngineSide()
    sb = await createSandbox(CLUSTER, 1)
    c = sb.config
    const net = JSON.parse(podman('network', 'inspect', `imctl-sbx-${CLUSTER}`))[0]
    gateway = net.subnets[0].gateway
    // An engine host on the sandbox network: sshd, the engine's socket, socat, and the dial-stdio shim.
    const image = JSON.parse(podman('inspect', sb.hosts[0]!.container))[0].ImageName
    podman('run', '-d', '--name', ENGINE_HOST, '--hostname', 'engine', '--systemd=always', '--network', `imctl-sbx-${CLUSTER}`,
      '-v', `${join(sb.dir, 'id_ed25519.pub')}:/root/.ssh/authorized_keys:ro`, '-v', '/run/podman/podman.sock:/run/podman/podman.sock', image)
    for (let i = 0; i < 60; i++) {
      try {
        if (podman('exec', ENGINE_HOST, 'systemctl', 'is-active', 'ssh').trim() === 'active') break
      } catch {
        // still booting
      }
      await new Promise((r) => setTimeout(r, 500))
    }
    podman('exec', ENGINE_HOST, 'sh', '-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq socat >/dev/null')
    podman('exec', ENGINE_HOST, 'sh', '-c', 'printf \'#!/bin/sh\\n[ "$1 $2" = "system dial-stdio" ] && exec socat - UNIX-CONNECT:/run/podman/podman.sock\\necho "only dial-stdio here" >&2; exit 1\\n\' > /usr/local/bin/docker && chmod 755 /usr/local/bin/docker')
    engineAddress = JSON.parse(podman('inspect', ENGINE_HOST))[0].NetworkSettings.Networks[`imctl-sbx-${CLUSTER}`].IPAddress
    const key = podman('exec', ENGINE_HOST, 'cat', '/etc/ssh/ssh_host_ed25519_key.pub').trim().split(/\s+/)
    appendFileSync(join(sb.dir, 'known_hosts'), `${engineAddress} ${key[0]} ${key[1]}\n`)
    // Given: PostgreSQL on h1; Redis and ejabberd on the engine, whose published ports bind to the
    // address the sandbox hosts reach this machine at (the network's gateway).
    const h1 = sb.hosts[0]!
    writeFileSync(
      c,
      readFileSync(c, 'utf8')
        .replace(/hosts:\n/, `hosts:\n  - name: engine\n    address: ${gateway}\n    engine: {ssh: {address: ${engineAddress}, auth: {key: ./id_ed25519}}}\n`)
        .replace('redis: { host: h1 }', 'redis: { host: engine, port: 16479 }')
        .replace('ejabberd: { host: h1 }', 'ejabberd: { host: engine, ports: { c2s: 15322, http: 15380, mqtt: 11983 } }'),
    )
    assert.match(readFileSync(c, 'utf8'), new RegExp(`postgresql: \\{ host: h1 \\}`))
    assert.ok(h1)
  })

  after(async () => {
    if (process.env.IMCTL_E2E_KEEP) return // leave everything up to debug a failure
    removeEngineSide()
    await sb?.destroy()
  })

  it('installs across SSH and engine hosts and health delivers a message', async () => {
    const r = await imctl(['install', '-c', c, '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const hosts = new Set(r.json.result.steps.map((s: {host: string}) => s.host))
    assert.deepEqual([...hosts].sort(), ['engine', 'h1'])
    // ejabberd reaches PostgreSQL on h1 by its address, from the engine's address.
    const yml = podman('exec', `imctl-${CLUSTER}-ejabberd`, 'cat', '/etc/ejabberd/ejabberd.yml')
    assert.match(yml, new RegExp(`sql_server: "${sb.hosts[0]!.address.replace(/\./g, '\\.')}"`))
    assert.match(yml, /redis_server: "redis"/)
    const h = await imctl(['health', '-c', c, '--json'])
    assert.equal(h.exitCode, 0, h.stdout)
    assert.ok(h.json.result.checks.find((x: {check: string; ok: boolean}) => /message delivery/.test(x.check))?.ok)
  })

  it('a second install over SSH changes nothing; through the local socket the engine is the same and converged', async () => {
    const again = await imctl(['install', '-c', c, '--json'])
    assert.equal(again.exitCode, 0, again.stdout)
    assert.equal(again.json.result.changes, 0, JSON.stringify(again.json.result.steps))
    writeFileSync(c, readFileSync(c, 'utf8').replace(/engine: \{ssh: \{[^\n]*\}\}/, 'engine: {socket: /run/podman/podman.sock}'))
    const local = await imctl(['plan', '-c', c, '--json'])
    assert.equal(local.exitCode, 0, local.stdout)
    assert.equal(local.json.result.changes, 0, JSON.stringify(local.json.result.steps))
  })

  it('moving Redis off the engine removes its container but keeps its volume', async () => {
    // Given Redis moved from the engine to the SSH host h1
    writeFileSync(c, readFileSync(c, 'utf8').replace('redis: { host: engine, port: 16479 }', 'redis: { host: h1 }'))
    const plan = await imctl(['plan', '-c', c, '--json'])
    assert.equal(plan.exitCode, 0, plan.stdout)
    const whats = plan.json.result.steps.map((s: {host: string; what: string}) => `${s.host}: ${s.what}`)
    assert.ok(whats.includes(`engine: remove container imctl-${CLUSTER}-redis (its volumes are kept)`), whats.join('\n'))
    assert.ok(whats.includes('h1: install redis-server'), whats.join('\n'))
    assert.ok(whats.includes(`engine: recreate container imctl-${CLUSTER}-ejabberd (its volumes are kept)`), whats.join('\n'))
    // When installed, Then the container is gone, its volume stays, and the cluster is healthy on the new placement
    const r = await imctl(['install', '-c', c, '--json'])
    assert.equal(r.exitCode, 0, r.stdout)
    assert.equal(podman('ps', '-aq', '--filter', `name=^imctl-${CLUSTER}-redis$`).trim(), '')
    assert.ok(podman('volume', 'ls', '-q').split('\n').includes(`imctl-${CLUSTER}-redis-data`))
    let h = await imctl(['health', '-c', c, '--json'])
    for (let i = 0; i < 3 && h.exitCode !== 0; i++) {
      await new Promise((res) => setTimeout(res, 5000)) // ejabberd's Redis client reconnects
      h = await imctl(['health', '-c', c, '--json'])
    }
    assert.equal(h.exitCode, 0, h.stdout)
  })

  it('refuses an engine over SSH whose host key is not pinned', async () => {
    writeFileSync(c, readFileSync(c, 'utf8').replace('engine: {socket: /run/podman/podman.sock}', `engine: {ssh: {address: ${engineAddress}, auth: {key: ./id_ed25519}}}`))
    const known = join(sb.dir, 'known_hosts')
    const original = readFileSync(known, 'utf8')
    try {
      writeFileSync(known, original.split('\n').filter((l) => !l.startsWith(`${engineAddress} `)).join('\n'))
      const r = await imctl(['plan', '-c', c, '--json'])
      assert.equal(r.exitCode, 2)
      assert.match(r.json.error!.message, /engine \(engine\): .* is not a known host/)
    } finally {
      writeFileSync(known, original)
    }
  })
})
