import {pipeline as streamPipeline, type Readable} from 'node:stream'
import {createGunzip} from 'node:zlib'
import type {Admin} from 'kafkajs'
import {openKafka, type KafkaSession} from '../../components/kafka/client.js'
import {kafkaNodes} from '../../components/kafka/index.js'
import {UserError} from '../../errors.js'
import type {IoHost} from '../../io.js'
import {atomicWrite} from '../../plan/planner.js'
import {redisCliTls} from '../../components/redis/index.js'
import {shScript, type RemoteCommand} from '../../transport/command.js'
import type {HostConnection} from '../../transport/types.js'
import {appendAuditCommand, auditEntry} from '../audit.js'
import {closeAll, connectHosts, loadCluster, type ClusterModel} from '../cluster.js'
import {runHealthChecks, type HealthCheck} from '../health.js'
import {lockCluster} from '../lock.js'
import {defaultKeyFile, readManifest, storeHosts, verifyBackup} from './backup.js'
import {decryptor, loadBackupKey} from './crypto.js'
import {activeGroups, KAFKA_RECORDS, KAFKA_TOPICS, refuseActiveGroups, restoreKafka, whileCoordinatorLoads, type KafkaSnapshot} from './kafka.js'
import {checkPostgresRestore, readPgServer, restorePostgres} from './postgres.js'
import {KEPT_PREFIX, MINIO_INDEX, MINIO_OBJECTS, openMinioAsRoot, readIndex, restoreObjects} from './minio.js'
import {openBackupStore, type BackupStore} from './store.js'
import {localPort, managedFile, onStore, redisPutSteps, runStoreStep, serviceStep, type StoreName} from './store-host.js'
import {engineNames} from '../../transport/engine-names.js'
import type {S3EndpointOptions} from './s3-endpoint.js'

export interface RestoreOptions {
  configFile: string
  id: string
  to?: string
  /** With an s3:// `to`: an S3-compatible endpoint outside the cluster. */
  s3?: S3EndpointOptions
  keyFile?: string
  /** Where the set is, opened already, when it belongs to another cluster (deep verify restores into a sandbox). */
  store?: BackupStore
  /** Restore a set made on another release (the user was told what that risks). */
  allowOtherRelease?: boolean
  /** Leave out the set's stores of components this cluster does not have (deep verify's one-host sandbox), instead of refusing. */
  skipAbsentStores?: boolean
  acceptNewHostKeys?: boolean
  /** The caller holds the cluster lock already (an upgrade rolling back). */
  lockHeld?: boolean
  io: IoHost
}

export interface RestoreResult {
  id: string
  cluster: string
  steps: string[]
  /** What was there before, kept under these names. */
  keptAside: string[]
  /** Stores of the set not restored because this cluster lacks their component (only with skipAbsentStores). */
  skipped: string[]
  /** Keys in Redis once the set's RDB was loaded, before ejabberd started on it (which adds its own). */
  redisKeys: number
  health: HealthCheck[]
  healthy: boolean
}

/**
 * `imctl backup restore ID`: verifies the set, stops client traffic, restores every
 * store, starts, and runs health. Nothing is dropped: the current database, RDB and
 * AOF are kept aside under names carrying the set's id. A re-run after an
 * interruption starts the unfinished parts again and completes.
 */
export async function restoreBackup(opts: RestoreOptions): Promise<RestoreResult> {
  const model = loadCluster(opts.configFile)
  const c = model.config.components
  const keyFile = opts.keyFile ?? defaultKeyFile(model.config.name)
  const hosts = storeHosts(model)
  const conns = await connectHosts(model.config, hosts, opts)
  let store: BackupStore | undefined
  let kafka: {session: KafkaSession; admin: Admin; snapshot: KafkaSnapshot} | undefined
  try {
    store = opts.store ?? (await openBackupStore(model, opts.to, {conns, io: opts.io, s3: opts.s3}))
    return await restoreFrom(model, opts, store, conns, keyFile, (k) => (kafka = k))
  } finally {
    if (kafka) {
      await kafka.admin.disconnect().catch(() => undefined)
      await kafka.session.close()
    }
    if (!opts.store) await store?.close()
    await closeAll(conns)
  }
}

