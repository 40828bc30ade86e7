import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {parse} from 'yaml'
import {component} from '../../src/components/registry.js'
import type {ComponentName} from '../../src/config/model.js'
import {hostByName} from '../../src/config/model.js'
import {redact} from '../../src/config/secrets.js'
import {demuxFrames} from '../../src/ops/logs.js'
import {containerSpec} from '../../src/plan/container-spec.js'
import {endpointFor} from '../../src/plan/desired.js'
import {emptyFacts, type HostFacts} from '../../src/plan/facts.js'
import {planChanges, type Plan, type Step} from '../../src/plan/planner.js'
import type {ContainerResource, FileResource, Resource} from '../../src/plan/resources.js'
import {RELEASE, SECRET_VALUES, SECRETS, configFrom, convergedFacts, emptyEngineFacts, resourcesFor} from './helpers.js'

const ORDER: ComponentName[] = ['postgresql', 'redis', 'ejabberd']
const dependsOn = (c: ComponentName) => component(c).dependsOn
const redactSecrets = (t: string) => redact(t, SECRET_VALUES)
const ready = (c: ComponentName) => component(c).container.ready
const SECOND = 1_000_000_000

/** One engine host on loopback, everything on it, every published port non-default. */
function engineYaml(pgPort = 15432): string {
  return `apiVersion: imctl/v1
name: dock
domain: dock.example.org
release: ${RELEASE}
hosts:
  - name: local
    address: 127.0.0.1
    engine: {socket: /run/podman/podman.sock}
components:
  postgresql: {host: local, port: ${pgPort}}
  redis: {host: local, port: 16379}
  ejabberd: {host: local, ports: {c2s: 15222, http: 15280, mqtt: 11883}}
`
}
const ENGINE_YAML = engineYaml()

/** postgresql on an SSH host, redis and ejabberd on an engine host. */
const MIXED_YAML = `apiVersion: imctl/v1
name: mix
domain: mix.example.org
release: ${RELEASE}
hosts:
  - name: engine
    address: 10.0.0.1
    engine: {socket: /run/podman/podman.sock}
  - name: db1
    address: 10.0.0.11
    auth: {agent: true}
components:
  postgresql: {host: db1, port: 5432}
  redis: {host: engine, port: 16379}
  ejabberd: {host: engine}
`

/** The other way round: the IM server on an SSH host, its database and cache on an engine host. */
const SSH_CONSUMER_YAML = `apiVersion: imctl/v1
name: rev
domain: rev.example.org
release: ${RELEASE}
hosts:
  - name: engine
    address: 10.0.0.1
    engine: {socket: /run/podman/podman.sock}
  - name: im1
    address: 10.0.0.13
    auth: {agent: true}
components:
  postgresql: {host: engine, port: 15432}
  redis: {host: engine, port: 16379}
  ejabberd: {host: im1}
`

function containerOf(resources: Resource[], c: ComponentName): ContainerResource {
  const r = resources.find((x): x is ContainerResource => x.kind === 'container' && x.component === c)
  assert.ok(r, `no container resource for ${c}`)
  return r
}

function fileOf(resources: Resource[], path: string): FileResource {
  const f = resources.flatMap((r) => (r.kind === 'container' ? r.files : r.kind === 'file' ? [r] : [])).find((x) => x.path === path)
  assert.ok(f, `no file ${path}`)
  return f
}


function plan(resources: Resource[], facts: Record<string, HostFacts>, opts: {purgeData?: boolean} = {}): Plan {
  return planChanges(resources, facts, ORDER, dependsOn, redactSecrets, {...opts, ready})
}

function summary(steps: Step[]): [string, string, string, string][] {
  return steps.map((s) => [s.component, s.action, s.what, s.why])
}

