import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {component} from '../../src/components/registry.js'
import {extendManifest, listReleases, loadManifest, type ReleaseManifest} from '../../src/config/manifest.js'
import type {ComponentName} from '../../src/config/model.js'
import {redact} from '../../src/config/secrets.js'
import {desiredState} from '../../src/plan/desired.js'
import {installPackages, planChanges, upgradePackages} from '../../src/plan/planner.js'
import type {FileResource, Resource} from '../../src/plan/resources.js'
import {ONE_HOST_YAML, SECRET_VALUES, SECRETS, configFrom, convergedFacts} from './helpers.js'

const ORDER: ComponentName[] = ['postgresql', 'redis', 'ejabberd']
const dependsOn = (c: ComponentName) => component(c).dependsOn
const R2301 = 'ejabberd-23.01-debian12'
const R2412 = 'ejabberd-24.12-debian12'
const KAFKA43 = 'ejabberd-23.01-debian12-kafka43'

function resources(release: string): Resource[] {
  const config = configFrom(ONE_HOST_YAML.replace(/^release: .*$/m, `release: ${release}`))
  return desiredState(config, loadManifest(release), SECRETS)
}

const fileAt = (rs: Resource[], path: string) => rs.find((r): r is FileResource => r.kind === 'file' && r.path === path)

describe('release manifests', () => {
  it('ship 23.01, its Kafka 4.3.1 sibling and 24.12', () => {
    for (const r of [R2301, KAFKA43, R2412]) assert.ok(listReleases().includes(r), r)
  })

  it('24.12 takes ejabberd and its drivers from bookworm-backports, PostgreSQL and Redis from Debian 12', () => {
    const m = loadManifest(R2412)
    assert.deepEqual(
      m.components.ejabberd!.packages.map((p) => `${p.name} ${p.version} ${p.suite}`),
      ['ejabberd 24.12-* bookworm-backports', 'erlang-p1-pgsql 1.1.31-* bookworm-backports', 'erlang-redis-client 1.2.0-8* bookworm-backports'],
    )
    assert.deepEqual(m.components.postgresql, loadManifest(R2301).components.postgresql)
    assert.deepEqual(m.components.redis, loadManifest(R2301).components.redis)
    assert.equal(m.aptSuites?.['bookworm-backports']?.uri, 'http://deb.debian.org/debian')
    assert.deepEqual(m.upgradeFrom, [R2301])
    assert.deepEqual(m.migrations?.map((x) => [x.id, x.component, x.run.type]), [['ejabberd-24.12-sql-schema', 'ejabberd', 'at-start']])
  })

  it('the Kafka 4.3.1 sibling is 23.01 with other jars, and 23.01 is reached from it', () => {
    const base = loadManifest(R2301)
    const sib = loadManifest(KAFKA43)
    assert.equal(sib.release, KAFKA43)
    assert.deepEqual(sib.components, base.components)
    assert.deepEqual(sib.hostPackages, base.hostPackages)
    assert.equal(sib.artifacts?.kafka?.version, '4.3.1')
    assert.equal(sib.artifacts?.kafka?.sums, 'manifests/sums/kafka-4.3.1.sha256')
    assert.deepEqual(sib.artifacts?.minio, base.artifacts?.minio)
    assert.equal(sib.upgradeFrom, undefined, 'upgradeFrom is never inherited')
    assert.deepEqual(base.upgradeFrom, [KAFKA43])
  })

  it('extends replaces entry by entry and never inherits upgrade data', () => {
    const base: ReleaseManifest = {
      release: 'a',
      os: 'debian-12',
      components: {x: {version: '1', packages: []}, y: {version: '1', packages: []}},
      artifacts: {k: {version: '1', recipe: 'r', sums: 's'}},
      upgradeFrom: ['z'],
      migrations: [{id: 'm', component: 'x', what: 'w', run: {type: 'at-start'}, check: {database: 'd', sql: 'q', expect: '1'}}],
    }
    const own = {release: 'b', os: 'debian-12', extends: 'a', components: {y: {version: '2', packages: []}}} as unknown as ReleaseManifest
    const m = extendManifest(base, own)
    assert.deepEqual(Object.fromEntries(Object.entries(m.components).map(([k, v]) => [k, v.version])), {x: '1', y: '2'})
    assert.equal(m.artifacts?.k?.version, '1')
    assert.equal(m.upgradeFrom, undefined)
    assert.equal(m.migrations, undefined)
    assert.equal(m.extends, undefined)
  })
})

