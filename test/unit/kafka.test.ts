import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {formatStorage, kafkaNodes, waitForListener} from '../../src/components/kafka/index.js'
import {parseQuorumStatus, quorumStatusQuery} from '../../src/components/kafka/health.js'
import {component} from '../../src/components/registry.js'
import {loadManifest} from '../../src/config/manifest.js'
import type {ComponentName} from '../../src/config/model.js'
import {desiredState} from '../../src/plan/desired.js'
import {emptyFacts, type HostFacts} from '../../src/plan/facts.js'
import {planChanges} from '../../src/plan/planner.js'
import {artifactSums, type FileResource, type Resource} from '../../src/plan/resources.js'
import {RELEASE, SECRETS, configFrom} from './helpers.js'

const KAFKA_SECRETS = {...SECRETS, kafka: {cluster_id: 'AAAAAAAAAAAAAAAAAAAAAA', broker_password: 'broker-Secret-77aa', imctl_password: 'imctl-Secret-88bb'}}

function clusterYaml(kafkaHosts: string[]): string {
  return `apiVersion: imctl/v1
name: mq
domain: chat.example.org
release: ${RELEASE}
hosts:
  - {name: a, address: 10.0.0.1, auth: {agent: true}}
  - {name: b, address: 10.0.0.2, auth: {agent: true}}
  - {name: c, address: 10.0.0.3, auth: {agent: true}}
components:
  postgresql: {host: a}
  redis: {host: a}
  ejabberd: {host: a}
  kafka: {hosts: [${kafkaHosts.join(', ')}]}
`
}

function kafkaResources(hosts: string[]): Resource[] {
  const config = configFrom(clusterYaml(hosts))
  return desiredState(config, loadManifest(config.release), KAFKA_SECRETS).filter((r) => r.component === 'kafka')
}

function serverProperties(rs: Resource[], host: string): string {
  const f = rs.find((r): r is FileResource => r.kind === 'file' && r.host === host && r.path === '/etc/kafka/server.properties')
  assert.ok(f, `no server.properties for ${host}`)
  return f.content
}

describe('Kafka resources', () => {
  it('three nodes: ids in host order, the same static voters everywhere, replication 3 with min.insync 2', () => {
    // Given three Kafka hosts, When the desired state is computed
    const rs = kafkaResources(['a', 'b', 'c'])
    // Then each node binds to its own address and lists every voter
    const b = serverProperties(rs, 'b')
    assert.match(b, /^node\.id=2$/m)
    assert.match(b, /^controller\.quorum\.voters=1@10\.0\.0\.1:9093,2@10\.0\.0\.2:9093,3@10\.0\.0\.3:9093$/m)
    assert.match(b, /^listeners=CLIENT:\/\/10\.0\.0\.2:9092,CONTROLLER:\/\/10\.0\.0\.2:9093$/m)
    assert.match(b, /^default\.replication\.factor=3$/m)
    assert.match(b, /^min\.insync\.replicas=2$/m)
    assert.match(b, /^offsets\.topic\.replication\.factor=3$/m)
    assert.match(b, /username="broker" password="broker-Secret-77aa"/)
    // and every host gets the same ordered steps
    const kinds = rs.filter((r) => r.host === 'c').map((r) => `${r.kind}${r.kind === 'file' ? ` ${r.path}` : ''}`)
    assert.deepEqual(kinds, [
      'packages',
      'system-user',
      'artifact',
      'directory',
      'directory',
      'directory',
      'file /etc/kafka/server.properties',
      'file /etc/kafka/log4j2.properties',
      'file /etc/kafka/tools-log4j2.properties',
      'file /etc/systemd/system/imctl-kafka.service',
      'once',
      'service',
    ])
  })

  it('one node: replication factor 1 for Kafka\'s own topics, or its consumers get nothing', () => {
    const a = serverProperties(kafkaResources(['a']), 'a')
    assert.match(a, /^controller\.quorum\.voters=1@10\.0\.0\.1:9093$/m)
    assert.match(a, /^offsets\.topic\.replication\.factor=1$/m)
    assert.match(a, /^transaction\.state\.log\.min\.isr=1$/m)
    assert.match(a, /^min\.insync\.replicas=1$/m)
  })

  it('node ids follow cluster.yaml order', () => {
    assert.deepEqual(kafkaNodes(configFrom(clusterYaml(['c', 'a', 'b']))).map((n) => `${n.host}=${n.nodeId}`), ['c=1', 'a=2', 'b=3'])
  })

  it('Java comes from hostPackages, merged into the host\'s one apt run', () => {
    const config = configFrom(clusterYaml(['a', 'b', 'c']))
    const all = desiredState(config, loadManifest(config.release), KAFKA_SECRETS)
    const pkgs = all.filter((r) => r.kind === 'packages').map((r) => `${r.host}: ${r.kind === 'packages' ? r.packages.map((p) => p.name).join(' ') : ''}`)
    assert.deepEqual(pkgs, [
      'a: postgresql-15 postgresql-client-15 redis-server ejabberd erlang-p1-pgsql erlang-redis-client openjdk-17-jre-headless',
      'b: openjdk-17-jre-headless',
      'c: openjdk-17-jre-headless',
    ])
  })
})

