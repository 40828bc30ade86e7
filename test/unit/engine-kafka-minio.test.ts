import assert from 'node:assert/strict'
import {connect} from 'node:net'
import {PassThrough, type Duplex} from 'node:stream'
import {describe, it} from 'node:test'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import * as tar from 'tar-stream'
import {formatArgs, KAFKA_IMAGE_HOME, kafkaToolsFor} from '../../src/components/kafka/index.js'
import {canonicalPolicy} from '../../src/components/minio/mc.js'
import {COMPONENTS, component} from '../../src/components/registry.js'
import {containerRuntime} from '../../src/components/types.js'
import {ValidationError} from '../../src/errors.js'
import {artifactFiles, loadManifest} from '../../src/config/manifest.js'
import type {ComponentName} from '../../src/config/model.js'
import {hostByName} from '../../src/config/model.js'
import {redact, secretValues, type ClusterSecrets} from '../../src/config/secrets.js'
import {containerSpec} from '../../src/plan/container-spec.js'
import {desiredState} from '../../src/plan/desired.js'
import type {HostFacts} from '../../src/plan/facts.js'
import {planChanges} from '../../src/plan/planner.js'
import type {ContainerResource, FileResource, ImageResource, Resource} from '../../src/plan/resources.js'
import {EngineConnection} from '../../src/transport/engine.js'
import {artifactContextFiles, packContext} from '../../src/transport/engine-images.js'
import {RELEASE, SECRETS, configFrom, convergedFacts, emptyEngineFacts} from './helpers.js'

const SECOND = 1_000_000_000
const MANIFEST = loadManifest(RELEASE)
const KAFKA_VERSION = MANIFEST.artifacts!.kafka!.version
const MINIO_VERSION = MANIFEST.artifacts!.minio!.version

/** Distinctive, so a leak is easy to spot in any text. */
const ALL_SECRETS: ClusterSecrets = {
  ...SECRETS,
  kafka: {cluster_id: 'AAAAAAAAAAAAAAAAAAAAAA', broker_password: 'broker-Secret-77aa', imctl_password: 'imctl-Secret-88bb'},
  minio: {root_password: 'minio-Root-7e1f3a9c5d', backup_secret: 'minio-Backup-2b8d4f6a0c', archive_secret: 'minio-Archive-9c3e5a7b1d', health_secret: 'minio-Health-4a6c8e0b2f'},
}
const ALL_VALUES = secretValues(ALL_SECRETS)

/** The reference cluster, Kafka (1 node) and MinIO (one host, 4 drives) on one engine host, published ports non-default. */
function engineYaml(kafkaPort = 19092, drives = '[/srv/minio/d1, /srv/minio/d2, /srv/minio/d3, /srv/minio/d4]'): string {
  return `apiVersion: imctl/v1
name: dock
domain: dock.example.org
release: ${RELEASE}
hosts:
  - name: local
    address: 127.0.0.1
    engine: {socket: /run/podman/podman.sock}
components:
  postgresql: {host: local, port: 15432}
  redis: {host: local, port: 16379}
  ejabberd: {host: local, ports: {c2s: 15222, http: 15280, mqtt: 11883}}
  kafka: {hosts: [local], port: ${kafkaPort}, controllerPort: 19093}
  minio: {hosts: [local], drives: ${drives}, port: 19000, consolePort: 19001, buckets: [media]}
`
}
const ENGINE_YAML = engineYaml()

function resourcesOf(yaml: string): Resource[] {
  const config = configFrom(yaml)
  return desiredState(config, loadManifest(config.release), ALL_SECRETS)
}

