import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {parse} from 'yaml'
import type {FileResource, PackagesResource, Resource} from '../../src/plan/resources.js'
import {createRenderer} from '../../src/render/templates.js'
import {ONE_HOST_YAML, SECRET_VALUES, SECRETS, THREE_HOSTS_YAML, resourcesFor} from './helpers.js'

function file(resources: Resource[], path: string): FileResource {
  const found = resources.find((r): r is FileResource => r.kind === 'file' && r.path === path)
  assert.ok(found, `no file resource ${path}`)
  return found
}

/** Lines with runs of blanks collapsed, comments dropped: how the daemons read them. */
function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim().replace(/\s+/g, ' '))
    .filter((l) => l && !l.startsWith('#'))
}

describe('rendered configuration of a three-host cluster', () => {
  // Given db1 10.0.0.11 (postgresql), cache1 10.0.0.12 (redis), im1 10.0.0.13 (ejabberd)
  const resources = resourcesFor(THREE_HOSTS_YAML)

  it('pg_hba.conf lets the ejabberd role in from each cluster address only', () => {
    const hba = lines(file(resources, '/etc/postgresql/15/main/pg_hba.conf').content)
    assert.deepEqual(
      hba.filter((l) => l.startsWith('host ejabberd')),
      ['host ejabberd ejabberd 10.0.0.11/32 scram-sha-256', 'host ejabberd ejabberd 10.0.0.12/32 scram-sha-256', 'host ejabberd ejabberd 10.0.0.13/32 scram-sha-256'],
    )
    // Then every host line is either loopback or a cluster address, never the world
    assert.deepEqual(
      hba.filter((l) => l.startsWith('host ')).map((l) => l.split(' ')[3]),
      ['127.0.0.1/32', '::1/128', '10.0.0.11/32', '10.0.0.12/32', '10.0.0.13/32'],
    )
    assert.ok(!hba.some((l) => /0\.0\.0\.0\/0|::\/0|\ball\s*$|\btrust\b|\bpassword\b|\bmd5\b/.test(l)), hba.join('\n'))
  })

  it('the postgres conf.d listens on localhost and the host address, with scram', () => {
    const conf = lines(file(resources, '/etc/postgresql/15/main/conf.d/50-imctl.conf').content)
    assert.ok(conf.includes("listen_addresses = 'localhost,10.0.0.11'"), conf.join('\n'))
    assert.ok(conf.includes('port = 5432'))
    assert.ok(conf.includes("password_encryption = 'scram-sha-256'"))
  })

  it('redis.conf binds to loopback and its own address and requires the password', () => {
    const conf = lines(file(resources, '/etc/redis/redis.conf').content)
    assert.deepEqual(conf.filter((l) => l.startsWith('bind ')), ['bind 127.0.0.1 10.0.0.12'])
    assert.deepEqual(conf.filter((l) => l.startsWith('requirepass ')), [`requirepass ${SECRETS.redis.password}`])
    assert.ok(conf.includes('port 6379'))
    assert.ok(conf.includes('protected-mode yes'))
  })

  it('ejabberd.yml names the database and redis hosts, the domain, and keeps the admin API on loopback', () => {
    const text = file(resources, '/etc/ejabberd/ejabberd.yml').content
    const yml = parse(text) as Record<string, unknown> & {listen: {port: number; ip: string; module: string; request_handlers?: Record<string, string>}[]}
    assert.deepEqual(yml.hosts, ['chat.example.com'])
    assert.equal(yml.sql_server, '10.0.0.11')
    assert.equal(yml.sql_port, 5432)
    assert.equal(yml.sql_database, 'ejabberd')
    assert.equal(yml.sql_username, 'ejabberd')
    assert.equal(yml.sql_password, SECRETS.postgresql.ejabberd_password)
    assert.equal(yml.redis_server, '10.0.0.12')
    assert.equal(yml.redis_port, 6379)
    assert.equal(yml.redis_password, SECRETS.redis.password)
    assert.deepEqual(
      yml.listen.map((l) => `${l.ip}:${l.port} ${l.module}`),
      ['10.0.0.13:5222 ejabberd_c2s', '10.0.0.13:5280 ejabberd_http', '10.0.0.13:1883 mod_mqtt', '127.0.0.1:5281 ejabberd_http'],
    )
    assert.deepEqual(yml.listen[3]!.request_handlers, {'/api': 'mod_http_api'})
    // The exact lines, as written (quoting matters to ejabberd's YAML reader)
    for (const line of ['sql_server: "10.0.0.11"', 'sql_port: 5432', 'redis_server: "10.0.0.12"', '  - "chat.example.com"', '    ip: "127.0.0.1"', '      - "admin@chat.example.com"']) {
      assert.ok(text.split('\n').includes(line), `missing line ${JSON.stringify(line)}`)
    }
  })

  it('marks exactly the files that carry a secret as secret, readable by owner (and group) only', () => {
    const files = resources.filter((r): r is FileResource => r.kind === 'file')
    const carrying = files.filter((f) => SECRET_VALUES.some((s) => f.content.includes(s)))
    assert.deepEqual(carrying.map((f) => f.path), ['/etc/redis/redis.conf', '/etc/ejabberd/ejabberd.yml'])
    assert.deepEqual(
      files.filter((f) => f.secret).map((f) => `${f.path} ${f.owner}:${f.group} ${f.mode}`),
      ['/etc/redis/redis.conf redis:redis 640', '/etc/ejabberd/ejabberd.yml ejabberd:ejabberd 600'],
    )
    for (const f of carrying) assert.ok(['600', '640'].includes(f.mode), `${f.path} mode ${f.mode}`)
  })

  it('never puts the database password itself in a resource: the role carries a SCRAM verifier', () => {
    const role = resources.find((r) => r.kind === 'pg-role')
    assert.ok(role?.kind === 'pg-role')
    assert.match(role.verifier, /^SCRAM-SHA-256\$4096:/)
    assert.ok(!role.verifier.includes(SECRETS.postgresql.ejabberd_password))
  })

  it('has one packages resource per host, each with its own component packages', () => {
    const pkgs = resources.filter((r): r is PackagesResource => r.kind === 'packages')
    assert.deepEqual(
      pkgs.map((p) => [p.host, p.packages.map((x) => x.name)]),
      [
        ['db1', ['postgresql-15', 'postgresql-client-15']],
        ['cache1', ['redis-server']],
        ['im1', ['ejabberd', 'erlang-p1-pgsql', 'erlang-redis-client']],
      ],
    )
  })
})