async function restoreFrom(
  model: ClusterModel,
  opts: RestoreOptions,
  store: BackupStore,
  conns: Map<string, HostConnection>,
  keyFile: string,
  opened: (k: {session: KafkaSession; admin: Admin; snapshot: KafkaSnapshot}) => void,
): Promise<RestoreResult> {
  const c = model.config.components
  const check = await verifyBackup({configFile: opts.configFile, id: opts.id, store, keyFile})
  if (!check.ok) throw new UserError(`backup set ${opts.id} cannot be restored: ${check.problems.map((p) => `${p.artifact}: ${p.problem}`).join('; ')}`, ['Pick another set (`imctl backup list`), or `imctl backup verify` it to see what is wrong.'])
  const manifest = (await readManifest(store, opts.id))!
  if (manifest.release !== model.config.release && !opts.allowOtherRelease) {
    throw new UserError(`backup set ${opts.id} was made on release ${manifest.release}, the cluster runs ${model.config.release}`, [
      'Restoring data across releases can fail or break the IM server: its schema may differ.',
      'Restore onto a cluster installed with the same release, or pass --allow-other-release if you accept that risk.',
    ])
  }
  const inSet = (component: string) => manifest.artifacts.some((a) => a.component === component)
  const absent = (['minio', 'kafka'] as const).filter((x) => inSet(x) && !c[x])
  if (absent.length && !opts.skipAbsentStores) {
    throw new UserError(`backup set ${opts.id} holds ${absent.join(' and ')} data, but this cluster has no ${absent.join(' or ')}`, [
      `Add components.${absent[0]} to cluster.yaml and run \`imctl install\`, then restore again: nothing was changed.`,
    ])
  }
  const key = loadBackupKey(keyFile, false)
  const kafkaInSet = Boolean(c.kafka && inSet('kafka'))
  const artifact = async (name: string): Promise<Readable> => {
    const a = manifest.artifacts.find((x) => x.name === name)
    const body = a ? await store.read(opts.id, name) : null
    if (!body) throw new UserError(`backup set ${opts.id} has no ${name}`)
    // The callback form destroys every stage with the error, so a broken read fails the consumer instead of stalling it.
    const done = () => undefined
    return a!.gzip ? streamPipeline(body, decryptor(key.key), createGunzip(), done) : streamPipeline(body, decryptor(key.key), done)
  }

  const steps: string[] = []
  const say = (host: string, what: string) => {
    steps.push(`${host}: ${what}`)
    opts.io.notify({type: 'info', message: `${host}: ${what}`})
  }
  let kafka: {session: KafkaSession; admin: Admin; snapshot: KafkaSnapshot} | undefined
  if (kafkaInSet) {
    // Before anything changes: a group with members cannot take offsets, so refuse now rather than half-way.
    const snapshot = JSON.parse(await text(await artifact(KAFKA_TOPICS))) as KafkaSnapshot
    const session = await openKafka(model, conns, 'imctl-restore')
    const admin = session.kafka.admin()
    kafka = {session, admin, snapshot}
    opened(kafka)
    await admin.connect()
    refuseActiveGroups(await whileCoordinatorLoads(() => activeGroups(admin, snapshot.groups.map((g) => g.groupId))))
  }
  const lock = opts.lockHeld ? {release: async () => {}} : await lockCluster([...conns.values()], `imctl backup restore ${opts.id}`, opts.io)
  try {
    // Each store's commands run where it lives: on its host, or in its container on an engine.
    const pg = onStore(conns.get(c.postgresql.host)!, 'postgresql')
    const redis = onStore(conns.get(c.redis.host)!, 'redis')
    const im = onStore(conns.get(c.ejabberd.host)!, 'ejabberd')
    const service = (conn: HostConnection, store: StoreName, op: 'stop' | 'start') => runStoreStep(conn, serviceStep(conn.kind, model.config.name, store, op))
    // What is there now is renamed, never dropped: by set and by this run, so a re-run keeps both.
    const tag = `${opts.id}_${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`.toLowerCase().replace(/[^a-z0-9_]/g, '')
    const keptAside: string[] = []
    // Before anything changes: the server is not older than the dump, owners exist, the disk has room.
    const pgServer = await readPgServer(pg)
    await checkPostgresRestore(pg, pgServer, opts.id, manifest)

    say(im.host.name, 'stop ejabberd, so no client writes while the stores are restored')
    await service(im, 'ejabberd', 'stop')

    // PostgreSQL: each database into a fresh one beside the current one, then names swapped.
    keptAside.push(...(await restorePostgres(pg, pgServer, manifest, artifact, tag, say)))

    // Redis: the RDB in place of the current data (kept aside), loaded with AOF off, then AOF rebuilt from it.
    say(redis.host.name, 'stop Redis and put the RDB from the set in place (the current data is kept aside)')
    const conf = managedFile(model, 'redis', '/etc/redis/redis.conf')
    const writeConf = (content: string, what: string): RemoteCommand => ({...atomicWrite(conf.path, conf.owner, conf.group, conf.mode), stdin: content, description: what})
    for (const step of redisPutSteps(redis.kind, model.config.name, tag, writeConf(conf.content.replace(/^appendonly yes$/m, 'appendonly no'), 'write redis.conf with AOF off for the load'))) {
      await runStoreStep(redis, step, () => artifact('redis-dump.rdb.gz.enc'))
    }
    keptAside.push(`${redis.host.name}: /var/lib/redis/dump.rdb.before-${tag}, appendonlydir.before-${tag}${redis.kind === 'engine' ? ` (in volume ${engineNames.volume(model.config.name, 'redis', 'data')})` : ''}`)
    const redisKeys = await rebuildAof(redis, model, say, () => service(redis, 'redis', 'start'), writeConf(conf.content, 'put the managed redis.conf back (AOF on, as now at runtime)'))

    // ejabberd: start it on the restored stores, then load its internal database.
    say(im.host.name, 'start ejabberd and restore its internal database')
    await service(im, 'ejabberd', 'start')
    const mnesia = '/var/lib/ejabberd/imctl-restore.mnesia'
    await im.exec({...atomicWrite(mnesia, 'ejabberd', 'ejabberd', '600'), stdinStream: await artifact('ejabberd-mnesia.backup.gz.enc'), description: 'upload the Mnesia backup'})
    await waitFor(() => im.exec({argv: ['ejabberdctl', 'status'], root: true, description: 'wait until ejabberd is started'}), 120_000)
    await im.exec({argv: ['ejabberdctl', 'restore', mnesia], root: true, description: 'restore ejabberd\'s internal database'})
    await im.exec({argv: ['rm', '-f', mnesia], root: true, description: 'remove the uploaded Mnesia backup'})

    // MinIO: buckets, then every object with its headers; other content at a key is copied aside first.
    if (c.minio && inSet('minio')) {
      const s3 = await openMinioAsRoot(model, conns)
      try {
        const index = await readIndex(await artifact(MINIO_INDEX))
        say('minio', `restore ${index.objects.size} objects into ${index.buckets.length} buckets through ${s3.target} (other content at a key is copied to ${KEPT_PREFIX}${tag}/ first)`)
        const r = await restoreObjects(s3.client, await artifact(MINIO_OBJECTS), index, tag)
        say('minio', `${r.restored} objects put (${r.bytes} bytes, each sha256 equal to the index), ${r.unchanged} already equal${r.bucketsCreated.length ? `; buckets created: ${r.bucketsCreated.join(', ')}` : ''}`)
        keptAside.push(...r.keptAside.map((k) => `MinIO: ${k}`))
      } finally {
        await s3.close()
      }
    }

    // Kafka: missing topics with their settings, records into the topics made now, then group offsets.
    if (kafka) {
      const first = conns.get(kafkaNodes(model.config)[0]!.host)!
      const markerFile = `/var/lib/imctl/kafka-restore-${opts.id}.json`
      const marker = {
        read: async () => {
          const r = await first.exec({argv: shScript('cat "$1" 2>/dev/null || true', [markerFile]), root: true, description: 'read which topics this restore fills'})
          return r.stdout.trim() ? (JSON.parse(r.stdout) as string[]) : null
        },
        write: async (topics: string[]) => {
          await first.exec({...atomicWrite(markerFile, 'root', 'root', '600'), stdin: JSON.stringify(topics) + '\n', description: `record in ${markerFile} which topics this restore fills`})
        },
      }
      const hasRecords = manifest.artifacts.some((a) => a.name === KAFKA_RECORDS)
      say('kafka', `restore ${kafka.snapshot.topics.length} topics${hasRecords ? ' with their records' : ' (settings only: the set has no records)'} and the offsets of ${kafka.snapshot.groups.length} consumer groups`)
      const r = await restoreKafka(kafka.session.kafka, kafka.admin, kafka.snapshot, hasRecords ? () => artifact(KAFKA_RECORDS) : null, marker, (w) => say('kafka', w))
      for (const n of r.notes) say('kafka', n)
      if (r.topicsKept.length) say('kafka', `topics that exist with records were kept as they are: ${r.topicsKept.join(', ')}`)
    }

    say('cluster', 'run health')
    const health = await waitForHealth(model, conns)
    const entry = auditEntry(`imctl backup restore ${opts.id}`, model.config.release, health.every((h) => h.ok) ? 'ok' : 'failed', steps.length, 0, steps)
    await Promise.allSettled([...conns.values()].map((x) => x.exec(appendAuditCommand(entry))))
    return {id: opts.id, cluster: model.config.name, steps, keptAside, skipped: absent, redisKeys, health, healthy: health.every((h) => h.ok)}
  } finally {
    await lock.release()
  }
}

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * Redis with `appendonly yes` ignores an RDB when it has no AOF, so the restored RDB is
 * loaded with AOF off (redisPutSteps wrote that config), then AOF is switched on at
 * runtime, which rewrites it from the loaded data; the managed config then matches again.
 */