describe('containerSpec', () => {
  // Given one engine host on 127.0.0.1 with every component on it, on non-default ports
  const config = configFrom(ENGINE_YAML)
  const host = hostByName(config, 'local')
  const spec = (c: ComponentName, image: string, hash: string) =>
    containerSpec({config, host, component: c, image, runtime: component(c).container, configHash: hash})

  it('gives postgresql its full create body: labels, health check, volume, loopback port, alias', () => {
    // When the spec of postgresql is built
    const s = spec('postgresql', 'localhost/imctl-postgresql:0123456789ab', 'feedc0ffee123456')
    // Then it is exactly this
    assert.deepEqual(s, {
      name: 'imctl-dock-postgresql',
      Image: 'localhost/imctl-postgresql:0123456789ab',
      Hostname: 'postgresql',
      Labels: {
        'io.imctl.cluster': 'dock',
        'io.imctl.component': 'postgresql',
        'io.imctl.release': RELEASE,
        'io.imctl.config-hash': 'feedc0ffee123456',
      },
      ExposedPorts: {'5432/tcp': {}},
      Healthcheck: {Test: ['CMD', '/usr/local/bin/imctl-healthcheck'], Interval: 10 * SECOND, Timeout: 5 * SECOND, Retries: 3, StartPeriod: 30 * SECOND},
      StopSignal: 'SIGINT',
      HostConfig: {
        NetworkMode: 'imctl-dock',
        Mounts: [{Type: 'volume', Source: 'imctl-dock-postgresql-data', Target: '/var/lib/postgresql/15/main'}],
        PortBindings: {'5432/tcp': [{HostIp: '127.0.0.1', HostPort: '15432'}]},
        RestartPolicy: {Name: 'unless-stopped'},
      },
      NetworkingConfig: {EndpointsConfig: {'imctl-dock': {Aliases: ['postgresql']}}},
    })
    assert.equal(s.Healthcheck.Interval, 10_000_000_000)
  })

  it('exposes the admin API of ejabberd but never publishes it; the other three go to 127.0.0.1', () => {
    const s = spec('ejabberd', 'localhost/imctl-ejabberd:0123456789ab', 'feedc0ffee123456')
    assert.deepEqual(s.ExposedPorts, {'5222/tcp': {}, '5280/tcp': {}, '1883/tcp': {}, '5281/tcp': {}})
    assert.deepEqual(s.HostConfig.PortBindings, {
      '5222/tcp': [{HostIp: '127.0.0.1', HostPort: '15222'}],
      '5280/tcp': [{HostIp: '127.0.0.1', HostPort: '15280'}],
      '1883/tcp': [{HostIp: '127.0.0.1', HostPort: '11883'}],
    })
    assert.equal('5281/tcp' in s.HostConfig.PortBindings, false)
    assert.equal('StopSignal' in s, false)
    assert.deepEqual(s.HostConfig.Mounts, [{Type: 'volume', Source: 'imctl-dock-ejabberd-data', Target: '/var/lib/ejabberd'}])
    assert.deepEqual(s.NetworkingConfig, {EndpointsConfig: {'imctl-dock': {Aliases: ['ejabberd']}}})
  })

  it('binds redis to the configured address and port', () => {
    const s = spec('redis', 'localhost/imctl-redis:0123456789ab', 'feedc0ffee123456')
    assert.deepEqual(s.HostConfig.PortBindings, {'6379/tcp': [{HostIp: '127.0.0.1', HostPort: '16379'}]})
    assert.deepEqual(s.HostConfig.Mounts, [{Type: 'volume', Source: 'imctl-dock-redis-data', Target: '/var/lib/redis'}])
  })

  it('never binds a published port to 0.0.0.0, on loopback or on a LAN engine', () => {
    // Given the desired containers of the loopback engine and of the 10.0.0.1 engine
    const bindings = [...resourcesFor(ENGINE_YAML), ...resourcesFor(MIXED_YAML)]
      .filter((r): r is ContainerResource => r.kind === 'container')
      .flatMap((r) => Object.values(r.spec.HostConfig.PortBindings).flat().map((b) => `${r.host}:${b.HostIp}:${b.HostPort}`))
    // Then every binding is to the engine host's own address
    assert.deepEqual(bindings.sort(), [
      'engine:10.0.0.1:16379',
      'engine:10.0.0.1:1883',
      'engine:10.0.0.1:5222',
      'engine:10.0.0.1:5280',
      'local:127.0.0.1:11883',
      'local:127.0.0.1:15222',
      'local:127.0.0.1:15280',
      'local:127.0.0.1:15432',
      'local:127.0.0.1:16379',
    ])
    assert.ok(!bindings.some((b) => b.includes('0.0.0.0')), bindings.join('\n'))
  })
})