const of = (rs: Resource[], c: ComponentName) => rs.filter((r) => r.component === c)
/** A file as it goes into a container (on an engine, files are part of their container). */
const fileOf = (rs: Resource[], path: string): FileResource => {
  const f = rs.flatMap((r) => (r.kind === 'container' ? r.files : r.kind === 'file' ? [r] : [])).find((r) => r.path === path)
  assert.ok(f, `no file ${path}`)
  return f
}
const containerOf = (rs: Resource[], c: ComponentName): ContainerResource => {
  const r = rs.find((x): x is ContainerResource => x.kind === 'container' && x.component === c)
  assert.ok(r, `no container for ${c}`)
  return r
}
const imageOf = (rs: Resource[], c: ComponentName): ImageResource => {
  const r = rs.find((x): x is ImageResource => x.kind === 'image' && x.component === c)
  assert.ok(r, `no image for ${c}`)
  return r
}

describe('Kafka and MinIO containers: create bodies', () => {
  // Given one engine host on 127.0.0.1
  const config = configFrom(ENGINE_YAML)
  const host = hostByName(config, 'local')
  const spec = (c: ComponentName) => containerSpec({config, host, component: c, image: `localhost/imctl-${c}:0123456789ab`, runtime: containerRuntime(component(c)), configHash: 'feedc0ffee123456'})
  const common = (c: ComponentName) => ({
    name: `imctl-dock-${c}`,
    Image: `localhost/imctl-${c}:0123456789ab`,
    Hostname: c,
    Labels: {'io.imctl.cluster': 'dock', 'io.imctl.component': c, 'io.imctl.release': RELEASE, 'io.imctl.config-hash': 'feedc0ffee123456'},
    Healthcheck: {Test: ['CMD', '/usr/local/bin/imctl-healthcheck'], Interval: 10 * SECOND, Timeout: 5 * SECOND, Retries: 3, StartPeriod: 30 * SECOND},
    NetworkingConfig: {EndpointsConfig: {'imctl-dock': {Aliases: [c]}}},
  })

  it('Kafka: client and controller listeners published on the host address, the data volume at the log dir', () => {
    assert.deepEqual(spec('kafka'), {
      ...common('kafka'),
      ExposedPorts: {'9092/tcp': {}, '9093/tcp': {}},
      HostConfig: {
        NetworkMode: 'imctl-dock',
        Mounts: [{Type: 'volume', Source: 'imctl-dock-kafka-data', Target: '/var/lib/kafka/data'}],
        PortBindings: {'9092/tcp': [{HostIp: '127.0.0.1', HostPort: '19092'}], '9093/tcp': [{HostIp: '127.0.0.1', HostPort: '19093'}]},
        RestartPolicy: {Name: 'unless-stopped'},
      },
    })
  })

  it('MinIO: S3 API and console published, one volume per drive mounted at the drive path', () => {
    assert.deepEqual(spec('minio'), {
      ...common('minio'),
      ExposedPorts: {'9000/tcp': {}, '9001/tcp': {}},
      HostConfig: {
        NetworkMode: 'imctl-dock',
        Mounts: [1, 2, 3, 4].map((i) => ({Type: 'volume', Source: `imctl-dock-minio-data${i}`, Target: `/srv/minio/d${i}`})),
        PortBindings: {'9000/tcp': [{HostIp: '127.0.0.1', HostPort: '19000'}], '9001/tcp': [{HostIp: '127.0.0.1', HostPort: '19001'}]},
        RestartPolicy: {Name: 'unless-stopped'},
      },
    })
  })

  it('MinIO with one drive: one volume named data, like every other component', () => {
    const one = configFrom(engineYaml(19092, '[/var/lib/minio/data]'))
    const s = containerSpec({config: one, host: hostByName(one, 'local'), component: 'minio', image: 'i', runtime: containerRuntime(component('minio')), configHash: 'h'})
    assert.deepEqual(s.HostConfig.Mounts, [{Type: 'volume', Source: 'imctl-dock-minio-data', Target: '/var/lib/minio/data'}])
  })
})

