import assert from 'node:assert/strict'
import {openPorts} from '../../src/plan/firewall.js'
import {describe, it} from 'node:test'
import {describeCluster, describeMember, etcdHealthQuery, parseEtcdHealth, parsePatroniCluster} from '../../src/components/postgresql/health.js'
import {ValidationError} from '../../src/errors.js'
import {loadManifest} from '../../src/config/manifest.js'
import {desiredState, primaryEndpoint} from '../../src/plan/desired.js'
import type {FileResource, Resource} from '../../src/plan/resources.js'
import {COMPONENTS, component} from '../../src/components/registry.js'
import {emptyFacts} from '../../src/plan/facts.js'
import {planChanges} from '../../src/plan/planner.js'
import {configFrom, convergedFacts, SECRETS, THREE_HOSTS_YAML} from './helpers.js'

const PATRONI_SECRETS = {...SECRETS, patroni: {superuser_password: 'su-Secret-9a8b7c6d5e', replication_password: 'repl-Secret-1a2b3c4d5e', restapi_password: 'api-Secret-5e4d3c2b1a'}}

/** db1, db2 under Patroni; etcd on db1, db2 and im1; ejabberd on im1. */
const PATRONI_YAML = THREE_HOSTS_YAML.replace('  - name: im1', '  - name: db2\n    address: 10.0.0.14\n    auth: {agent: true}\n  - name: im1').replace(
  'postgresql: {host: db1}',
  'postgresql: {hosts: [db1, db2], etcd: [db1, db2, im1]}',
)

function problemsOf(yaml: string): [string, string, number][] {
  try {
    configFrom(yaml)
  } catch (e) {
    assert.ok(e instanceof ValidationError, String(e))
    return e.problems.map((p) => [p.path, p.message, p.line])
  }
  return []
}

describe('postgresql.hosts: Patroni mode in cluster.yaml', () => {
  it('with a firewall, every PostgreSQL node opens replication and the REST API, every etcd member its two ports, to the cluster only', () => {
    const config = configFrom(PATRONI_YAML)
    const ports = (h: string) => openPorts(config, h).map((p) => `${p.port} ${p.to}`)
    assert.deepEqual(ports('db1'), ['5432 cluster', '8008 cluster', '2379 cluster', '2380 cluster'])
    assert.deepEqual(ports('db2'), ['5432 cluster', '8008 cluster', '2379 cluster', '2380 cluster'])
    assert.deepEqual(ports('im1').slice(3), ['2379 cluster', '2380 cluster'])
  })

  it('fills in the first node as `host`, etcd members and the proxy port', () => {
    const config = configFrom(PATRONI_YAML)
    assert.deepEqual(config.components.postgresql, {host: 'db1', port: 5432, patroni: {hosts: ['db1', 'db2'], etcd: ['db1', 'db2', 'im1'], proxyPort: 6432}})
  })

  it('etcd defaults to the nodes when they are an odd number of 3 or more', () => {
    const yaml = PATRONI_YAML.replace('  - name: im1', '  - name: db3\n    address: 10.0.0.15\n    auth: {agent: true}\n  - name: im1').replace('{hosts: [db1, db2], etcd: [db1, db2, im1]}', '{hosts: [db1, db2, db3]}')
    assert.deepEqual(configFrom(yaml).components.postgresql.patroni?.etcd, ['db1', 'db2', 'db3'])
  })

  it('refuses two nodes without an etcd member set, and an even one, at their line', () => {
    const two = problemsOf(PATRONI_YAML.replace(', etcd: [db1, db2, im1]', ''))
    assert.equal(two.length, 1)
    assert.equal(two[0]![0], 'components.postgresql.hosts')
    assert.match(two[0]![1], /^2 etcd members: etcd needs a majority, so it survives the loss of one member only with an odd number of 3 or more/)
    assert.equal(two[0]![2], 22)
    const four = problemsOf(PATRONI_YAML.replace('etcd: [db1, db2, im1]', 'etcd: [db1, db2, im1, cache1]'))
    assert.deepEqual(four.map((p) => p[0]), ['components.postgresql.etcd'])
  })

  it('refuses `host` with `hosts`, neither, unknown hosts, and Patroni keys without `hosts`', () => {
    assert.deepEqual(problemsOf(PATRONI_YAML.replace('{hosts:', '{host: db1, hosts:')).map((p) => p[1]), ['give `host` or `hosts`, not both'])
    assert.deepEqual(problemsOf(PATRONI_YAML.replace('{hosts: [db1, db2], etcd: [db1, db2, im1]}', '{port: 5432}')).map((p) => p[1]), ['missing `host` (one node) or `hosts` (Patroni)'])
    assert.deepEqual(problemsOf(PATRONI_YAML.replace('etcd: [db1, db2, im1]', 'etcd: [db1, db2, nope]')).map((p) => [p[0], p[1]]), [['components.postgresql.etcd[2]', 'no host named "nope"']])
    assert.deepEqual(problemsOf(THREE_HOSTS_YAML.replace('postgresql: {host: db1}', 'postgresql: {host: db1, proxyPort: 7000}')).map((p) => p[1]), ['`proxyPort` is for Patroni mode (`hosts` with 2 or more nodes)'])
    assert.deepEqual(problemsOf(PATRONI_YAML.replace('[db1, db2], etcd', '[db1], etcd')).map((p) => p[0]), ['components.postgresql.hosts'])
  })

  it('claims Patroni\'s, etcd\'s and the proxy\'s ports', () => {
    const p = problemsOf(PATRONI_YAML.replace('ejabberd: {host: im1}', 'ejabberd: {host: im1, ports: {c2s: 6432}}'))
    assert.deepEqual(p.map((x) => x[1]), ['port 6432 on host im1 is already used by the PostgreSQL proxy'])
    const r = problemsOf(PATRONI_YAML.replace('redis: {host: cache1}', 'redis: {host: db2, port: 8008}'))
    assert.deepEqual(r.map((x) => x[1]), ["port 8008 on host db2 is already used by Patroni's REST API"])
  })
})