describe('desiredState on an engine host', () => {
  // Given every component on one engine host
  const config = configFrom(ENGINE_YAML)
  const resources = resourcesFor(ENGINE_YAML)

  it('turns packages, files and services into a network, images, containers and their running state', () => {
    assert.deepEqual(
      resources.map((r) => `${r.host}:${r.component}:${r.kind}`),
      [
        'local:postgresql:network',
        'local:postgresql:image',
        'local:postgresql:container',
        'local:postgresql:container-running',
        'local:postgresql:pg-role',
        'local:postgresql:pg-database',
        'local:redis:image',
        'local:redis:container',
        'local:redis:container-running',
        'local:ejabberd:image',
        'local:ejabberd:container',
        'local:ejabberd:sql-schema',
        'local:ejabberd:container-running',
        'local:ejabberd:xmpp-account',
      ],
    )
    const net = resources[0]!
    assert.ok(net.kind === 'network')
    assert.equal(net.name, 'imctl-dock')
    const names = resources.flatMap((r) => (r.kind === 'container' || r.kind === 'container-running' ? [`${r.kind}:${r.name}`] : []))
    assert.deepEqual(names, [
      'container:imctl-dock-postgresql',
      'container-running:imctl-dock-postgresql',
      'container:imctl-dock-redis',
      'container-running:imctl-dock-redis',
      'container:imctl-dock-ejabberd',
      'container-running:imctl-dock-ejabberd',
    ])
  })

  it('tags each image by a content hash, and each container uses its own image', () => {
    const images = resources.filter((r) => r.kind === 'image')
    assert.equal(images.length, 3)
    for (const img of images) {
      assert.ok(img.kind === 'image')
      assert.match(img.tag, /^localhost\/imctl-(postgresql|redis|ejabberd):[0-9a-f]{12}$/)
      assert.ok(img.tag.startsWith(`localhost/imctl-${img.component}:`), img.tag)
      assert.equal(img.contextDir.endsWith(`templates/images/${img.component}`), true, img.contextDir)
      assert.deepEqual(img.contextFiles, ['Containerfile', 'entrypoint.sh', 'healthcheck.sh'])
      const c = containerOf(resources, img.component)
      assert.equal(c.image, img.tag)
      assert.equal(c.spec.Image, img.tag)
    }
    const pg = images.find((r) => r.component === 'postgresql')!
    assert.ok(pg.kind === 'image')
    assert.deepEqual(pg.packages.map((p) => p.name), ['postgresql-15', 'postgresql-client-15'])
  })

  it('puts the component config files into its container, and the hash into its label', () => {
    assert.deepEqual(containerOf(resources, 'postgresql').files.map((f) => f.path), ['/etc/postgresql/15/main/conf.d/50-imctl.conf', '/etc/postgresql/15/main/pg_hba.conf'])
    assert.deepEqual(containerOf(resources, 'redis').files.map((f) => f.path), ['/etc/redis/redis.conf'])
    assert.deepEqual(containerOf(resources, 'ejabberd').files.map((f) => f.path), ['/etc/ejabberd/ejabberd.yml'])
    for (const c of ORDER) {
      const r = containerOf(resources, c)
      assert.match(r.configHash, /^[0-9a-f]{16}$/)
      assert.equal(r.spec.Labels['io.imctl.config-hash'], r.configHash)
      // The stored spec is the one containerSpec builds from the same inputs.
      assert.deepEqual(r.spec, containerSpec({config, host: hostByName(config, 'local'), component: c, image: r.image, runtime: component(c).container, configHash: r.configHash}))
    }
  })

  it('points ejabberd at the network aliases and container ports, listening on every container interface', () => {
    const yml = parse(fileOf(resources, '/etc/ejabberd/ejabberd.yml').content) as {
      sql_server: string
      sql_port: number
      redis_server: string
      redis_port: number
      listen: {port: number; ip: string; module: string}[]
    }
    assert.deepEqual([yml.sql_server, yml.sql_port, yml.redis_server, yml.redis_port], ['postgresql', 5432, 'redis', 6379])
    assert.deepEqual(yml.listen.map((l) => [l.port, l.ip, l.module]), [
      [5222, '0.0.0.0', 'ejabberd_c2s'],
      [5280, '0.0.0.0', 'ejabberd_http'],
      [1883, '0.0.0.0', 'mod_mqtt'],
      [5281, '127.0.0.1', 'ejabberd_http'],
    ])
    const account = resources.find((r) => r.kind === 'xmpp-account')!
    assert.ok(account.kind === 'xmpp-account')
    assert.equal(account.apiPort, 5281)
    const schema = resources.find((r) => r.kind === 'sql-schema')!
    assert.ok(schema.kind === 'sql-schema')
    assert.deepEqual([schema.host, schema.dbHost, schema.sourcePath], ['local', 'local', '/usr/share/ejabberd/sql/pg.new.sql'])
  })

  it('renders PostgreSQL and Redis for a container: all interfaces, container ports, samenet, stdout logs', () => {
    const conf = fileOf(resources, '/etc/postgresql/15/main/conf.d/50-imctl.conf').content
    assert.ok(conf.includes("\nlisten_addresses = '*'\n"), conf)
    assert.ok(conf.includes('\nport = 5432\n'), conf)
    const hba = fileOf(resources, '/etc/postgresql/15/main/pg_hba.conf').content
    assert.ok(hba.includes('\nhost    ejabberd        ejabberd        samenet         scram-sha-256\n'), hba)
    assert.ok(hba.includes('\nhost    ejabberd        ejabberd        127.0.0.1/32    scram-sha-256\n'), hba)
    const redis = fileOf(resources, '/etc/redis/redis.conf').content
    assert.ok(redis.includes('\nbind 0.0.0.0\n'), redis)
    assert.ok(redis.includes('\nport 6379\n'), redis)
    assert.ok(redis.includes('\nsupervised no\n'), redis)
    assert.ok(!redis.includes('supervised systemd'), redis)
    assert.ok(redis.includes(`\nrequirepass ${SECRETS.redis.password}\n`), redis)
  })

  it('is pure: the same inputs give the same resources and the same config hashes', () => {
    assert.deepEqual(resourcesFor(ENGINE_YAML), resources)
  })

  it('changes only the config hash of postgresql when only its published port changes', () => {
    // Given the same cluster with postgresql published on 25432 instead of 15432
    const moved = resourcesFor(engineYaml(25432))
    // Then postgresql's container is to be recreated, and the others are left alone
    assert.notEqual(containerOf(moved, 'postgresql').configHash, containerOf(resources, 'postgresql').configHash)
    assert.equal(containerOf(moved, 'redis').configHash, containerOf(resources, 'redis').configHash)
    assert.equal(containerOf(moved, 'ejabberd').configHash, containerOf(resources, 'ejabberd').configHash)
    assert.deepEqual(containerOf(moved, 'postgresql').spec.HostConfig.PortBindings, {'5432/tcp': [{HostIp: '127.0.0.1', HostPort: '25432'}]})
    // The files inside did not change: the container still listens on 5432
    assert.deepEqual(containerOf(moved, 'postgresql').files, containerOf(resources, 'postgresql').files)
  })
})