describe('rendered configuration of a one-host cluster', () => {
  const resources = resourcesFor(ONE_HOST_YAML)

  it('merges the packages of all three components into one resource (one apt run)', () => {
    const pkgs = resources.filter((r): r is PackagesResource => r.kind === 'packages')
    assert.equal(pkgs.length, 1)
    assert.equal(pkgs[0]!.host, 'box')
    assert.deepEqual(
      pkgs[0]!.packages.map((p) => `${p.name}=${p.version}`),
      ['postgresql-15=15.*', 'postgresql-client-15=15.*', 'redis-server=5:7.0.*', 'ejabberd=23.01-*', 'erlang-p1-pgsql=1.1.*', 'erlang-redis-client=1.2.*'],
    )
  })

  it('points ejabberd at the one host address and lets only that address into pg_hba', () => {
    const hba = lines(file(resources, '/etc/postgresql/15/main/pg_hba.conf').content)
    assert.deepEqual(hba.filter((l) => l.startsWith('host ejabberd')), ['host ejabberd ejabberd 192.168.50.7/32 scram-sha-256'])
    const yml = parse(file(resources, '/etc/ejabberd/ejabberd.yml').content) as {sql_server: string; redis_server: string; hosts: string[]}
    assert.deepEqual([yml.sql_server, yml.redis_server, yml.hosts], ['192.168.50.7', '192.168.50.7', ['chat.example.org']])
  })
})

describe('rendered configuration with IPv6 addresses and custom ports', () => {
  const resources = resourcesFor(`apiVersion: imctl/v1
name: six
domain: chat.example.net
release: ejabberd-23.01-debian12
hosts:
  - {name: db1, address: "fd00::11", auth: {agent: true}}
  - {name: im1, address: "fd00::13", auth: {agent: true}}
components:
  postgresql: {host: db1, port: 5433}
  redis: {host: db1, port: 6380}
  ejabberd: {host: im1, ports: {c2s: 15222, api: 15281}}
`)

  it('uses /128 in pg_hba and the configured ports everywhere', () => {
    const hba = lines(file(resources, '/etc/postgresql/15/main/pg_hba.conf').content)
    assert.deepEqual(hba.filter((l) => l.startsWith('host ejabberd')), ['host ejabberd ejabberd fd00::11/128 scram-sha-256', 'host ejabberd ejabberd fd00::13/128 scram-sha-256'])
    const pg = lines(file(resources, '/etc/postgresql/15/main/conf.d/50-imctl.conf').content)
    assert.ok(pg.includes("listen_addresses = 'localhost,fd00::11'") && pg.includes('port = 5433'), pg.join('\n'))
    const redis = lines(file(resources, '/etc/redis/redis.conf').content)
    assert.ok(redis.includes('bind 127.0.0.1 fd00::11') && redis.includes('port 6380'), redis.join('\n'))
    const yml = parse(file(resources, '/etc/ejabberd/ejabberd.yml').content) as {sql_port: number; redis_port: number; listen: {ip: string; port: number}[]}
    assert.deepEqual([yml.sql_port, yml.redis_port], [5433, 6380])
    assert.deepEqual(yml.listen.map((l) => `${l.ip} ${l.port}`), ['fd00::13 15222', 'fd00::13 5280', 'fd00::13 1883', '127.0.0.1 15281'])
    const account = resources.find((r) => r.kind === 'xmpp-account')
    assert.equal(account?.kind === 'xmpp-account' ? account.apiPort : 0, 15281)
  })
})

describe('createRenderer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'imctl-templates-'))
  after(() => rmSync(dir, {recursive: true, force: true}))
  writeFileSync(join(dir, 'greet.hbs'), 'listen {{host.address}} as {{user}}\n')
  writeFileSync(join(dir, 'net.hbs'), '{{#each addrs}}{{cidr this}} {{#if (isIPv6 this)}}v6{{else}}v4{{/if}};{{/each}}')
  const render = createRenderer(dir)

  it('renders variables as they are, without HTML escaping', () => {
    assert.equal(render('greet.hbs', {host: {address: '10.0.0.1'}, user: "o'brien & <co>"}), "listen 10.0.0.1 as o'brien & <co>\n")
  })

  it('throws on a missing variable instead of rendering an empty string', () => {
    assert.throws(() => render('greet.hbs', {host: {address: '10.0.0.1'}}), /"user" not defined/)
    // Handlebars names the first segment it cannot resolve.
    assert.throws(() => render('greet.hbs', {user: 'x'}), /"address" not defined in undefined - 1:9/)
  })

  it('has cidr and isIPv6 helpers', () => {
    assert.equal(render('net.hbs', {addrs: ['10.1.2.3', 'fd00::1']}), '10.1.2.3/32 v4;fd00::1/128 v6;')
  })
})