describe('Patroni mode: desired state', () => {
  const config = configFrom(PATRONI_YAML)
  const resources = desiredState(config, loadManifest(config.release), PATRONI_SECRETS)
  const on = (host: string) => resources.filter((r) => r.host === host)
  const file = (host: string, path: string) => on(host).find((r): r is FileResource => r.kind === 'file' && r.path === path)!

  it('ejabberd and health reach the primary through the IM host\'s own proxy', () => {
    assert.deepEqual(primaryEndpoint(config, 'ejabberd'), {address: '127.0.0.1', port: 6432})
    assert.match(file('im1', '/etc/ejabberd/ejabberd.yml').content, /sql_server: "127\.0\.0\.1"\nsql_port: 6432\n/)
    const single = configFrom(THREE_HOSTS_YAML)
    assert.deepEqual(primaryEndpoint(single, 'ejabberd'), {address: '10.0.0.11', port: 5432})
  })

  it('puts Patroni on the nodes, etcd on its members, HAProxy on the IM host', () => {
    const units = (host: string) => on(host).flatMap((r) => (r.kind === 'service' ? [r.unit] : []))
    assert.deepEqual(units('db1'), ['etcd', 'patroni'])
    assert.deepEqual(units('db2'), ['etcd', 'patroni'])
    assert.deepEqual(units('im1'), ['etcd', 'imctl-pg-proxy', 'ejabberd'])
    assert.deepEqual(units('cache1'), ['redis-server'])
    const pkgs = (host: string) => on(host).flatMap((r) => (r.kind === 'packages' ? r.packages.map((p) => p.name) : []))
    assert.deepEqual(pkgs('db2'), ['etcd-server', 'etcd-client', 'postgresql-15', 'postgresql-client-15', 'patroni', 'python3-etcd'])
    assert.ok(pkgs('im1').includes('haproxy'))
    // The first node bootstraps and holds the role and database; the second waits for a primary.
    assert.deepEqual(on('db1').flatMap((r) => (r.kind === 'pg-role' || r.kind === 'pg-database' ? [r.kind] : [])), ['pg-role', 'pg-database'])
    assert.deepEqual(on('db2').flatMap((r) => (r.kind === 'once' ? [r.name] : [])), ['postgresql-main-stopped', 'patroni-primary-up'])
    assert.deepEqual(on('db1').flatMap((r) => (r.kind === 'once' ? [r.name] : [])), ['postgresql-main-stopped'])
    // Debian's main cluster is stopped, never dropped, and not at all while it holds ejabberd's data.
    const retire = on('db1').find((r) => r.kind === 'once' && r.name === 'postgresql-main-stopped')
    assert.ok(retire?.kind === 'once' && /holds the ejabberd database/.test(retire.command.argv.join(' ')) && !/pg_dropcluster/.test(retire.command.argv.join(' ')))
  })

  it('keeps Patroni\'s passwords in its 0600 config owned by postgres, never in a command', () => {
    const conf = file('db1', '/etc/patroni/config.yml')
    assert.deepEqual([conf.owner, conf.mode, conf.secret], ['postgres', '600', true])
    for (const s of Object.values(PATRONI_SECRETS.patroni)) assert.ok(conf.content.includes(s))
    assert.match(conf.content, /etcd3:\n {2}hosts:\n {4}- 10\.0\.0\.11:2379\n {4}- 10\.0\.0\.14:2379\n {4}- 10\.0\.0\.13:2379\n/)
    assert.match(conf.content, /- host replication replicator 10\.0\.0\.14\/32 scram-sha-256/)
    const argv = JSON.stringify(resources.flatMap((r: Resource) => (r.kind === 'once' ? [r.command.argv] : r.kind === 'service' && r.ready ? [r.ready.argv] : [])))
    for (const s of Object.values(PATRONI_SECRETS.patroni)) assert.ok(!argv.includes(s))
  })

  it('gives etcd a static cluster and HAProxy a /primary check on every node', () => {
    assert.match(file('im1', '/etc/default/etcd').content, /ETCD_INITIAL_CLUSTER="db1=http:\/\/10\.0\.0\.11:2380,db2=http:\/\/10\.0\.0\.14:2380,im1=http:\/\/10\.0\.0\.13:2380"/)
    const cfg = file('im1', '/etc/imctl-pg-proxy/haproxy.cfg').content
    assert.match(cfg, /bind 127\.0\.0\.1:6432\n {2}option httpchk GET \/primary\n/)
    assert.match(cfg, /server db1 10\.0\.0\.11:5432 check port 8008\n {2}server db2 10\.0\.0\.14:5432 check port 8008\n/)
  })
})