describe('a mixed cluster (SSH and engine hosts)', () => {
  // Given postgresql on db1 (SSH, 10.0.0.11), redis and ejabberd on an engine at 10.0.0.1
  const config = configFrom(MIXED_YAML)
  const resources = resourcesFor(MIXED_YAML)

  it('reaches a target on another host by its address and configured port', () => {
    assert.deepEqual(endpointFor(config, 'postgresql', 'ejabberd'), {address: '10.0.0.11', port: 5432})
  })

  it('reaches a target on the same engine by its alias and container port, not the published one', () => {
    assert.deepEqual(endpointFor(config, 'redis', 'ejabberd'), {address: 'redis', port: 6379})
  })

  it('gives an SSH-placed consumer the engine host address and the published port', () => {
    assert.deepEqual(endpointFor(config, 'redis', 'postgresql'), {address: '10.0.0.1', port: 16379})
    assert.deepEqual(endpointFor(config, 'ejabberd', 'postgresql'), {address: '10.0.0.1', port: 5222})
  })

  it('keeps SSH resources on db1 and containers on the engine', () => {
    assert.deepEqual(
      resources.map((r) => `${r.host}:${r.component}:${r.kind}`),
      [
        'db1:postgresql:packages',
        'db1:postgresql:file',
        'db1:postgresql:file',
        'db1:postgresql:service',
        'db1:postgresql:pg-role',
        'db1:postgresql:pg-database',
        'engine:redis:network',
        'engine:redis:image',
        'engine:redis:container',
        'engine:redis:container-running',
        'engine:ejabberd:image',
        'engine:ejabberd:container',
        'engine:ejabberd:sql-schema',
        'engine:ejabberd:container-running',
        'engine:ejabberd:xmpp-account',
      ],
    )
    const yml = parse(fileOf(resources, '/etc/ejabberd/ejabberd.yml').content) as Record<string, unknown>
    assert.deepEqual([yml.sql_server, yml.sql_port, yml.redis_server, yml.redis_port], ['10.0.0.11', 5432, 'redis', 6379])
    // PostgreSQL on the SSH host admits the engine host (its containers leave through it)
    const hba = fileOf(resources, '/etc/postgresql/15/main/pg_hba.conf').content
    assert.ok(hba.includes('\nhost    ejabberd        ejabberd        10.0.0.1/32    scram-sha-256\n'), hba)
    assert.ok(!hba.includes('samenet'), hba)
  })

  it('points an IM server on an SSH host at the engine address and published ports', () => {
    // Given ejabberd on im1 (SSH) and postgresql/redis on the engine at 10.0.0.1
    const rev = resourcesFor(SSH_CONSUMER_YAML)
    const yml = parse(fileOf(rev, '/etc/ejabberd/ejabberd.yml').content) as {sql_server: string; sql_port: number; redis_server: string; redis_port: number; listen: {port: number; ip: string}[]}
    assert.deepEqual([yml.sql_server, yml.sql_port, yml.redis_server, yml.redis_port], ['10.0.0.1', 15432, '10.0.0.1', 16379])
    assert.deepEqual(yml.listen.map((l) => [l.port, l.ip]), [[5222, '10.0.0.13'], [5280, '10.0.0.13'], [1883, '10.0.0.13'], [5281, '127.0.0.1']])
  })
})