describe('packages from another apt suite', () => {
  it('24.12 adds a sources entry and a pin for exactly its three packages; 23.01 adds none', () => {
    const rs = resources(R2412)
    const sources = fileAt(rs, '/etc/apt/sources.list.d/imctl-bookworm-backports.sources')!
    const pin = fileAt(rs, '/etc/apt/preferences.d/imctl-bookworm-backports')!
    assert.equal(sources.aptSource, true)
    assert.equal(sources.component, 'ejabberd')
    assert.match(sources.content, /^Types: deb\nURIs: http:\/\/deb\.debian\.org\/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: \/usr\/share\/keyrings\/debian-archive-keyring\.gpg\n$/m)
    assert.match(pin.content, /^Package: ejabberd erlang-p1-pgsql erlang-redis-client\nPin: release n=bookworm-backports\nPin-Priority: 500\n$/m)
    assert.equal(resources(R2301).filter((r) => r.kind === 'file' && r.aptSource).length, 0)
  })

  it('a fresh install writes them before apt runs, and installs the suite\'s packages with -t', () => {
    const rs = resources(R2412)
    const facts = convergedFacts(configFrom(ONE_HOST_YAML), [])
    facts.box!.files = {}
    for (const r of rs) if (r.kind === 'packages') for (const p of r.packages) facts.box!.packages[p.name] = null
    const plan = planChanges(rs, facts, ORDER, dependsOn, (t) => redact(t, SECRET_VALUES))
    assert.deepEqual(plan.steps.slice(0, 3).map((s) => s.what), [
      'write /etc/apt/sources.list.d/imctl-bookworm-backports.sources (root:root 644)',
      'write /etc/apt/preferences.d/imctl-bookworm-backports (root:root 644)',
      'install postgresql-15 postgresql-client-15 redis-server ejabberd erlang-p1-pgsql erlang-redis-client',
    ])
    const install = plan.steps[2]!.run
    assert.equal(install.type, 'exec')
    if (install.type === 'exec') assert.deepEqual(install.commands.map((c) => c.description), [
      'finish any interrupted package configuration',
      'refresh the package lists',
      'install postgresql-15 postgresql-client-15 redis-server',
      'install ejabberd erlang-p1-pgsql erlang-redis-client from bookworm-backports',
    ])
  })

  it('installPackages: one apt run per suite, -t before the names', () => {
    const cmds = installPackages(['redis-server'], [['bookworm-backports', ['ejabberd']]])
    assert.deepEqual(cmds[3]!.argv, ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=300', '-o', 'Dpkg::Options::=--force-confold', '-t', 'bookworm-backports', 'ejabberd'])
    assert.equal(installPackages(['a']).length, 3)
  })

  it('ejabberd.yml asks 24.12 to update its SQL schema; 23.01 does not know the option', () => {
    assert.match(fileAt(resources(R2412), '/etc/ejabberd/ejabberd.yml')!.content, /^update_sql_schema: true$/m)
    assert.doesNotMatch(fileAt(resources(R2301), '/etc/ejabberd/ejabberd.yml')!.content, /update_sql_schema/)
  })
})

describe('the planner in upgrade mode', () => {
  const installed = () => convergedFacts(configFrom(ONE_HOST_YAML), resources(R2301))

  it('install refuses a host whose ejabberd is off the pin: a blocker, no step', () => {
    const plan = planChanges(resources(R2412), installed(), ORDER, dependsOn)
    assert.ok(plan.blockers.some((b) => /ejabberd 23\.01-1\+deb12u1 is installed but this release pins 24\.12-\*/.test(b)), plan.blockers.join('\n'))
  })

  it('upgrade brings the packages to the pin as a step of their own component, and restarts only that component', () => {
    const plan = planChanges(resources(R2412), installed(), ORDER, dependsOn, (t) => t, {upgrade: true})
    assert.deepEqual(plan.blockers, [])
    const up = plan.steps.filter((s) => s.action === 'upgrade')
    assert.deepEqual(up.map((s) => [s.id, s.component, s.what]), [
      ['box:packages:ejabberd', 'ejabberd', 'upgrade ejabberd to 24.12-* (bookworm-backports), erlang-p1-pgsql to 1.1.31-* (bookworm-backports), erlang-redis-client to 1.2.0-8* (bookworm-backports)'],
    ])
    const restarts = plan.steps.filter((s) => s.action === 'restart').map((s) => s.what)
    assert.deepEqual(restarts, ['restart ejabberd'])
  })

  it('upgradePackages resolves each glob with apt, installs name=version with -t, then checks the versions', () => {
    const cmds = upgradePackages([{name: 'ejabberd', version: '24.12-*', suite: 'bookworm-backports'}, {name: 'redis-server', version: '5:7.0.*'}])
    assert.deepEqual(cmds.map((c) => c.description), [
      'finish any interrupted package configuration',
      'refresh the package lists',
      'install ejabberd 24.12-* from bookworm-backports',
      'install redis-server 5:7.0.*',
    ])
    assert.deepEqual(cmds[2]!.argv.slice(-3), ['bookworm-backports', 'ejabberd', '24.12-*'])
    assert.deepEqual(cmds[3]!.argv.slice(-3), ['', 'redis-server', '5:7.0.*'])
    assert.match(cmds[2]!.argv.join(' '), /--allow-downgrades/)
  })
})