describe('Patroni mode: a config change on a running cluster', () => {
  it('reloads Patroni (a restart of the primary would be a failover); a fresh install restarts it', () => {
    // Given a converged cluster, When a host is added (every node's pg_hba lets it in)
    const config = configFrom(PATRONI_YAML)
    const before = desiredState(config, loadManifest(config.release), PATRONI_SECRETS)
    const facts = convergedFacts(config, before)
    // (what the shared fixture does not know: Patroni's packages, once markers, the proxy's directory)
    for (const r of before) {
      const f = facts[r.host]!
      if (r.kind === 'packages') for (const p of r.packages) f.packages[p.name] ??= p.version.replace('*', '1')
      if (r.kind === 'once') f.paths[r.marker] = {type: 'file', owner: 'root', group: 'root', mode: '644'}
      if (r.kind === 'directory') f.paths[r.path] = {type: 'directory', owner: r.owner, group: r.group, mode: r.mode}
    }
    assert.equal(planChanges(before, facts, COMPONENTS.map((c) => c.name), (c) => component(c).dependsOn).steps.length, 0)
    const grown = configFrom(PATRONI_YAML.replace('  - name: im1', '  - name: extra\n    address: 10.0.0.20\n    auth: {agent: true}\n  - name: im1'))
    const after = desiredState(grown, loadManifest(grown.release), PATRONI_SECRETS)
    facts.extra = emptyFacts('extra')
    const plan = planChanges(after, facts, COMPONENTS.map((c) => c.name), (c) => component(c).dependsOn)
    const steps = plan.steps.map((s) => `${s.host}: ${s.action} ${s.what.split(' (')[0]}`)
    // Then Patroni is reloaded on both nodes, never restarted
    assert.ok(steps.includes('db1: reload reload patroni') && steps.includes('db2: reload reload patroni'), steps.join('\n'))
    assert.ok(!steps.some((s) => /restart patroni/.test(s)), steps.join('\n'))
    const reload = plan.steps.find((s) => s.host === 'db1' && s.action === 'reload')!
    assert.deepEqual(reload.run.type === 'exec' && reload.run.commands.map((c) => c.argv.join(' ')), ['systemctl reload patroni', 'systemctl is-active --quiet patroni', 'rm -f /var/lib/imctl/restart-pending/patroni'])
    // And on a host where packages are being installed, it is a restart with the managed configuration
    delete facts.db2!.packages.patroni
    const fresh = planChanges(after, facts, COMPONENTS.map((c) => c.name), (c) => component(c).dependsOn).steps.map((s) => `${s.host}: ${s.action} ${s.what}`)
    assert.ok(fresh.includes('db2: restart restart patroni'), fresh.join('\n'))
  })
  it('a config change left pending by an interrupted run is reloaded too (only patroni.yml, reloadable, notifies Patroni)', () => {
    // Given a converged cluster whose db1 has Patroni's restart marker
    const config = configFrom(PATRONI_YAML)
    const resources = desiredState(config, loadManifest(config.release), PATRONI_SECRETS)
    const facts = convergedFacts(config, resources)
    for (const r of resources) {
      const f = facts[r.host]!
      if (r.kind === 'packages') for (const p of r.packages) f.packages[p.name] ??= p.version.replace('*', '1')
      if (r.kind === 'once') f.paths[r.marker] = {type: 'file', owner: 'root', group: 'root', mode: '644'}
      if (r.kind === 'directory') f.paths[r.path] = {type: 'directory', owner: r.owner, group: r.group, mode: r.mode}
    }
    facts.db1!.pendingRestarts = ['patroni']
    // When planned, Then it is a reload, not a restart (a failover)
    const steps = planChanges(resources, facts, COMPONENTS.map((c) => c.name), (c) => component(c).dependsOn).steps
    assert.deepEqual(steps.map((s) => `${s.host}: ${s.action} ${s.what}: ${s.why}`), ['db1: reload reload patroni: a config change from an interrupted run is not live yet'])
  })
})

