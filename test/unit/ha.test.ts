import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {component} from '../../src/components/registry.js'
import {ejabberdClusterPorts} from '../../src/components/ejabberd/index.js'
import {parseClusterConfig} from '../../src/config/load.js'
import {loadManifest} from '../../src/config/manifest.js'
import {secretSections, type ComponentName} from '../../src/config/model.js'
import type {ClusterSecrets} from '../../src/config/secrets.js'
import {ValidationError} from '../../src/errors.js'
import {clusterMembership, parseHaproxyStats} from '../../src/ops/health.js'
import {desiredState} from '../../src/plan/desired.js'
import {openPorts} from '../../src/plan/firewall.js'
import {parseEjabberdCluster} from '../../src/plan/observe.js'
import {planChanges} from '../../src/plan/planner.js'
import type {FileResource, Resource} from '../../src/plan/resources.js'
import {SECRETS, THREE_HOSTS_YAML, configFrom, convergedFacts} from './helpers.js'

const CLUSTER_SECRETS: ClusterSecrets = {...SECRETS, ejabberd_cluster: {erlang_cookie: 'COOKIE0123456789ABCDEFGHIJKLMNOP'}}

/** db1 (PostgreSQL, Redis, HAProxy), im1 and im2 (ejabberd nodes). */
const HA_YAML = `apiVersion: imctl/v1
name: chat-ha
domain: chat.example.com
release: ejabberd-23.01-debian12
hosts:
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
  haproxy: {hosts: [db1]}
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

function haResources(): Resource[] {
  const config = configFrom(HA_YAML)
  return desiredState(config, loadManifest(config.release), CLUSTER_SECRETS)
}

const ORDER: ComponentName[] = ['postgresql', 'redis', 'ejabberd', 'kafka', 'minio', 'haproxy']
const plan = (resources: Resource[], facts: ReturnType<typeof convergedFacts>) => planChanges(resources, facts, ORDER, (c) => component(c).dependsOn)

describe('an ejabberd cluster beside tls:', () => {
  it('refuses `tls:` with several ejabberd nodes and with HAProxy (not yet), each at its line', () => {
    assert.deepEqual(problemsOf(`${HA_YAML}tls: {ca: imctl}\n`), [
      '18:21 components.ejabberd.hosts: TLS with several ejabberd nodes (`hosts`) is not there yet',
      '19:12 components.haproxy: TLS behind HAProxy is not there yet',
    ])
  })
})

describe('ejabberd.hosts and haproxy in cluster.yaml', () => {
  it('keeps the first node as ejabberd.host and every node in ejabberd.hosts', () => {
    const config = configFrom(HA_YAML)
    assert.equal(config.components.ejabberd.host, 'im1')
    assert.deepEqual(config.components.ejabberd.hosts, ['im1', 'im2'])
    assert.deepEqual(config.components.haproxy, {hosts: ['db1'], ports: {c2s: 5222, http: 5280, mqtt: 1883, stats: 8404}})
    assert.deepEqual(secretSections(config), ['ejabberd_cluster'])
    // One node: as before, no cookie to keep.
    assert.deepEqual(configFrom(THREE_HOSTS_YAML).components.ejabberd.hosts, ['im1'])
    assert.deepEqual(secretSections(configFrom(THREE_HOSTS_YAML)), [])
  })

  it('refuses both host and hosts, unknown nodes, nodes on an engine, and port clashes, with file:line', () => {
    assert.deepEqual(problemsOf(HA_YAML.replace('ejabberd: {hosts: [im1, im2]}', 'ejabberd: {host: im1, hosts: [im1, im2]}')), ['18:13 components.ejabberd: ejabberd needs exactly one of `host` or `hosts`'])
    assert.deepEqual(problemsOf(HA_YAML.replace('ejabberd: {hosts: [im1, im2]}', 'ejabberd: {hosts: [im1, im3]}')), ['18:27 components.ejabberd.hosts[1]: no host named "im3"'])
    assert.deepEqual(problemsOf(HA_YAML.replace('ejabberd: {hosts: [im1, im2]}', 'ejabberd: {hosts: [im1, im1]}')), ['18:21 components.ejabberd.hosts: names the same host twice'])
    const engine = HA_YAML.replace('  - name: im2\n    address: 10.0.0.22\n    auth: {agent: true}', '  - name: im2\n    address: 10.0.0.22\n    engine: {socket: /run/podman/podman.sock}')
    assert.deepEqual(problemsOf(engine), ['18:27 components.ejabberd.hosts[1]: an ejabberd cluster runs on SSH hosts only; im2 is a container engine'])
    const patroni = HA_YAML.replace('postgresql: {host: db1}', 'postgresql: {hosts: [db1, im1, im2]}')
    assert.ok(problemsOf(patroni).some((p) => p.includes('an ejabberd cluster with PostgreSQL under Patroni is not supported yet')), problemsOf(patroni).join('\n'))
    // HAProxy on a node's host takes the same client ports as ejabberd there.
    const clash = problemsOf(HA_YAML.replace('haproxy: {hosts: [db1]}', 'haproxy: {hosts: [im2]}'))
    assert.ok(clash.some((p) => p.includes('port 5222 on host im2 is already used by ejabberd c2s')), clash.join('\n'))
  })
})

describe('an ejabberd cluster as desired state', () => {
  it('runs the once-only steps on the first node and a join on the others', () => {
    const rs = haResources()
    assert.deepEqual(rs.filter((r) => r.kind === 'sql-schema').map((r) => r.host), ['im1'])
    assert.deepEqual(rs.filter((r) => r.kind === 'xmpp-account').map((r) => r.host), ['im1'])
    assert.deepEqual(
      rs.flatMap((r) => (r.kind === 'ejabberd-cluster' ? [`${r.host} ${r.node} -> ${r.seed}`] : [])),
      ['im2 ejabberd@10.0.0.22 -> ejabberd@10.0.0.21'],
    )
    for (const host of ['im1', 'im2']) {
      const file = (path: string) => rs.find((r): r is FileResource => r.kind === 'file' && r.host === host && r.path === path)!
      const cookie = file('/var/lib/ejabberd/.erlang.cookie')
      assert.deepEqual([cookie.content, cookie.owner, cookie.mode, cookie.secret], ['COOKIE0123456789ABCDEFGHIJKLMNOP', 'ejabberd', '400', true])
      const cfg = file('/etc/default/ejabberd').content
      const address = host === 'im1' ? '10.0.0.21' : '10.0.0.22'
      assert.match(cfg, new RegExp(`^ERLANG_NODE=ejabberd@${address.replace(/\./g, '\\.')}$`, 'm'))
      assert.match(cfg, /^FIREWALL_WINDOW=4370-4379$/m)
      assert.match(cfg, new RegExp(`^SPOOL_DIR=/var/lib/ejabberd/mnesia/ejabberd@${address.replace(/\./g, '\\.')}$`, 'm'))
      assert.match(file('/etc/ejabberd/ejabberd.yml').content, new RegExp(`ip: "${address.replace(/\./g, '\\.')}"`))
    }
    assert.deepEqual(ejabberdClusterPorts().map((p) => p.port), [4369, 4370, 4371, 4372, 4373, 4374, 4375, 4376, 4377, 4378, 4379])
  })

  it('balances every node\'s listeners in HAProxy, its stats on loopback', () => {
    const cfg = haResources().find((r): r is FileResource => r.kind === 'file' && r.path === '/etc/haproxy/haproxy.cfg')!
    assert.equal(cfg.host, 'db1')
    for (const [front, port] of [['xmpp', 5222], ['http', 5280], ['mqtt', 1883]] as const) {
      assert.ok(cfg.content.includes(`frontend ${front}\n    bind 10.0.0.11:${port}\n`), cfg.content)
      assert.ok(cfg.content.includes(`    server im1 10.0.0.21:${port} check\n    server im2 10.0.0.22:${port} check\n`), cfg.content)
    }
    assert.ok(cfg.content.includes('bind 127.0.0.1:8404'))
  })

  it('with the firewall on: clients reach HAProxy; the nodes take client ports and Erlang distribution from the cluster only', () => {
    const config = configFrom(HA_YAML + 'firewall: {enabled: true}\n')
    const shown = (host: string) => openPorts(config, host).map((p) => `${p.port} ${p.to}`)
    assert.deepEqual(shown('db1').slice(0, 3), ['5222 public', '5280 public', '1883 public'])
    assert.deepEqual(shown('im2'), ['5222 cluster', '5280 cluster', '1883 cluster', ...ejabberdClusterPorts().map((p) => `${p.port} cluster`)])
  })

  it('a single node keeps exactly its former resources: no cookie, node name or join', () => {
    const config = configFrom(THREE_HOSTS_YAML)
    const rs = desiredState(config, loadManifest(config.release), SECRETS)
    assert.ok(!rs.some((r) => r.kind === 'ejabberd-cluster' || (r.kind === 'file' && (r.path === '/etc/default/ejabberd' || r.path.endsWith('.erlang.cookie')))))
  })
})

describe('planning an ejabberd cluster', () => {
  it('plans nothing for a converged cluster, and a join for a node that left', () => {
    const config = configFrom(HA_YAML)
    const rs = haResources()
    const facts = convergedFacts(config, rs)
    assert.deepEqual(plan(rs, facts).steps, [])
    facts.im2!.ejabberdCluster = ['ejabberd@10.0.0.22']
    const steps = plan(rs, facts).steps
    assert.deepEqual(steps.map((s) => `${s.host}: ${s.what} (${s.why})`), ['im2: join ejabberd node ejabberd@10.0.0.22 to the cluster of ejabberd@10.0.0.21 (its cluster is ejabberd@10.0.0.22)'])
    const run = steps[0]!.run
    assert.ok(run.type === 'exec' && run.commands[0]!.argv.includes('ejabberd@10.0.0.21'))
    delete facts.im2!.ejabberdCluster
    assert.match(plan(rs, facts).steps[0]!.why, /not running yet/)
  })

  it('stops the node under its old name before its ejabberdctl.cfg changes', () => {
    const config = configFrom(HA_YAML)
    const rs = haResources()
    const facts = convergedFacts(config, rs)
    facts.im1!.files['/etc/default/ejabberd'] = {owner: 'root', group: 'root', mode: '644', content: Buffer.from('ERLANG_NODE=ejabberd@localhost\n')}
    const steps = plan(rs, facts).steps
    const write = steps.find((s) => s.what.startsWith('write /etc/default/ejabberd'))!
    assert.ok(write.run.type === 'exec')
    assert.deepEqual(write.run.commands[0]!.argv, ['systemctl', 'stop', 'ejabberd'])
    assert.ok(steps.some((s) => s.host === 'im1' && s.what === 'restart ejabberd'))
  })
})

describe('reading cluster and balancer state', () => {
  it('parses ejabberdctl list_cluster, ignoring anything that is not a node name', () => {
    assert.deepEqual(parseEjabberdCluster("'ejabberd@10.0.0.21'\n'ejabberd@10.0.0.22'\n"), ['ejabberd@10.0.0.21', 'ejabberd@10.0.0.22'])
    assert.deepEqual(parseEjabberdCluster("Failed RPC connection to the node 'ejabberd@10.0.0.22': nodedown\n"), [])
  })

  it('faults a node for a peer it does not run with only when that peer runs', () => {
    const names = ['ejabberd@a', 'ejabberd@b', 'ejabberd@c']
    // c stopped: a and b run together and are fine; c is not running.
    assert.deepEqual(clusterMembership(names, [['ejabberd@a', 'ejabberd@b'], ['ejabberd@b', 'ejabberd@a'], []]), [
      {running: true, members: ['ejabberd@a', 'ejabberd@b'], missing: [], stopped: ['ejabberd@c']},
      {running: true, members: ['ejabberd@b', 'ejabberd@a'], missing: [], stopped: ['ejabberd@c']},
      {running: false, members: [], missing: [], stopped: ['ejabberd@c']},
    ])
    // c left the cluster and runs alone: every node misses someone that runs.
    assert.deepEqual(clusterMembership(names, [['ejabberd@a', 'ejabberd@b'], ['ejabberd@a', 'ejabberd@b'], ['ejabberd@c']]).map((x) => x.missing), [['ejabberd@c'], ['ejabberd@c'], ['ejabberd@a', 'ejabberd@b']])
  })

  it('parses HAProxy\'s stats CSV into server states', () => {
    const csv = '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n' +
      'xmpp,FRONTEND,,,0,1,,1,0,0,0,0,0,,,,,OPEN,\n' +
      'xmpp_nodes,im1,0,0,0,1,,1,0,0,,0,,0,0,0,0,UP,1\n' +
      'xmpp_nodes,im2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1\n' +
      'xmpp_nodes,BACKEND,0,0,0,1,,1,0,0,0,0,,0,0,0,0,UP,1\n'
    assert.deepEqual(parseHaproxyStats(csv), [
      {backend: 'xmpp_nodes', server: 'im1', status: 'UP'},
      {backend: 'xmpp_nodes', server: 'im2', status: 'DOWN'},
    ])
  })
})