describe('planChanges on an engine host', () => {
  // Given every component on one engine host
  const config = configFrom(ENGINE_YAML)
  const resources = resourcesFor(ENGINE_YAML)
  const tag = (c: ComponentName) => containerOf(resources, c).image

  describe('on an empty engine', () => {
    const p = plan(resources, {local: emptyEngineFacts('local')})

    it('creates the network, builds three images, then creates and starts containers in dependency order', () => {
      assert.deepEqual(summary(p.steps), [
        ['postgresql', 'create', 'create network imctl-dock', 'the cluster has no network on this engine yet'],
        ['postgresql', 'build', `build image ${tag('postgresql')} (postgresql-15 postgresql-client-15 from Debian)`, 'not on this engine'],
        ['redis', 'build', `build image ${tag('redis')} (redis-server from Debian)`, 'not on this engine'],
        ['ejabberd', 'build', `build image ${tag('ejabberd')} (ejabberd erlang-p1-pgsql erlang-redis-client from Debian)`, 'not on this engine'],
        ['postgresql', 'create', 'create container imctl-dock-postgresql', 'does not exist'],
        ['postgresql', 'start', 'start container imctl-dock-postgresql', 'new container'],
        ['postgresql', 'create', 'set PostgreSQL role ejabberd (login, scram-sha-256)', 'PostgreSQL is not running yet'],
        ['postgresql', 'create', 'create database ejabberd owned by ejabberd', 'PostgreSQL is not running yet'],
        ['redis', 'create', 'create container imctl-dock-redis', 'does not exist'],
        ['redis', 'start', 'start container imctl-dock-redis', 'new container'],
        ['ejabberd', 'create', 'create container imctl-dock-ejabberd', 'does not exist'],
        ['ejabberd', 'load', 'load /usr/share/ejabberd/sql/pg.new.sql into database ejabberd on local', 'database is not ready yet'],
        ['ejabberd', 'start', 'start container imctl-dock-ejabberd', 'new container'],
        ['ejabberd', 'create', 'register XMPP account admin@dock.example.org', 'the IM server is not answering yet'],
      ])
      assert.equal(p.unchanged, 0)
      assert.deepEqual(p.blockers, [])
      assert.equal(new Set(p.steps.map((s) => s.id)).size, p.steps.length)
    })

    it('makes ejabberd start after postgresql and redis, and nothing else wait', () => {
      const starts = p.steps.filter((s) => s.action === 'start').map((s) => [s.what, s.after])
      assert.deepEqual(starts, [
        ['start container imctl-dock-postgresql', []],
        ['start container imctl-dock-redis', []],
        ['start container imctl-dock-ejabberd', ['postgresql', 'redis']],
      ])
    })

    it('carries the engine ops as data: spec and files to create, readiness check in the container to start', () => {
      const create = p.steps.find((s) => s.what === 'create container imctl-dock-redis')!
      const r = containerOf(resources, 'redis')
      assert.deepEqual(create.run, {type: 'engine', op: {op: 'create-container', spec: r.spec, files: r.files, replace: false}})
      const start = p.steps.find((s) => s.what === 'start container imctl-dock-ejabberd')!
      assert.deepEqual(start.run, {
        type: 'engine',
        op: {op: 'start-container', name: 'imctl-dock-ejabberd', ready: {argv: ['/usr/local/bin/imctl-healthcheck'], description: 'wait until ejabberd answers', component: 'ejabberd'}},
      })
      assert.deepEqual(p.steps[0]!.run, {type: 'engine', op: {op: 'network', name: 'imctl-dock'}})
      const build = p.steps[1]!
      assert.ok(build.run.type === 'engine' && build.run.op.op === 'build-image')
      assert.equal(build.run.op.tag, tag('postgresql'))
    })

    it('shows the files of new containers as diffs, with every secret redacted', () => {
      const diffs = p.steps.filter((s) => s.diff !== undefined)
      assert.deepEqual(diffs.map((s) => s.what), ['create container imctl-dock-postgresql', 'create container imctl-dock-redis', 'create container imctl-dock-ejabberd'])
      const all = diffs.map((s) => s.diff!).join('\n')
      for (const v of SECRET_VALUES) assert.ok(!all.includes(v), `secret leaked into a diff: ${v}`)
      assert.ok(all.includes('\n+requirepass ********\n'), all)
    })

    it('runs every exec step for postgresql inside the postgresql container', () => {
      const execs = p.steps.filter((s) => s.run.type === 'exec')
      assert.deepEqual(execs.map((s) => s.what), ['set PostgreSQL role ejabberd (login, scram-sha-256)', 'create database ejabberd owned by ejabberd'])
      for (const s of execs) {
        assert.ok(s.run.type === 'exec')
        assert.ok(s.run.commands.length > 0)
        assert.deepEqual(s.run.commands.map((c) => [c.component, c.asUser, c.argv[0]]), s.run.commands.map(() => ['postgresql', 'postgres', 'psql']))
      }
      // The schema is read from ejabberd's container and fed to psql in postgresql's
      const load = p.steps.find((s) => s.action === 'load')!
      assert.ok(load.run.type === 'pipe')
      assert.deepEqual(load.run.source, {host: 'local', path: '/usr/share/ejabberd/sql/pg.new.sql', component: 'ejabberd'})
      assert.deepEqual([load.run.target.host, load.run.target.command.component], ['local', 'postgresql'])
      assert.deepEqual(load.after, ['postgresql'])
    })

    it('refuses to plan a start without a readiness check', () => {
      assert.throws(() => planChanges(resources, {local: emptyEngineFacts('local')}, ORDER, dependsOn, redactSecrets), /bug: no readiness check given for postgresql/)
    })
  })

  it('plans nothing when every container is there with its config hash and running', () => {
    const p = plan(resources, convergedFacts(config, resources))
    assert.deepEqual(p.steps, [])
    assert.equal(p.unchanged, resources.length)
    assert.deepEqual(p.blockers, [])
  })

  describe('when the config of one container changed', () => {
    // Given a converged engine where postgresql's container runs an older pg_hba.conf
    const facts = convergedFacts(config, resources)
    const pg = facts.local!.engine!.containers['imctl-dock-postgresql']!
    pg.configHash = '0000000000000000'
    const hba = '/etc/postgresql/15/main/pg_hba.conf'
    pg.files[hba]!.content = Buffer.from(fileOf(resources, hba).content.replace('samenet ', '10.88.0.0/16'))
    // When planned
    const p = plan(resources, facts)

    it('recreates that container and starts it, and nothing else', () => {
      assert.deepEqual(summary(p.steps), [
        ['postgresql', 'recreate', 'recreate container imctl-dock-postgresql (its volumes are kept)', `${hba} changed`],
        ['postgresql', 'start', 'start container imctl-dock-postgresql', 'new container'],
      ])
      assert.equal(p.unchanged, resources.length - 2)
      const r = containerOf(resources, 'postgresql')
      assert.deepEqual(p.steps[0]!.run, {type: 'engine', op: {op: 'create-container', spec: r.spec, files: r.files, replace: true}})
    })

    it('shows a diff of the changed file only', () => {
      const diff = p.steps[0]!.diff!
      assert.ok(diff.includes(`--- ${hba}\tnow\n+++ ${hba}\tplanned\n`), diff)
      assert.ok(diff.includes('\n-host    ejabberd        ejabberd        10.88.0.0/16        scram-sha-256\n+host    ejabberd        ejabberd        samenet         scram-sha-256\n'), diff)
      assert.ok(!diff.includes('50-imctl.conf'), diff)
    })
  })

  describe('when a secret-bearing file in a container changed', () => {
    // Given redis.conf in the redis container differs on the line next to the password
    const facts = convergedFacts(config, resources)
    const redis = facts.local!.engine!.containers['imctl-dock-redis']!
    redis.configHash = '0000000000000000'
    const path = '/etc/redis/redis.conf'
    redis.files[path]!.content = Buffer.from(fileOf(resources, path).content.replace('protected-mode yes', 'protected-mode no'))

    it('recreates it with a diff that names the file and hides the password', () => {
      const p = plan(resources, facts)
      assert.deepEqual(summary(p.steps), [
        ['redis', 'recreate', 'recreate container imctl-dock-redis (its volumes are kept)', `${path} changed`],
        ['redis', 'start', 'start container imctl-dock-redis', 'new container'],
      ])
      const diff = p.steps[0]!.diff!
      assert.ok(diff.includes(`--- ${path}\tnow\n`), diff)
      assert.ok(diff.includes('\n-protected-mode no\n+protected-mode yes\n'), diff)
      // requirepass is a context line of the change
      assert.ok(diff.includes('\n requirepass ********\n'), diff)
      assert.ok(!diff.includes(SECRETS.redis.password), diff)
    })

    it('would show the password without the redact function', () => {
      const raw = planChanges(resources, facts, ORDER, dependsOn, undefined, {ready}).steps[0]!.diff!
      assert.ok(raw.includes(`\n requirepass ${SECRETS.redis.password}\n`), raw)
    })
  })

  it('recreates a container whose hash differs though its files do not, without a diff', () => {
    // Given the image of redis was rebuilt (new tag) while redis.conf stayed the same
    const facts = convergedFacts(config, resources)
    facts.local!.engine!.containers['imctl-dock-redis']!.configHash = '0000000000000000'
    const p = plan(resources, facts)
    assert.deepEqual(summary(p.steps), [
      ['redis', 'recreate', 'recreate container imctl-dock-redis (its volumes are kept)', 'image or settings changed'],
      ['redis', 'start', 'start container imctl-dock-redis', 'new container'],
    ])
    assert.equal(p.steps[0]!.diff, undefined)
  })

  it('starts a stopped container with the right config, and only that', () => {
    // Given ejabberd's container exists with the desired hash but is stopped
    const facts = convergedFacts(config, resources)
    facts.local!.engine!.containers['imctl-dock-ejabberd']!.running = false
    const p = plan(resources, facts)
    assert.deepEqual(p.steps.map((s) => [s.component, s.action, s.what, s.why, s.after]), [
      ['ejabberd', 'start', 'start container imctl-dock-ejabberd', 'not running', ['postgresql', 'redis']],
    ])
    assert.equal(p.unchanged, resources.length - 1)
  })

  it('builds a missing image without touching the containers that run the old one', () => {
    const facts = convergedFacts(config, resources)
    facts.local!.engine!.images = facts.local!.engine!.images.filter((t) => t !== tag('redis'))
    assert.deepEqual(summary(plan(resources, facts).steps), [['redis', 'build', `build image ${tag('redis')} (redis-server from Debian)`, 'not on this engine']])
  })
})