describe('Patroni health: reading /cluster and etcd', () => {
  const members = parsePatroniCluster(
    JSON.stringify({
      members: [
        {name: 'db1', role: 'leader', state: 'running', timeline: 2},
        {name: 'db2', role: 'replica', state: 'streaming', timeline: 2, lag: 2097152},
      ],
      scope: 'imctl-x',
    }),
  )

  it('names the leader and each replica\'s lag', () => {
    assert.deepEqual(describeCluster(members), {ok: true, detail: 'leader db1 (timeline 2); replicas: db2 streaming'})
    assert.deepEqual(describeMember(members, 'db1'), {ok: true, detail: 'leader (primary), timeline 2'})
    assert.deepEqual(describeMember(members, 'db2'), {ok: true, detail: 'replica, streaming, lag 2.0 MB, timeline 2'})
  })

  it('a missing member fails its own check; no leader fails the cluster', () => {
    assert.equal(describeMember(members.slice(0, 1), 'db2').ok, false)
    assert.equal(describeMember([{name: 'db2', role: 'replica', state: 'running', lag: 'unknown'}], 'db2').ok, false)
    const noLeader = describeCluster([{name: 'db2', role: 'replica', state: 'running'}])
    assert.equal(noLeader.ok, false)
    assert.match(noLeader.detail, /^no running leader \(members: db2 replica running\)/)
    assert.throws(() => parsePatroniCluster('{"x": 1}'), /no members list/)
  })

  it('reads etcdctl endpoint health, healthy or not', () => {
    assert.deepEqual(etcdHealthQuery(['http://a:2379', 'http://b:2379']).argv, ['etcdctl', '--endpoints=http://a:2379,http://b:2379', '--dial-timeout=3s', '--command-timeout=5s', 'endpoint', 'health', '-w', 'json'])
    const out = '{"level":"warn","msg":"retrying"}\n[{"endpoint":"http://a:2379","health":true,"took":"2ms"},{"endpoint":"http://b:2379","health":false,"error":"context deadline exceeded"}]\n'
    assert.deepEqual(parseEtcdHealth(out), {'http://a:2379': true, 'http://b:2379': false})
  })
})
