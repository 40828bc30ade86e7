import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {component} from '../../src/components/registry.js'
import {KEEPALIVED_CONF} from '../../src/components/haproxy/index.js'
import {parseClusterConfig} from '../../src/config/load.js'
import {loadManifest} from '../../src/config/manifest.js'
import type {ComponentName} from '../../src/config/model.js'
import type {ClusterSecrets} from '../../src/config/secrets.js'
import {ValidationError} from '../../src/errors.js'
import {holdsAddress, virtualIpQuery} from '../../src/ops/health.js'
import {desiredState} from '../../src/plan/desired.js'
import {parseFirewall, renderFirewallTable} from '../../src/plan/firewall.js'
import {planChanges} from '../../src/plan/planner.js'
import type {FileResource, Resource} from '../../src/plan/resources.js'
import {SECRETS, configFrom, convergedFacts} from './helpers.js'

const CLUSTER_SECRETS: ClusterSecrets = {...SECRETS, ejabberd_cluster: {erlang_cookie: 'COOKIE0123456789ABCDEFGHIJKLMNOP'}}

/** lb1 and lb2 (HAProxy, sharing 10.0.0.100), db1 (PostgreSQL, Redis), im1 and im2 (ejabberd nodes). */
const VIP_YAML = `apiVersion: imctl/v1
name: chat-vip
domain: chat.example.com
release: ejabberd-23.01-debian12
hosts:
  - name: lb1
    address: 10.0.0.5
    auth: {agent: true}
  - name: lb2
    address: 10.0.0.6
    auth: {agent: true}
  - name: db1
    address: 10.0.0.11
    auth: {agent: true}
  - name: im1
    address: 10.0.0.21
    auth: {agent: true}
  - name: im2
    address: 10.0.0.22
    auth: {agent: true}
components:
  postgresql: {host: db1}
  redis: {host: db1}
  ejabberd: {hosts: [im1, im2]}
  haproxy:
    hosts: [lb1, lb2]
    virtualIp: {address: 10.0.0.100/24, interface: eth0}
`