describe('planChanges removing containers no component wants', () => {
  // Given postgresql moved from the engine to db1, and its old container is still on the engine
  const config = configFrom(MIXED_YAML)
  const resources = resourcesFor(MIXED_YAML)
  const facts = convergedFacts(config, resources)
  facts.engine!.engine!.containers['imctl-mix-postgresql'] = {component: 'postgresql', running: true, configHash: '0123456789abcdef', files: {}}

  it('removes the container and keeps its volumes by default', () => {
    const p = plan(resources, facts)
    assert.deepEqual(p.steps, [
      {
        id: 'engine:remove:imctl-mix-postgresql',
        host: 'engine',
        component: 'postgresql',
        after: [],
        action: 'remove',
        what: 'remove container imctl-mix-postgresql (its volumes are kept)',
        why: 'postgresql is no longer placed on engine',
        run: {type: 'engine', op: {op: 'remove-container', name: 'imctl-mix-postgresql', purgeVolumes: false}},
      },
    ])
    assert.equal(p.unchanged, resources.length)
  })

  it('removes its volumes too with purgeData', () => {
    const p = plan(resources, facts, {purgeData: true})
    assert.deepEqual(p.steps.map((s) => [s.action, s.what, s.run]), [
      ['remove', 'remove container imctl-mix-postgresql and its volumes', {type: 'engine', op: {op: 'remove-container', name: 'imctl-mix-postgresql', purgeVolumes: true}}],
    ])
  })

  it('removes first, so no step in a lane waits for a component whose step comes later in that lane', () => {
    // Given postgresql just moved to a fresh db1, so ejabberd (still on the engine) must be recreated,
    // load its schema and start, all after postgresql; and the old postgresql container is still there
    const moved = convergedFacts(config, resources)
    moved.db1 = emptyFacts('db1')
    for (const r of resources) if (r.kind === 'packages') for (const p of r.packages) moved.db1.packages[p.name] = null
    const engine = moved.engine!.engine!
    engine.containers['imctl-mix-ejabberd']!.configHash = '0000000000000000'
    engine.containers['imctl-mix-postgresql'] = {component: 'postgresql', running: true, configHash: '0123456789abcdef', files: {}}
    moved.engine!.xmppAccounts = {}
    // When planned
    const p = plan(resources, moved)
    // Then the engine's lane removes the old container before anything waits for postgresql
    assert.deepEqual(
      p.steps.filter((s) => s.host === 'engine').map((s) => [s.component, s.action, s.after]),
      [
        ['postgresql', 'remove', []],
        ['ejabberd', 'recreate', []],
        ['ejabberd', 'load', ['postgresql']],
        ['ejabberd', 'start', ['postgresql', 'redis']],
        ['ejabberd', 'create', ['postgresql', 'redis']],
      ],
    )
    // applyPlan runs a lane in order and holds a step until its `after` components are done:
    // a later step of such a component in the same lane would never run.
    for (const host of ['db1', 'engine']) {
      const lane = p.steps.filter((s) => s.host === host)
      lane.forEach((s, i) => {
        const later = lane.slice(i + 1).filter((x) => s.after.includes(x.component))
        assert.deepEqual(later.map((x) => x.what), [], `${s.what} waits for a step after it on ${host}`)
      })
    }
  })

  it('keeps the containers that are still desired', () => {
    // Given the same facts without the stale container
    const clean = convergedFacts(config, resources)
    assert.deepEqual(plan(resources, clean, {purgeData: true}).steps, [])
  })
})