describe('Kafka and MinIO on an engine host: desired state', () => {
  const rs = resourcesOf(ENGINE_YAML)

  it('plans no system users, directories, run-once steps, mounts, uploads or units: the image and entrypoint do those', () => {
    // Then each is an image, a container with its files, its running state and (MinIO) its buckets and keys
    for (const c of ['kafka', 'minio'] as const) {
      const kinds = [...new Set(of(rs, c).map((r) => r.kind))]
      assert.deepEqual(kinds.filter((k) => !['minio-bucket', 'minio-user'].includes(k)), ['image', 'container', 'container-running'], c)
    }
    assert.equal(rs.filter((r) => r.kind === 'file' && r.path.startsWith('/etc/systemd/')).length, 0)
  })

  it('builds Kafka\'s image from Debian\'s Java and the release\'s jars, and MinIO\'s from its two binaries', () => {
    const k = imageOf(rs, 'kafka')
    assert.match(k.tag, /^localhost\/imctl-kafka:[0-9a-f]{12}$/)
    assert.deepEqual(k.packages, MANIFEST.hostPackages!.filter((p) => p.name === 'openjdk-17-jre-headless'))
    assert.ok(k.contextDir.endsWith('templates/images/kafka'))
    assert.deepEqual(k.contextFiles, ['Containerfile', 'entrypoint.sh', 'healthcheck.sh'])
    assert.deepEqual(k.artifacts, [{name: 'kafka', version: KAFKA_VERSION, files: artifactFiles(MANIFEST, 'kafka')}])
    const m = imageOf(rs, 'minio')
    assert.deepEqual(m.packages, [])
    assert.deepEqual(m.artifacts, [{name: 'minio', version: MINIO_VERSION, files: artifactFiles(MANIFEST, 'minio').map((f) => ({...f, mode: '755'}))}])
  })

  it('tags an image by its artifact sums too, and leaves the tags of images without artifacts as they were', () => {
    // Given the same release whose Kafka artifact lists other jars (4.3.1's sums under the same version)
    const config = configFrom(ENGINE_YAML)
    const other = structuredClone(MANIFEST)
    other.artifacts!.kafka!.sums = 'manifests/sums/kafka-4.3.1.sha256'
    // When the desired state is computed, Then only Kafka's image tag changes
    const rs2 = desiredState(config, other, ALL_SECRETS)
    assert.notEqual(imageOf(rs2, 'kafka').tag, imageOf(rs, 'kafka').tag)
    for (const c of ['postgresql', 'redis', 'ejabberd', 'minio'] as const) assert.equal(imageOf(rs2, c).tag, imageOf(rs, c).tag, c)
    // And an image without artifacts carries none (its tag hashes what it always did)
    assert.equal(imageOf(rs, 'postgresql').artifacts, undefined)
  })

  it('renders Kafka for its container: all container addresses, the host address and published port advertised, its own controller on loopback', () => {
    const props = fileOf(rs, '/etc/kafka/server.properties').content
    assert.match(props, /^listeners=CLIENT:\/\/0\.0\.0\.0:9092,CONTROLLER:\/\/0\.0\.0\.0:9093$/m)
    assert.match(props, /^advertised\.listeners=CLIENT:\/\/127\.0\.0\.1:19092$/m)
    assert.match(props, /^controller\.quorum\.voters=1@127\.0\.0\.1:9093$/m)
    assert.match(props, /^log\.dirs=\/var\/lib\/kafka\/data$/m)
    assert.match(props, /^default\.replication\.factor=1$/m)
  })

  it('puts the format\'s argument file into Kafka\'s container: kafka\'s own, 0600, the image\'s jar path, passwords only there', () => {
    const f = fileOf(rs, '/etc/kafka/imctl-format.args')
    assert.deepEqual({owner: f.owner, group: f.group, mode: f.mode, secret: f.secret}, {owner: 'kafka', group: 'kafka', mode: '600', secret: true})
    assert.equal(f.content, formatArgs(KAFKA_IMAGE_HOME, 'AAAAAAAAAAAAAAAAAAAAAA', ALL_SECRETS.kafka!))
    assert.match(f.content, /^"\/opt\/imctl\/kafka\/libs\/\*"$/m)
    assert.match(f.content, /^"SCRAM-SHA-512=\[name=broker,password=broker-Secret-77aa\]"$/m)
    assert.deepEqual(
      containerOf(rs, 'kafka').files.map((x) => `${x.path} ${x.owner}:${x.group} ${x.mode}`),
      ['/etc/kafka/server.properties root:kafka 640', '/etc/kafka/log4j2.properties root:kafka 644', '/etc/kafka/tools-log4j2.properties root:kafka 644', '/etc/kafka/imctl-format.args kafka:kafka 600'],
    )
  })

  it('gives MinIO its env file (read by MinIO itself, so its user\'s, 0600) with the drives as paths, and mc\'s alias config on loopback', () => {
    const env = fileOf(rs, '/etc/default/imctl-minio')
    assert.deepEqual({owner: env.owner, group: env.group, mode: env.mode, secret: env.secret}, {owner: 'minio-user', group: 'minio-user', mode: '600', secret: true})
    assert.match(env.content, /^MINIO_VOLUMES="\/srv\/minio\/d1 \/srv\/minio\/d2 \/srv\/minio\/d3 \/srv\/minio\/d4"$/m)
    assert.match(env.content, /^MINIO_ROOT_PASSWORD=minio-Root-7e1f3a9c5d$/m)
    assert.match(env.content, /^# Read by MinIO itself \(MINIO_CONFIG_ENV_FILE\) in its container\./m)
    const mc = JSON.parse(fileOf(rs, '/etc/imctl/minio-mc/config.json').content)
    assert.equal(mc.aliases.imctl.url, 'http://127.0.0.1:9000')
    assert.deepEqual(containerOf(rs, 'minio').files.map((x) => x.path), ['/etc/default/imctl-minio', '/etc/imctl/minio-mc/config.json'])
  })

  it('manages buckets and keys through the container\'s own mc', () => {
    const mcs = of(rs, 'minio').flatMap((r) => (r.kind === 'minio-bucket' || r.kind === 'minio-user' ? [r.mc] : []))
    assert.equal(mcs.length, 4 + 3) // imctl's three buckets and `media`, imctl's three keys
    for (const m of mcs) assert.deepEqual(m, {bin: '/opt/imctl/minio/mc', configDir: '/etc/imctl/minio-mc', alias: 'imctl', url: 'http://127.0.0.1:9000'})
  })

  it('runs Kafka\'s tools in its container on an engine, on the host elsewhere', () => {
    const config = configFrom(ENGINE_YAML)
    assert.deepEqual(kafkaToolsFor(config, KAFKA_VERSION, {host: 'local', address: '127.0.0.1'}), {home: '/opt/imctl/kafka', address: '127.0.0.1', controllerPort: 9093})
    const ssh = configFrom(ENGINE_YAML.replace("    engine: {socket: /run/podman/podman.sock}\n", '    auth: {agent: true}\n'))
    assert.deepEqual(kafkaToolsFor(ssh, KAFKA_VERSION, {host: 'local', address: '127.0.0.1'}), {home: `/opt/imctl/kafka-${KAFKA_VERSION}`, address: '127.0.0.1', controllerPort: 19093})
  })
})

describe('Kafka and MinIO on an engine host: the plan', () => {
  const rs = resourcesOf(ENGINE_YAML)
  const order = COMPONENTS.map((c) => c.name)
  const plan = (facts: Record<string, HostFacts>) =>
    planChanges(rs, facts, order, (c) => component(c).dependsOn, (t) => redact(t, ALL_VALUES), {ready: (c) => containerRuntime(component(c)).ready})

  it('on an empty engine: builds both images with their artifacts, then creates and starts each container, then buckets and keys in MinIO\'s container', () => {
    const p = plan({local: emptyEngineFacts('local')})
    const mine = p.steps.filter((s) => s.component === 'kafka' || s.component === 'minio')
    assert.deepEqual(
      mine.map((s) => s.what.replace(/:[0-9a-f]{12}/, ':TAG')),
      [
        'build image localhost/imctl-kafka:TAG (openjdk-17-jre-headless from Debian, kafka 4.4.0 from the artifact cache)',
        `build image localhost/imctl-minio:TAG (minio ${MINIO_VERSION} from the artifact cache)`,
        'create container imctl-dock-kafka',
        'start container imctl-dock-kafka',
        'create container imctl-dock-minio',
        'start container imctl-dock-minio',
        'create bucket imctl-backups',
        'create bucket imctl-archive',
        'create bucket imctl-health',
        'create bucket media',
        'set MinIO user imctl-backup (read, write, list and delete in imctl-backups only)',
        'set MinIO user imctl-archive (read, write, list and delete in imctl-archive only)',
        'set MinIO user imctl-health (read, write, list and delete in imctl-health only)',
      ],
    )
    const build = mine[0]!.run
    assert.ok(build.type === 'engine' && build.op.op === 'build-image')
    assert.deepEqual(build.op.artifacts, imageOf(rs, 'kafka').artifacts)
    // Every mc command runs inside MinIO's container; nothing is planned for the engine host's own system.
    for (const s of mine) if (s.run.type === 'exec') for (const c of s.run.commands) assert.equal(c.component, 'minio', c.description)
    const start = mine.find((s) => s.what === 'start container imctl-dock-minio')!.run
    assert.ok(start.type === 'engine' && start.op.op === 'start-container')
    assert.equal(start.op.ready.component, 'minio')
    assert.match(start.op.ready.argv.join(' '), /MC_HOST_node="\$2".*\/opt\/imctl\/minio\/mc http:\/\/127\.0\.0\.1:9000 120$/)
  })

  it('shows the new containers\' files as diffs with every secret redacted', () => {
    const steps = plan({local: emptyEngineFacts('local')}).steps.filter((s) => s.component === 'kafka' || s.component === 'minio')
    const shown = steps.map((s) => `${s.what}\n${s.why}\n${s.diff ?? ''}`).join('\n')
    assert.match(shown, /\+\+\+ \/etc\/kafka\/imctl-format\.args/)
    assert.match(shown, /\+MINIO_ROOT_PASSWORD=\*{8}/)
    for (const v of ALL_VALUES) assert.ok(!shown.includes(v), 'a secret appears in the plan as shown')
  })

  it('plans nothing once everything is there and MinIO holds its buckets and keys', () => {
    const facts = convergedFacts(configFrom(ENGINE_YAML), rs)
    for (const r of rs) {
      if (r.kind === 'minio-bucket') (facts.local!.minio ??= {buckets: [], users: {}, policies: {}}).buckets.push(r.bucket)
      if (r.kind === 'minio-user') {
        facts.local!.minio ??= {buckets: [], users: {}, policies: {}}
        facts.local!.minio.users[r.user] = {policies: [r.policy], enabled: true, secretWorks: true}
        facts.local!.minio.policies[r.policy] = canonicalPolicy(r.policyDocument)
      }
    }
    const p = plan(facts)
    assert.deepEqual(p.steps, [])
    assert.deepEqual(p.blockers, [])
  })

  it('recreates only Kafka\'s container (its volume kept) when its published port changes: clients are told the new one', () => {
    const before = containerOf(rs, 'kafka')
    const after = resourcesOf(engineYaml(19094))
    assert.notEqual(containerOf(after, 'kafka').configHash, before.configHash)
    for (const c of ['postgresql', 'redis', 'ejabberd', 'minio'] as const) assert.equal(containerOf(after, c).configHash, containerOf(rs, c).configHash, c)
    assert.match(fileOf(after, '/etc/kafka/server.properties').content, /^advertised\.listeners=CLIENT:\/\/127\.0\.0\.1:19094$/m)
    assert.deepEqual(containerOf(after, 'kafka').spec.HostConfig.Mounts, before.spec.HostConfig.Mounts)
  })
})

describe('validation: Kafka and MinIO on engine hosts', () => {
  const withSsh = (components: string) => `apiVersion: imctl/v1
name: dock
domain: dock.example.org
release: ${RELEASE}
hosts:
  - name: local
    address: 10.0.0.1
    engine: {socket: /run/podman/podman.sock}
  - {name: h2, address: 10.0.0.2, auth: {agent: true}}
  - {name: h3, address: 10.0.0.3, auth: {agent: true}}
components:
  postgresql: {host: h2}
  redis: {host: h2}
  ejabberd: {host: h2}
${components}`
  const problems = (yaml: string): string[] => {
    try {
      configFrom(yaml)
      return []
    } catch (e) {
      assert.ok(e instanceof ValidationError, String(e))
      return e.problems.map((p) => p.message)
    }
  }

  it('accepts one Kafka node and one MinIO host with its drives on an engine', () => {
    assert.deepEqual(problems(ENGINE_YAML), [])
    assert.deepEqual(problems(withSsh('  kafka: {hosts: [local]}\n  minio: {hosts: [local]}\n')), [])
  })

  it('refuses several Kafka nodes or MinIO hosts when one is an engine, naming it', () => {
    assert.deepEqual(problems(withSsh('  kafka: {hosts: [h2, local, h3]}\n  minio: {hosts: [local, h2], drives: [/d1, /d2]}\n')), [
      'Kafka on a container engine runs as a single node for now; local is a container engine and Kafka has 3 hosts',
      'MinIO on a container engine runs as a single node for now; local is a container engine and MinIO has 2 hosts',
    ])
  })

  it('still accepts several nodes on SSH hosts beside an engine', () => {
    assert.deepEqual(problems(withSsh('  kafka: {hosts: [h2]}\n  minio: {hosts: [h2, h3], drives: [/d1, /d2]}\n')), [])
  })
})

describe('image build contexts with artifact files', () => {
  it('lists an artifact\'s files under artifacts/NAME/ with their modes, and its SHA256SUMS', () => {
    const a = {name: 'minio', version: 'v1', files: [{path: 'minio', sha256: 'a'.repeat(64), mode: '755'}, {path: 'mc', sha256: 'b'.repeat(64), mode: '755'}]}
    assert.deepEqual(artifactContextFiles(a, '/cache/minio-v1'), [
      {name: 'artifacts/minio/minio', source: {file: '/cache/minio-v1/minio'}, mode: '755'},
      {name: 'artifacts/minio/mc', source: {file: '/cache/minio-v1/mc'}, mode: '755'},
      {name: 'artifacts/minio/SHA256SUMS', source: {content: `${'b'.repeat(64)}  mc\n${'a'.repeat(64)}  minio\n`}, mode: '644'},
    ])
  })

  it('packs the recipe and the extra files into one tar, parent folders first, big files streamed with their size', async () => {
    // Given a recipe folder and an artifact file elsewhere
    const recipe = mkdtempSync(join(tmpdir(), 'imctl-unit-recipe-'))
    writeFileSync(join(recipe, 'Containerfile'), 'FROM x\n')
    const cache = mkdtempSync(join(tmpdir(), 'imctl-unit-cache-'))
    const big = Buffer.alloc(300_000, 7)
    writeFileSync(join(cache, 'lib.jar'), big)
    // When packed
    const stream = packContext(recipe, ['Containerfile'], [
      {name: 'artifacts/kafka/libs/lib.jar', source: {file: join(cache, 'lib.jar')}, mode: '644'},
      {name: 'artifacts/kafka/SHA256SUMS', source: {content: 'sums\n'}, mode: '644'},
    ])
    const entries: {name: string; type: string; mode: number; body: Buffer}[] = []
    await new Promise<void>((resolve, reject) => {
      const x = tar.extract()
      x.on('entry', (h, s, next) => {
        const chunks: Buffer[] = []
        s.on('data', (b: unknown) => chunks.push(b as Buffer))
        s.on('end', () => {
          entries.push({name: h.name, type: h.type ?? 'file', mode: h.mode ?? 0, body: Buffer.concat(chunks)})
          next()
        })
      })
      x.on('finish', resolve)
      x.on('error', reject)
      stream.pipe(x)
    })
    // Then every file is there with its bytes and mode
    assert.deepEqual(entries.map((e) => `${e.type} ${e.name} ${e.mode.toString(8)}`), [
      'file Containerfile 644',
      'directory artifacts 755',
      'directory artifacts/kafka 755',
      'directory artifacts/kafka/libs 755',
      'file artifacts/kafka/libs/lib.jar 644',
      'file artifacts/kafka/SHA256SUMS 644',
    ])
    assert.ok(entries[4]!.body.equals(big))
    assert.equal(entries[5]!.body.toString(), 'sums\n')
  })
})

describe('engine tunnels to a published port', () => {
  /** A fake engine API: one running container publishing 127.0.0.1:19000 → 9000; execs are recorded and echo their stdin. */
  function fakeEngine() {
    const execs: {container: string; cmd: string[]}[] = []
    const docker = {
      listContainers: async () => [{Labels: {'io.imctl.cluster': 'dock', 'io.imctl.component': 'minio'}, Ports: [{IP: '127.0.0.1', PrivatePort: 9000, PublicPort: 19000, Type: 'tcp'}]}],
      getContainer: (name: string) => ({
        exec: async (o: {Cmd: string[]}) => {
          execs.push({container: name, cmd: o.Cmd})
          return {
            start: async () => {
              // What the container's socat would do: a duplex whose output is a multiplexed stdout frame of its input.
              const remote = new PassThrough() as unknown as Duplex
              return remote
            },
          }
        },
        modem: {demuxStream: (from: NodeJS.ReadableStream, stdout: NodeJS.WritableStream) => from.pipe(stdout)},
      }),
    }
    const host = hostByName(configFrom(ENGINE_YAML), 'local')
    return {conn: new EngineConnection(host, docker as never, 'dock'), execs}
  }

  async function roundTrip(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = connect({host: '127.0.0.1', port}, () => s.end('ping'))
      let got = ''
      s.on('data', (b) => (got += b))
      s.on('close', () => resolve(got))
      s.on('error', reject)
    })
  }

  it('reaches the host address and a published port inside the container that publishes it, at its own port', async () => {
    const {conn, execs} = fakeEngine()
    const t = await conn.tunnel('127.0.0.1', 19000)
    try {
      assert.equal(await roundTrip(t.port), 'ping')
      assert.deepEqual(execs, [{container: 'imctl-dock-minio', cmd: ['socat', '-', 'TCP:127.0.0.1:9000']}])
    } finally {
      await t.close()
    }
  })

  it('goes through the named component\'s container as given, when one is named', async () => {
    const {conn, execs} = fakeEngine()
    const t = await conn.tunnel('postgresql', 5432, 'ejabberd')
    try {
      await roundTrip(t.port)
      assert.deepEqual(execs, [{container: 'imctl-dock-ejabberd', cmd: ['socat', '-', 'TCP:postgresql:5432']}])
    } finally {
      await t.close()
    }
  })

  it('refuses a destination no container publishes, with no component named: a bug, not a guess', async () => {
    const {conn} = fakeEngine()
    await assert.rejects(conn.tunnel('127.0.0.1', 19999), /names no component container/)
  })
})
