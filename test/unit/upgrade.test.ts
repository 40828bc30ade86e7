import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {parseFeatures, featureCommand} from '../../src/components/kafka/upgrade.js'
import {component} from '../../src/components/registry.js'
import {withRelease} from '../../src/config/edit.js'
import {listReleases, loadManifest, type ReleaseManifest} from '../../src/config/manifest.js'
import type {ComponentName} from '../../src/config/model.js'
import {parseDuration} from '../../src/cli/duration.js'
import {desiredState} from '../../src/plan/desired.js'
import {planChanges} from '../../src/plan/planner.js'
import type {Resource} from '../../src/plan/resources.js'
import {findUpgradePath} from '../../src/ops/upgrade/path.js'
import {compareDotted, planHop, predictFacts} from '../../src/ops/upgrade/plan.js'
import {packageChanges, parsePackageSnapshot, restorePackages} from '../../src/ops/upgrade/steps.js'
import {SECRETS, configFrom, convergedFacts} from './helpers.js'

const ORDER: ComponentName[] = ['postgresql', 'redis', 'ejabberd', 'kafka', 'minio']
const dependsOn = (c: ComponentName) => component(c).dependsOn
const KAFKA_SECRETS = {...SECRETS, kafka: {cluster_id: 'AAAAAAAAAAAAAAAAAAAAAA', broker_password: 'broker-Secret-77aa', imctl_password: 'imctl-Secret-88bb'}}
const R2301 = 'ejabberd-23.01-debian12'
const R2412 = 'ejabberd-24.12-debian12'
const KAFKA43 = 'ejabberd-23.01-debian12-kafka43'

/** db on a, ejabberd on b, Kafka on a, b and c. */
function yaml(release: string): string {
  return `apiVersion: imctl/v1
name: mq
domain: chat.example.org
release: ${release}   # keep this comment
hosts:
  - {name: a, address: 10.0.0.1, auth: {agent: true}}
  - {name: b, address: 10.0.0.2, auth: {agent: true}}
  - {name: c, address: 10.0.0.3, auth: {agent: true}}
components:
  postgresql: {host: a}
  redis: {host: a}
  ejabberd: {host: b}
  kafka: {hosts: [a, b, c]}
`
}

function at(release: string): {resources: Resource[]; manifest: ReleaseManifest} {
  const config = configFrom(yaml(release))
  const manifest = loadManifest(release)
  return {manifest, resources: desiredState(config, manifest, KAFKA_SECRETS)}
}

/** Converged facts of a release: every resource as desired (a package at its pin). */
function convergedOn(release: string) {
  const {resources} = at(release)
  return predictFacts(convergedFacts(configFrom(yaml(release)), resources), resources)
}

function hop(from: string, to: string) {
  const config = configFrom(yaml(to))
  const target = at(to)
  const plan = planChanges(target.resources, convergedOn(from), ORDER, dependsOn, (t) => t, {upgrade: true, ready: () => ({argv: ['true'], description: 'ready'})})
  return planHop({config, from: loadManifest(from), to: target.manifest, plan, resources: target.resources, componentOrder: ORDER, basis: 'observed'})
}

describe('upgrade paths', () => {
  const m = (r: string) => loadManifest(r)
  it('go through the releases each one lists in upgradeFrom', () => {
    assert.deepEqual(findUpgradePath(R2301, R2412, listReleases(), m), [R2301, R2412])
    assert.deepEqual(findUpgradePath(KAFKA43, R2412, listReleases(), m), [KAFKA43, R2301, R2412])
    assert.deepEqual(findUpgradePath(R2412, R2412, listReleases(), m), [R2412])
  })

  it('never go backwards', () => {
    assert.equal(findUpgradePath(R2412, R2301, listReleases(), m), null)
    assert.equal(findUpgradePath(R2301, KAFKA43, listReleases(), m), null)
  })

  it('take the fewest stops', () => {
    const rel = (release: string, upgradeFrom: string[]): ReleaseManifest => ({release, os: 'debian-12', components: {}, upgradeFrom})
    const all: Record<string, ReleaseManifest> = {a: rel('a', []), b: rel('b', ['a']), c: rel('c', ['b']), d: rel('d', ['c', 'a'])}
    assert.deepEqual(findUpgradePath('a', 'd', Object.keys(all), (r) => all[r]!), ['a', 'd'])
    assert.deepEqual(findUpgradePath('b', 'd', Object.keys(all), (r) => all[r]!), ['b', 'c', 'd'])
  })
})