describe('demuxFrames', () => {
  function frame(stream: number, text: string): Buffer {
    const data = Buffer.from(text)
    const header = Buffer.alloc(8)
    header[0] = stream
    header.writeUInt32BE(data.length, 4)
    return Buffer.concat([header, data])
  }

  it('splits stdout and stderr frames at their 8-byte headers', () => {
    // Given three frames, one of them empty, in Docker's multiplexed format
    const buf = Buffer.concat([frame(1, '2024-05-01T10:00:00Z started\n'), frame(2, 'warning: low memory\n'), frame(1, ''), frame(1, 'ready\n')])
    // When split
    const frames = demuxFrames(buf)
    // Then each frame comes back with its stream and exactly its bytes
    assert.deepEqual(frames.map((f) => [f.stream, f.data.toString()]), [
      [1, '2024-05-01T10:00:00Z started\n'],
      [2, 'warning: low memory\n'],
      [1, ''],
      [1, 'ready\n'],
    ])
  })

  it('returns a buffer without headers as one stdout frame', () => {
    const buf = Buffer.from('2024-05-01T10:00:00Z plain log from a TTY container\nsecond line\n')
    assert.deepEqual(demuxFrames(buf), [{stream: 1, data: buf}])
  })

  it('returns nothing for an empty buffer', () => {
    assert.deepEqual(demuxFrames(Buffer.alloc(0)), [])
  })
})
