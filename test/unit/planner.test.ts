import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {component} from '../../src/components/registry.js'
import type {ComponentName} from '../../src/config/model.js'
import {redact} from '../../src/config/secrets.js'
import {emptyFacts, type HostFacts} from '../../src/plan/facts.js'
import {planChanges, type Plan, type Step} from '../../src/plan/planner.js'
import type {FileResource, Resource} from '../../src/plan/resources.js'
import {SECRET_VALUES, SECRETS, THREE_HOSTS_YAML, configFrom, convergedFacts, resourcesFor} from './helpers.js'

const ORDER: ComponentName[] = ['postgresql', 'redis', 'ejabberd']
const dependsOn = (c: ComponentName) => component(c).dependsOn
const redactSecrets = (t: string) => redact(t, SECRET_VALUES)

const HOSTS = ['db1', 'cache1', 'im1']

/** What gatherFacts reports for a freshly installed Debian with nothing of ours on it. */
function freshFacts(resources: Resource[]): Record<string, HostFacts> {
  const facts = Object.fromEntries(HOSTS.map((h) => [h, emptyFacts(h)]))
  for (const r of resources) {
    const f = facts[r.host]!
    if (r.kind === 'packages') for (const p of r.packages) f.packages[p.name] = null
    if (r.kind === 'file') f.files[r.path] = null
    if (r.kind === 'service') for (const u of [r.unit, r.enableUnit ?? r.unit]) f.services[u] = {loaded: false, active: false, enabled: false}
  }
  return facts
}


function plan(resources: Resource[], facts: Record<string, HostFacts>): Plan {
  return planChanges(resources, facts, ORDER, dependsOn, redactSecrets)
}

function whatsByHost(steps: Step[]): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const s of steps) (out[s.host] ??= []).push(s.what)
  return out
}

function redisConf(resources: Resource[]): FileResource {
  const r = resources.find((x): x is FileResource => x.kind === 'file' && x.path === '/etc/redis/redis.conf')
  assert.ok(r)
  return r
}