describe('a hop, as the upgrade runs it', () => {
  it('Kafka 4.3.1 -> 4.4.0: jars uploaded first everywhere, then one node at a time, then the feature bump; no downtime', () => {
    const h = hop(KAFKA43, R2301)
    assert.deepEqual(h.prepare.map((s) => `${s.host}: ${s.what}`), ['a: upload kafka 4.4.0 (92 files) to /opt/imctl/kafka-4.4.0', 'b: upload kafka 4.4.0 (92 files) to /opt/imctl/kafka-4.4.0', 'c: upload kafka 4.4.0 (92 files) to /opt/imctl/kafka-4.4.0'])
    assert.deepEqual(h.units.map((u) => [u.id, u.restarts]), [['kafka@a', ['imctl-kafka']], ['kafka@b', ['imctl-kafka']], ['kafka@c', ['imctl-kafka']]])
    assert.deepEqual(h.units[0]!.steps.map((s) => s.action), ['write', 'write', 'restart'])
    assert.deepEqual(h.finalize.map((f) => [f.kind, f.releaseVersion]), [['kafka-features', '4.4']])
    assert.deepEqual(h.downtime.map((d) => [d.component, d.seconds, d.rolling]), [['kafka', 0, true]])
    assert.equal(h.touchesData, false)
    assert.deepEqual(h.migrations, [])
  })

  it('23.01 -> 24.12: the suite first, then ejabberd alone (config, packages, restart), its migration; only ejabberd is down', () => {
    const h = hop(R2301, R2412)
    assert.deepEqual(h.prepare.map((s) => s.what), ['write /etc/apt/sources.list.d/imctl-bookworm-backports.sources (root:root 644)', 'write /etc/apt/preferences.d/imctl-bookworm-backports (root:root 644)'])
    assert.deepEqual(h.units.map((u) => u.id), ['ejabberd@b'])
    assert.deepEqual(h.units[0]!.steps.map((s) => s.action), ['write', 'upgrade', 'restart'])
    assert.deepEqual(h.migrations.map((m) => m.id), ['ejabberd-24.12-sql-schema'])
    assert.deepEqual(h.finalize, [])
    assert.deepEqual(h.downtime.map((d) => [d.component, d.seconds, d.rolling]), [['ejabberd', 36, false]])
    assert.equal(h.touchesData, true)
  })

  it('the hop back (a rollback) lowers nothing by feature and restarts Kafka node by node too', () => {
    const h = hop(R2301, KAFKA43)
    assert.deepEqual(h.units.map((u) => u.id), ['kafka@a', 'kafka@b', 'kafka@c'])
    assert.deepEqual(h.finalize, [])
  })

  it('compareDotted orders versions numerically', () => {
    assert.equal(compareDotted('4.10.0', '4.4.0'), 1)
    assert.equal(compareDotted('4.3.1', '4.4.0'), -1)
    assert.equal(compareDotted('4.4', '4.4.0'), 0)
  })
})

describe('rollback and run helpers', () => {
  it('a package snapshot keeps installed packages only', () => {
    assert.deepEqual(parsePackageSnapshot('ejabberd\t23.01-1\tinstalled\nfoo\t1.0\tconfig-files\n'), {ejabberd: '23.01-1'})
  })

  it('puts back every package whose version moved, and names those the upgrade added', () => {
    const d = packageChanges({ejabberd: '23.01-1', 'erlang-p1-xmpp': '1.6.1-1', bash: '5.2'}, {ejabberd: '24.12-3~bpo12+1', 'erlang-p1-xmpp': '1.9.4-1~bpo12+1', bash: '5.2', 'erlang-new': '1'})
    assert.deepEqual(d.restore, [{name: 'ejabberd', version: '23.01-1'}, {name: 'erlang-p1-xmpp', version: '1.6.1-1'}])
    assert.deepEqual(d.added, ['erlang-new'])
    assert.deepEqual(restorePackages(d.restore).argv.slice(-3), ['Dpkg::Options::=--force-confold', 'ejabberd=23.01-1', 'erlang-p1-xmpp=1.6.1-1'])
  })

  it('FeatureCommand goes through the controller listener, and its describe output parses', () => {
    const c = featureCommand('/opt/imctl/kafka-4.4.0', '10.0.0.1', 9093, ['upgrade', '--release-version', '4.4'])
    assert.equal(c.asUser, 'kafka')
    assert.deepEqual(c.argv.slice(-5), ['/opt/imctl/kafka-4.4.0', '10.0.0.1:9093', 'upgrade', '--release-version', '4.4'])
    const out = [
      'Feature: kraft.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 0\tEpoch: 11',
      'Feature: metadata.version          SupportedMinVersion: 3.3-IV3          SupportedMaxVersion: 4.4-IV2          FinalizedVersionLevel: 4.3-IV0          Epoch: 11',
    ].join('\n')
    assert.deepEqual(parseFeatures(out), {'kraft.version': '0', 'metadata.version': '4.3-IV0'})
  })

  it('cluster.yaml gets its new release and keeps every other byte', () => {
    const before = yaml(R2301)
    const after = withRelease(before, R2412, '/tmp/imctl-unit/cluster.yaml')
    assert.equal(after, before.replace(`release: ${R2301}`, `release: ${R2412}`))
    assert.match(after, /# keep this comment/)
    assert.throws(() => withRelease(before, 'no-such-release', '/tmp/imctl-unit/cluster.yaml'))
  })

  it('--backup-max-age takes s, m, h, d', () => {
    assert.equal(parseDuration('6h', '--backup-max-age'), 6 * 3600_000)
    assert.equal(parseDuration('30m', '--backup-max-age'), 30 * 60_000)
    assert.equal(parseDuration('2', '--backup-max-age'), 2 * 3600_000)
    assert.throws(() => parseDuration('soon', '--backup-max-age'), /not a duration/)
  })
})