function problemsOf(yaml: string): string[] {
  try {
    parseClusterConfig(yaml, '/tmp/imctl-unit/cluster.yaml')
  } catch (e) {
    if (e instanceof ValidationError) return e.problems.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`)
    throw e
  }
  return []
}

const resourcesOf = (yaml: string): Resource[] => {
  const config = configFrom(yaml)
  return desiredState(config, loadManifest(config.release), CLUSTER_SECRETS)
}
const fileOn = (rs: Resource[], host: string, path: string) => rs.find((r): r is FileResource => r.kind === 'file' && r.host === host && r.path === path)

const ORDER: ComponentName[] = ['postgresql', 'redis', 'ejabberd', 'kafka', 'minio', 'haproxy']

describe('haproxy.virtualIp in cluster.yaml', () => {
  it('reads the address, prefix and interface; the router id from cluster.yaml or derived from the name', () => {
    const config = configFrom(VIP_YAML)
    const vip = config.components.haproxy!.virtualIp!
    assert.deepEqual({...vip, routerId: 0}, {address: '10.0.0.100', prefix: 24, interface: 'eth0', routerId: 0})
    assert.ok(vip.routerId >= 1 && vip.routerId <= 255)
    // Derived from the name: the same on every run, another for another cluster (these two differ).
    assert.equal(configFrom(VIP_YAML).components.haproxy!.virtualIp!.routerId, vip.routerId)
    assert.notEqual(configFrom(VIP_YAML.replace('name: chat-vip', 'name: chat-b')).components.haproxy!.virtualIp!.routerId, vip.routerId)
    const given = configFrom(VIP_YAML.replace('interface: eth0}', 'interface: ens3, routerId: 7}').replace('10.0.0.100/24', '10.0.0.100'))
    assert.deepEqual(given.components.haproxy!.virtualIp, {address: '10.0.0.100', prefix: 32, interface: 'ens3', routerId: 7})
  })

  it('refuses a virtual IP with one HAProxy host, a bad or taken address, one off the hosts\' network, a bad interface, with file:line', () => {
    assert.deepEqual(problemsOf(VIP_YAML.replace('hosts: [lb1, lb2]', 'hosts: [lb1]')), ['27:5 components.haproxy.virtualIp: a virtual IP needs 2 HAProxy hosts to move between'])
    assert.deepEqual(problemsOf(VIP_YAML.replace('10.0.0.100/24', '10.0.0.300/24')), ['27:26 components.haproxy.virtualIp.address: "10.0.0.300/24" is not an IPv4 address with an optional /prefix (1-32)'])
    assert.deepEqual(problemsOf(VIP_YAML.replace('10.0.0.100/24', '10.0.0.100/33')), ['27:26 components.haproxy.virtualIp.address: "10.0.0.100/33" is not an IPv4 address with an optional /prefix (1-32)'])
    assert.deepEqual(problemsOf(VIP_YAML.replace('10.0.0.100/24', 'fd00::100/64')), ['27:26 components.haproxy.virtualIp.address: "fd00::100/64" is not an IPv4 address with an optional /prefix (1-32)'])
    assert.deepEqual(problemsOf(VIP_YAML.replace('10.0.0.100/24', '10.0.0.11/24')), ['27:26 components.haproxy.virtualIp.address: 10.0.0.11 is hosts[2]\'s own address'])
    assert.deepEqual(problemsOf(VIP_YAML.replace('10.0.0.100/24', '10.0.1.100/24')), [
      '27:26 components.haproxy.virtualIp.address: lb1\'s address 10.0.0.5 is outside 10.0.1.100/24',
      '27:26 components.haproxy.virtualIp.address: lb2\'s address 10.0.0.6 is outside 10.0.1.100/24',
    ])
    assert.deepEqual(problemsOf(VIP_YAML.replace('interface: eth0', 'interface: "eth0; rm -rf /"')), ['27:52 components.haproxy.virtualIp.interface: "eth0; rm -rf /" is not a network interface name'])
    // The schema: interface is required, unknown keys are refused.
    assert.ok(problemsOf(VIP_YAML.replace(', interface: eth0', '')).some((p) => p.startsWith('27:') && p.includes('interface')), problemsOf(VIP_YAML.replace(', interface: eth0', '')).join('\n'))
    assert.ok(problemsOf(VIP_YAML.replace('interface: eth0', 'interface: eth0, auth: x')).some((p) => p.startsWith('27:')))
  })
})

describe('keepalived on the HAProxy hosts', () => {
  it('renders keepalived.conf exactly: the first host preferred, unicast to the other, HAProxy tracked', () => {
    const rs = resourcesOf(VIP_YAML)
    const id = configFrom(VIP_YAML).components.haproxy!.virtualIp!.routerId
    const expected = (host: string, state: string, priority: number, src: string, peer: string) =>
      [
        '# Managed by imctl for cluster chat-vip: changes here are overwritten.',
        '# The virtual IP 10.0.0.100 stays on one HAProxy host whose HAProxy runs (the first listed when it can).',
        'global_defs {',
        `    router_id imctl-${host}`,
        '    script_user root',
        '    enable_script_security',
        '}',
        '',
        'vrrp_script imctl_haproxy {',
        '    script "/usr/bin/systemctl is-active --quiet haproxy.service"',
        '    interval 1',
        '    fall 2',
        '    rise 2',
        '}',
        '',
        'vrrp_instance imctl_vip {',
        `    state ${state}`,
        '    interface eth0',
        `    virtual_router_id ${id}`,
        `    priority ${priority}`,
        '    advert_int 1',
        `    unicast_src_ip ${src}`,
        '    unicast_peer {',
        `        ${peer}`,
        '    }',
        '    virtual_ipaddress {',
        '        10.0.0.100/24 dev eth0',
        '    }',
        '    track_script {',
        '        imctl_haproxy',
        '    }',
        '}',
        '',
      ].join('\n')
    const lb1 = fileOn(rs, 'lb1', KEEPALIVED_CONF)!
    assert.equal(lb1.content, expected('lb1', 'MASTER', 150, '10.0.0.5', '10.0.0.6'))
    assert.equal(fileOn(rs, 'lb2', KEEPALIVED_CONF)!.content, expected('lb2', 'BACKUP', 140, '10.0.0.6', '10.0.0.5'))
    assert.deepEqual([lb1.owner, lb1.mode, lb1.notify, lb1.reloadable], ['root', '600', ['keepalived'], true])
    for (const host of ['lb1', 'lb2']) {
      const mine = rs.filter((r) => r.host === host)
      assert.ok(mine.some((r) => r.kind === 'packages' && r.packages.some((p) => p.name === 'keepalived' && p.version === '1:2.2.7-*')))
      const svc = mine.find((r) => r.kind === 'service' && r.unit === 'keepalived')
      assert.ok(svc?.kind === 'service' && svc.reload?.[0]?.argv.join(' ') === 'systemctl reload keepalived')
    }
    // Only the HAProxy hosts, and only with a virtual IP.
    assert.ok(!rs.some((r) => r.host !== 'lb1' && r.host !== 'lb2' && r.kind === 'service' && r.unit === 'keepalived'))
    const plain = resourcesOf(VIP_YAML.replace('    virtualIp: {address: 10.0.0.100/24, interface: eth0}\n', ''))
    assert.ok(!plain.some((r) => (r.kind === 'service' && r.unit === 'keepalived') || (r.kind === 'file' && r.path === KEEPALIVED_CONF)))
    assert.ok(!fileOn(plain, 'lb1', '/etc/haproxy/haproxy.cfg')!.content.includes('transparent'))
  })

  it('binds HAProxy\'s frontends to the virtual IP too, transparently, so the host that takes it over serves at once', () => {
    const cfg = fileOn(resourcesOf(VIP_YAML), 'lb2', '/etc/haproxy/haproxy.cfg')!.content
    for (const [front, port] of [['xmpp', 5222], ['http', 5280], ['mqtt', 1883]] as const) {
      assert.ok(cfg.includes(`frontend ${front}\n    bind 10.0.0.6:${port}\n`), cfg)
      assert.ok(cfg.includes(`    bind 10.0.0.100:${port} transparent\n    default_backend ${front}_nodes\n`), cfg)
    }
  })

  it('plans nothing for a converged cluster, and a reload (not a restart) when only keepalived.conf changed', () => {
    const config = configFrom(VIP_YAML)
    const rs = resourcesOf(VIP_YAML)
    const facts = convergedFacts(config, rs)
    const plan = () => planChanges(rs, facts, ORDER, (c) => component(c).dependsOn).steps
    assert.deepEqual(plan(), [])
    facts.lb2!.files[KEEPALIVED_CONF]!.content = Buffer.from('old\n')
    const steps = plan()
    assert.deepEqual(steps.map((s) => s.host), ['lb2', 'lb2'])
    assert.ok(steps.some((s) => s.run.type === 'exec' && s.run.commands.some((c) => c.argv.join(' ') === 'systemctl reload keepalived')), JSON.stringify(steps.map((s) => s.what)))
    assert.ok(!steps.some((s) => s.run.type === 'exec' && s.run.commands.some((c) => c.argv.join(' ').includes('restart keepalived'))), JSON.stringify(steps.map((s) => s.what)))
  })
})

describe('the firewall with a virtual IP', () => {
  it('lets VRRP in from the other HAProxy host only, on the HAProxy hosts only; the public ports stay open on every address', () => {
    const config = configFrom(`${VIP_YAML}firewall: {enabled: true}\n`)
    const table = (host: string) => renderFirewallTable(config, config.hosts.find((h) => h.name === host)!)
    const lines = (host: string) => table(host).split('\n').map((l) => l.trim())
    assert.ok(lines('lb1').includes('ip saddr 10.0.0.6 ip protocol 112 accept'), table('lb1'))
    assert.ok(!lines('lb1').includes('ip saddr 10.0.0.5 ip protocol 112 accept'), table('lb1'))
    assert.ok(lines('lb2').includes('ip saddr 10.0.0.5 ip protocol 112 accept'), table('lb2'))
    assert.equal(lines('lb2').at(-4), 'ip saddr 10.0.0.5 ip protocol 112 accept')
    for (const h of ['db1', 'im1', 'im2']) assert.ok(!table(h).includes('ip protocol'), table(h))
    // No daddr in the public rules: a client reaches 5222 on the virtual IP as on the host's own address.
    for (const port of [5222, 5280, 1883]) assert.ok(lines('lb1').includes(`tcp dport ${port} accept`), table('lb1'))
    const plain = configFrom(`${VIP_YAML.replace('    virtualIp: {address: 10.0.0.100/24, interface: eth0}\n', '')}firewall: {enabled: true}\n`)
    assert.ok(!renderFirewallTable(plain, plain.hosts[0]!).includes('ip protocol'))
  })

  it('reads the loaded table the same whether nft names protocol 112 or prints its number', () => {
    const config = configFrom(`${VIP_YAML}firewall: {enabled: true}\n`)
    const rendered = renderFirewallTable(config, config.hosts[0]!)
    assert.equal(parseFirewall(rendered.replace('ip protocol 112', 'ip protocol vrrp')), rendered)
    assert.equal(parseFirewall(rendered), rendered)
  })
})

describe('which HAProxy host holds the virtual IP', () => {
  it('reads `ip -o -4 addr show dev` for the address, with any prefix, and nothing else', () => {
    assert.deepEqual(virtualIpQuery('eth0').argv, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0'])
    const out = [
      '2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever preferred_lft forever',
      '2: eth0    inet 10.0.0.100/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever',
    ].join('\n')
    assert.equal(holdsAddress(out, '10.0.0.100'), true)
    assert.equal(holdsAddress(out, '10.0.0.10'), false)
    assert.equal(holdsAddress(out.split('\n')[0]!, '10.0.0.100'), false)
    assert.equal(holdsAddress('', '10.0.0.100'), false)
  })
})