describe('planChanges', () => {
  // Given the desired state of db1 (postgresql), cache1 (redis), im1 (ejabberd)
  const resources = resourcesFor(THREE_HOSTS_YAML)

  it('the fixture has the 14 resources the tests below count on', () => {
    assert.equal(resources.length, 14)
  })

  describe('on fresh hosts', () => {
    const p = plan(resources, freshFacts(resources))

    it('installs, writes, restarts and creates everything, in order per host', () => {
      assert.deepEqual(whatsByHost(p.steps), {
        db1: [
          'install postgresql-15 postgresql-client-15',
          'write /etc/postgresql/15/main/conf.d/50-imctl.conf (postgres:postgres 644)',
          'write /etc/postgresql/15/main/pg_hba.conf (postgres:postgres 640)',
          'restart postgresql@15-main',
          'set PostgreSQL role ejabberd (login, scram-sha-256)',
          'create database ejabberd owned by ejabberd',
        ],
        cache1: ['install redis-server', 'write /etc/redis/redis.conf (redis:redis 640)', 'restart redis-server'],
        im1: [
          'install ejabberd erlang-p1-pgsql erlang-redis-client',
          'write /etc/ejabberd/ejabberd.yml (ejabberd:ejabberd 600)',
          'load /usr/share/ejabberd/sql/pg.new.sql into database ejabberd on db1',
          'restart ejabberd',
          'register XMPP account admin@chat.example.com',
        ],
      })
      assert.equal(p.unchanged, 0)
      assert.deepEqual(p.blockers, [])
    })

    it('puts every package install first, then components in dependency order', () => {
      assert.deepEqual(
        p.steps.map((s) => `${s.component}:${s.action}`),
        [
          'postgresql:install', 'redis:install', 'ejabberd:install',
          'postgresql:write', 'postgresql:write', 'postgresql:restart', 'postgresql:create', 'postgresql:create',
          'redis:write', 'redis:restart',
          'ejabberd:write', 'ejabberd:load', 'ejabberd:restart', 'ejabberd:create',
        ],
      )
    })

    it('makes the schema wait for postgresql and the IM server for postgresql and redis', () => {
      const after = Object.fromEntries(p.steps.filter((s) => s.after.length).map((s) => [s.what, s.after]))
      assert.deepEqual(after, {
        'load /usr/share/ejabberd/sql/pg.new.sql into database ejabberd on db1': ['postgresql'],
        'restart ejabberd': ['postgresql', 'redis'],
        'register XMPP account admin@chat.example.com': ['postgresql', 'redis'],
      })
    })

    it('says why, and pipes the schema from the IM host into psql on the database host', () => {
      const why = Object.fromEntries(p.steps.map((s) => [s.what, s.why]))
      assert.equal(why['restart postgresql@15-main'], '/etc/postgresql/15/main/conf.d/50-imctl.conf, /etc/postgresql/15/main/pg_hba.conf changed')
      assert.equal(why['set PostgreSQL role ejabberd (login, scram-sha-256)'], 'PostgreSQL is not running yet')
      assert.equal(why['write /etc/redis/redis.conf (redis:redis 640)'], 'does not exist')
      assert.equal(why['register XMPP account admin@chat.example.com'], 'the IM server is not answering yet')
      const load = p.steps.find((s) => s.action === 'load')!
      assert.equal(load.host, 'im1')
      assert.ok(load.run.type === 'pipe')
      assert.deepEqual(load.run.source, {host: 'im1', path: '/usr/share/ejabberd/sql/pg.new.sql', component: 'ejabberd'})
      assert.equal(load.run.target.command.component, 'postgresql')
      assert.equal(load.run.target.host, 'db1')
      assert.equal(load.run.target.command.asUser, 'postgres')
    })

    it('marks a restart pending before writing a file that needs one', () => {
      const write = p.steps.find((s) => s.what.startsWith('write /etc/redis/redis.conf'))!
      assert.ok(write.run.type === 'exec')
      assert.deepEqual(write.run.commands.map((c) => c.description), ['mark redis-server for restart', 'write /etc/redis/redis.conf'])
    })

    it('gives every step a distinct id', () => {
      assert.equal(new Set(p.steps.map((s) => s.id)).size, p.steps.length)
    })
  })

  describe('on a converged cluster', () => {
    it('plans nothing and counts every resource as unchanged', () => {
      const p = plan(resources, convergedFacts(configFrom(THREE_HOSTS_YAML), resources))
      assert.deepEqual(p.steps, [])
      assert.equal(p.unchanged, resources.length)
      assert.deepEqual(p.blockers, [])
    })

    it('is pure: the same inputs give the same plan', () => {
      const facts = freshFacts(resources)
      assert.deepEqual(plan(resources, facts), plan(resources, facts))
    })
  })

  describe('when one secret-bearing file changed', () => {
    // Given redis.conf on cache1 differs on the line next to the password
    const facts = convergedFacts(configFrom(THREE_HOSTS_YAML), resources)
    const desired = redisConf(resources).content
    const before = desired.replace('protected-mode yes', 'protected-mode no')
    facts.cache1!.files['/etc/redis/redis.conf']!.content = Buffer.from(before)
    // When planned
    const p = plan(resources, facts)

    it('writes it with a diff and restarts the unit it notifies, nothing else', () => {
      assert.deepEqual(p.steps.map((s) => [s.host, s.action, s.what, s.why]), [
        ['cache1', 'write', 'write /etc/redis/redis.conf (redis:redis 640)', 'content differs'],
        ['cache1', 'restart', 'restart redis-server', '/etc/redis/redis.conf changed'],
      ])
      assert.equal(p.unchanged, resources.length - 2)
      const diff = p.steps[0]!.diff!
      assert.ok(diff.includes('\n-protected-mode no\n+protected-mode yes\n'), diff)
    })

    it('passes the diff through the redact function', () => {
      // The context lines around the change include requirepass, so unredacted it would show.
      const diff = p.steps[0]!.diff!
      assert.ok(diff.includes(' requirepass ********\n'), diff)
      assert.ok(!diff.includes(SECRETS.redis.password), diff)
      const raw = planChanges(resources, facts, ORDER, dependsOn).steps[0]!.diff!
      assert.ok(raw.includes(`requirepass ${SECRETS.redis.password}`), 'without redact, the secret would be in the diff')
    })

    it('restarts through the commands that clear the pending marker', () => {
      const restart = p.steps[1]!
      assert.ok(restart.run.type === 'exec')
      assert.deepEqual(restart.run.commands.map((c) => c.argv.join(' ')), [
        'systemctl enable --quiet redis-server',
        'systemctl restart redis-server',
        'systemctl is-active --quiet redis-server',
        'rm -f /var/lib/imctl/restart-pending/redis-server',
      ])
    })
  })

  it('does not show a stale secret (one not in the secrets file) that the host still has', () => {
    // Given the password was rotated in the secrets file but cache1 still runs the old one
    const facts = convergedFacts(configFrom(THREE_HOSTS_YAML), resources)
    const desired = redisConf(resources).content
    const live = 'old-Live-Password-0a9b8c7d'
    facts.cache1!.files['/etc/redis/redis.conf']!.content = Buffer.from(desired.replace(SECRETS.redis.password, live))
    // When planned
    const p = plan(resources, facts)
    // Then the diff shows that the password line changes, but neither value
    const diff = p.steps[0]!.diff!
    assert.ok(!diff.includes(live), diff)
    assert.ok(!diff.includes(SECRETS.redis.password), diff)
    assert.ok(diff.includes('\n-requirepass ********\n+requirepass ********\n'), diff)
    assert.equal(p.steps[1]!.what, 'restart redis-server')
  })

  it('masks stale quoted secrets in ejabberd.yml and keeps the lines around them readable', () => {
    // Given ejabberd.yml on im1 was written by hand with other database and redis passwords
    const facts = convergedFacts(configFrom(THREE_HOSTS_YAML), resources)
    const file = resources.find((r): r is FileResource => r.kind === 'file' && r.path === '/etc/ejabberd/ejabberd.yml')!
    const before = file.content
      .replace(`sql_password: "${SECRETS.postgresql.ejabberd_password}"`, 'sql_password: "handmade-db-pass"')
      .replace(`redis_password: "${SECRETS.redis.password}"`, 'redis_password: "handmade-redis-pass"')
    facts.im1!.files['/etc/ejabberd/ejabberd.yml']!.content = Buffer.from(before)
    const diff = plan(resources, facts).steps[0]!.diff!
    assert.ok(!diff.includes('handmade'), diff)
    assert.ok(diff.includes('\n-sql_password: "********"\n+sql_password: "********"\n'), diff)
    assert.ok(diff.includes('\n-redis_password: "********"\n+redis_password: "********"\n'), diff)
    assert.ok(diff.includes('\n sql_username: "ejabberd"\n'), diff)
  })

  it('restarts a unit an interrupted run left pending, and says so', () => {
    // Given a converged cluster where a previous run wrote redis.conf but died before the restart
    const facts = convergedFacts(configFrom(THREE_HOSTS_YAML), resources)
    facts.cache1!.pendingRestarts = ['redis-server']
    const p = plan(resources, facts)
    assert.deepEqual(p.steps.map((s) => [s.host, s.action, s.what]), [['cache1', 'restart', 'restart redis-server']])
    assert.match(p.steps[0]!.why, /interrupted run/)
    assert.equal(p.unchanged, resources.length - 1)
  })

  it('reports an installed package outside the manifest glob as a blocker, not an install', () => {
    const facts = convergedFacts(configFrom(THREE_HOSTS_YAML), resources)
    facts.db1!.packages['postgresql-15'] = '16.4-1.pgdg120+1'
    const p = plan(resources, facts)
    assert.deepEqual(p.blockers, [
      'db1: postgresql-15 16.4-1.pgdg120+1 is installed but this release pins 15.*; an upgrade or downgrade is not an install (see `imctl upgrade`)',
    ])
    assert.deepEqual(p.steps, [])
  })

  it('fixes owner and mode alone without a diff or a restart', () => {
    // Given redis.conf has the right content but is world-readable and owned by root
    const facts = convergedFacts(configFrom(THREE_HOSTS_YAML), resources)
    const f = facts.cache1!.files['/etc/redis/redis.conf']!
    f.owner = 'root'
    f.mode = '644'
    const p = plan(resources, facts)
    assert.equal(p.steps.length, 1)
    const [s] = p.steps
    assert.deepEqual([s!.action, s!.what, s!.why, s!.diff], ['write', 'write /etc/redis/redis.conf (redis:redis 640)', 'owner/mode is root:redis 644', undefined])
    assert.ok(s!.run.type === 'exec')
    assert.deepEqual(s!.run.commands.map((c) => c.description), ['write /etc/redis/redis.conf'])
  })

  it('starts a stopped service and enables a disabled one through its enable unit', () => {
    const facts = convergedFacts(configFrom(THREE_HOSTS_YAML), resources)
    facts.cache1!.services['redis-server'] = {loaded: true, active: false, enabled: true}
    // Debian's postgresql@15-main is enabled through the postgresql wrapper unit
    facts.db1!.services.postgresql = {loaded: true, active: true, enabled: false}
    const p = plan(resources, facts)
    assert.deepEqual(p.steps.map((s) => [s.host, s.action, s.what, s.why, s.after]), [
      ['db1', 'enable', 'enable postgresql at boot', 'disabled', []],
      ['cache1', 'start', 'start redis-server', 'not running', []],
    ])
  })

  it('updates a role whose password differs and a database with the wrong owner', () => {
    const facts = convergedFacts(configFrom(THREE_HOSTS_YAML), resources)
    facts.db1!.pg!.roles.ejabberd = 'SCRAM-SHA-256$4096:AAAA$BBBB:CCCC'
    facts.db1!.pg!.databases.ejabberd = 'postgres'
    const p = plan(resources, facts)
    assert.deepEqual(p.steps.map((s) => [s.action, s.what, s.why]), [
      ['update', 'set PostgreSQL role ejabberd (login, scram-sha-256)', 'password differs'],
      ['update', 'create database ejabberd owned by ejabberd', 'owned by postgres'],
    ])
  })

  it('re-registers an XMPP account whose password does not check out', () => {
    const facts = convergedFacts(configFrom(THREE_HOSTS_YAML), resources)
    facts.im1!.xmppAccounts['admin@chat.example.com'] = false
    const p = plan(resources, facts)
    assert.deepEqual(p.steps.map((s) => [s.action, s.what, s.why]), [['update', 'register XMPP account admin@chat.example.com', 'missing or its password differs']])
    assert.deepEqual(p.steps[0]!.run, {type: 'xmpp-account', user: 'admin', domain: 'chat.example.com', password: SECRETS.ejabberd.admin_password, apiPort: 5281})
  })

  it('installs only the packages that are missing', () => {
    const facts = convergedFacts(configFrom(THREE_HOSTS_YAML), resources)
    facts.im1!.packages['erlang-redis-client'] = null
    const p = plan(resources, facts)
    // A fresh install restarts the host's services so they run the managed configuration
    assert.deepEqual(p.steps.map((s) => [s.host, s.what, s.why]), [
      ['im1', 'install erlang-redis-client', 'not installed'],
      ['im1', 'restart ejabberd', 'freshly installed: start with the managed configuration'],
    ])
  })
})