describe('Kafka builders', () => {
  it('formats storage with passwords only on stdin, as the kafka user', () => {
    const {command} = formatStorage('/opt/imctl/kafka-4.4.0', 'AAAAAAAAAAAAAAAAAAAAAA', KAFKA_SECRETS.kafka)
    assert.equal(command.asUser, 'kafka')
    assert.ok(!command.argv.join(' ').includes('Secret'), 'no password in argv')
    assert.equal(
      command.stdin,
      [
        '-Dlog4j2.configurationFile=/etc/kafka/tools-log4j2.properties',
        '-cp',
        '"/opt/imctl/kafka-4.4.0/libs/*"',
        'kafka.tools.StorageTool',
        'format',
        '--cluster-id',
        '"AAAAAAAAAAAAAAAAAAAAAA"',
        '--config',
        '/etc/kafka/server.properties',
        '--add-scram',
        '"SCRAM-SHA-512=[name=broker,password=broker-Secret-77aa]"',
        '--add-scram',
        '"SCRAM-SHA-512=[name=imctl,password=imctl-Secret-88bb]"',
        '',
      ].join('\n'),
    )
  })

  it('quotes argument-file values that hold quotes or backslashes', () => {
    const {command} = formatStorage('/opt/k', 'id', {cluster_id: 'id', broker_password: 'a"b\\c', imctl_password: 'x'})
    assert.ok(String(command.stdin).includes('"SCRAM-SHA-512=[name=broker,password=a\\"b\\\\c]"'))
  })

  it('waits for the client listener by port', () => {
    assert.deepEqual(waitForListener('10.0.0.2', 9092, 5).argv.slice(4), ['10.0.0.2', '9092', '5'])
  })

  it('asks the quorum through the controller listener with Kafka\'s own tool', () => {
    const q = quorumStatusQuery('/opt/imctl/kafka-4.4.0', '10.0.0.1', 9093)
    assert.deepEqual(q.argv.slice(3), ['sh', '/opt/imctl/kafka-4.4.0', '10.0.0.1:9093'])
    assert.match(q.argv[2]!, /org\.apache\.kafka\.tools\.MetadataQuorumCommand --bootstrap-controller "\$2" describe --status/)
  })

  it('parses the quorum status of Kafka 4.x', () => {
    // As printed by MetadataQuorumCommand 4.4 (abridged).
    const out = `ClusterId:              3BoNOwaBIzz8aX-2Z3e_1Q
LeaderId:               2
LeaderEpoch:            1
HighWatermark:          1510
MaxFollowerLag:         0
MaxFollowerLagTimeMs:   0
CurrentVoters:          [{"id": 1, "endpoints": ["CONTROLLER://10.89.0.3:9093"]}, {"id": 2, "endpoints": ["CONTROLLER://10.89.0.2:9093"]}, {"id": 3, "endpoints": ["CONTROLLER://10.89.0.4:9093"]}]
CurrentObservers:       []
`
    assert.deepEqual(parseQuorumStatus(out), {leaderId: 2, voters: [1, 2, 3], highWatermark: 1510})
    assert.throws(() => parseQuorumStatus('nothing here'), /no LeaderId/)
  })
})