async function rebuildAof(redis: HostConnection, model: ClusterModel, say: (h: string, w: string) => void, start: () => Promise<void>, managedConf: RemoteCommand): Promise<number> {
  say(redis.host.name, 'load the RDB with AOF off, then rebuild the AOF from it')
  await start()
  const port = String(localPort(model, redis.kind, 'redis'))
  const script =
    'export REDISCLI_AUTH="$(cat)"; i=0; ' +
    'until redis-cli --no-auth-warning -h 127.0.0.1 -p "$1" $2 PING 2>/dev/null | grep -q PONG; do i=$((i+1)); [ $i -gt 240 ] && { echo "Redis did not answer" >&2; exit 1; }; sleep 0.5; done; ' +
    'redis-cli --no-auth-warning -h 127.0.0.1 -p "$1" $2 CONFIG SET appendonly yes >/dev/null || exit 1; i=0; ' +
    'while :; do info=$(redis-cli --no-auth-warning -h 127.0.0.1 -p "$1" $2 INFO persistence | tr -d "\\r"); ' +
    '  if echo "$info" | grep -q "^aof_enabled:1" && echo "$info" | grep -q "^aof_rewrite_in_progress:0" && ! echo "$info" | grep -q "^aof_rewrite_scheduled:1"; then ' +
    '    echo "$info" | grep -q "^aof_last_bgrewrite_status:ok" || { echo "AOF rewrite failed" >&2; exit 1; }; break; fi; ' +
    '  i=$((i+1)); [ $i -gt 1800 ] && { echo "AOF rewrite did not finish" >&2; exit 1; }; sleep 0.5; done; ' +
    'redis-cli --no-auth-warning -h 127.0.0.1 -p "$1" $2 DBSIZE'
  const loaded = await redis.exec({argv: shScript(script, [port, redisCliTls(model.config)]), stdin: model.secrets.redis.password, description: 'switch AOF on and wait for its rewrite'})
  await redis.exec(managedConf)
  return Number(loaded.stdout.trim().split('\n').pop())
}

async function waitFor<T>(fn: () => Promise<T>, ms: number): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      return await fn()
    } catch (e) {
      if (Date.now() > deadline) throw e
      await new Promise((r) => setTimeout(r, 1000))
    }
  }
}

/** ejabberd needs a moment on restored stores: health is retried, bounded, until it passes. */
async function waitForHealth(model: ClusterModel, conns: Map<string, HostConnection>): Promise<HealthCheck[]> {
  let checks: HealthCheck[] = []
  for (let i = 0; i < 6; i++) {
    checks = await runHealthChecks(model, conns, 20)
    if (checks.every((x) => x.ok)) break
    await new Promise((r) => setTimeout(r, 5000))
  }
  return checks
}