describe('planner: users, directories, artifacts, run-once steps', () => {
  const ORDER: ComponentName[] = ['postgresql', 'redis', 'ejabberd', 'kafka']
  // Kafka alone on host b (a's packages step belongs to the components placed there first).
  const rs = kafkaResources(['b']).map((r) => ({...r, host: 'a'}) as Resource)
  const plan = (facts: HostFacts) => planChanges(rs, {a: facts}, ORDER, (c) => component(c).dependsOn, (t) => t)

  it('on a bare host: user, upload, directories, files, format, (re)start', () => {
    const p = plan(emptyFacts('a'))
    assert.deepEqual(
      p.steps.map((s) => `${s.action} ${s.what}`),
      [
        'install install openjdk-17-jre-headless',
        'create create system user kafka',
        'upload upload kafka 4.4.0 (92 files) to /opt/imctl/kafka-4.4.0',
        'create directory /var/lib/kafka (kafka:kafka 750)',
        'create directory /var/lib/kafka/data (kafka:kafka 750)',
        'create directory /etc/kafka (root:kafka 750)',
        'write write /etc/kafka/server.properties (root:kafka 640)',
        'write write /etc/kafka/log4j2.properties (root:kafka 644)',
        'write write /etc/kafka/tools-log4j2.properties (root:kafka 644)',
        'write write /etc/systemd/system/imctl-kafka.service (root:root 644)',
        "run format Kafka's storage in /var/lib/kafka/data (node 1)",
        'restart restart imctl-kafka',
      ],
    )
    const unitWrite = p.steps.find((s) => s.what.includes('imctl-kafka.service'))!
    assert.ok(unitWrite.run.type === 'exec' && unitWrite.run.commands.some((c) => c.argv.join(' ') === 'systemctl daemon-reload'))
  })

  it('a formatted node is never formatted again, and a complete upload is not repeated', () => {
    const f = emptyFacts('a')
    f.packages['openjdk-17-jre-headless'] = '17.0.15+6-1~deb12u1'
    f.users.kafka = true
    for (const r of rs) {
      if (r.kind === 'directory') f.paths[r.path] = {type: 'directory', owner: r.owner, group: r.group, mode: r.mode}
      if (r.kind === 'file') f.files[r.path] = {owner: r.owner, group: r.group, mode: r.mode, content: Buffer.from(r.content)}
      if (r.kind === 'artifact') f.files[`${r.dir}/SHA256SUMS`] = {owner: 'root', group: 'root', mode: '644', content: Buffer.from(artifactSums(r.files))}
      if (r.kind === 'once') f.paths[r.marker] = {type: 'file', owner: 'kafka', group: 'kafka', mode: '644'}
      if (r.kind === 'service') f.services[r.unit] = {loaded: true, active: true, enabled: true}
    }
    const p = plan(f)
    assert.deepEqual(p.steps, [])
    assert.equal(p.unchanged, rs.length)
    // A directory with the wrong owner is fixed in place; a file where a directory belongs blocks the plan.
    f.paths['/var/lib/kafka/data'] = {type: 'directory', owner: 'root', group: 'root', mode: '755'}
    f.paths['/etc/kafka'] = {type: 'file', owner: 'root', group: 'root', mode: '644'}
    const q = plan(f)
    assert.deepEqual(q.steps.map((s) => `${s.what}: ${s.why}`), ['directory /var/lib/kafka/data (kafka:kafka 750): owner/mode is root:root 755'])
    assert.deepEqual(q.blockers, ['a: /etc/kafka should be a directory but is a file; move it away'])
  })
})
