import {pipeline as streamPipeline, type Readable} from 'node:stream'
import {createGunzip} from 'node:zlib'
import type {Admin} from 'kafkajs'
import {openKafka, type KafkaSession} from '../../components/kafka/client.js'
import {kafkaNodes} from '../../components/kafka/index.js'
import {UserError} from '../../errors.js'
import type {IoHost} from '../../io.js'
import {sqlIdent, sqlLiteral} from '../../plan/observe.js'
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
import {activeGroups, KAFKA_RECORDS, KAFKA_TOPICS, refuseActiveGroups, restoreKafka, type KafkaSnapshot} from './kafka.js'
import {KEPT_PREFIX, MINIO_INDEX, MINIO_OBJECTS, openMinioAsRoot, readIndex, restoreObjects} from './minio.js'
import {openBackupStore, type BackupStore} from './store.js'

export interface RestoreOptions {
  configFile: string
  id: string
  to?: string
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
  if (hosts.some((h) => h.engine)) throw new UserError('restores onto engine hosts are not supported yet', ['Restore onto SSH hosts.'])
  const conns = await connectHosts(model.config, hosts, opts)
  let store: BackupStore | undefined
  let kafka: {session: KafkaSession; admin: Admin; snapshot: KafkaSnapshot} | undefined
  try {
    store = opts.store ?? (await openBackupStore(model, opts.to, {conns, io: opts.io}))
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
    refuseActiveGroups(await activeGroups(admin, snapshot.groups.map((g) => g.groupId)))
  }
  const lock = opts.lockHeld ? {release: async () => {}} : await lockCluster([...conns.values()], `imctl backup restore ${opts.id}`, opts.io)
  try {
    const pg = conns.get(c.postgresql.host)!
    const redis = conns.get(c.redis.host)!
    const im = conns.get(c.ejabberd.host)!
    // What is there now is renamed, never dropped: by set and by this run, so a re-run keeps both.
    const tag = `${opts.id}_${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`.toLowerCase().replace(/[^a-z0-9_]/g, '')
    const keptAside: string[] = []

    say(im.host.name, 'stop ejabberd, so no client writes while the stores are restored')
    await im.exec({argv: ['systemctl', 'stop', 'ejabberd'], root: true, description: 'stop ejabberd'})

    // PostgreSQL: restore into a fresh database beside the current one, then swap names.
    const staging = 'ejabberd_restoring'
    const aside = `ejabberd_before_${tag}`
    say(pg.host.name, `restore database ejabberd from the set into ${staging}`)
    await pg.exec(pgSql(`DROP DATABASE IF EXISTS ${sqlIdent(staging)} WITH (FORCE);\nCREATE DATABASE ${sqlIdent(staging)} OWNER ejabberd ENCODING 'UTF8' TEMPLATE template0;\n`, 'prepare the staging database'))
    await pg.exec({argv: ['pg_restore', '--exit-on-error', '--no-password', '-d', staging], asUser: 'postgres', stdinStream: await artifact('postgresql-ejabberd.pgdump.enc'), description: `pg_restore into ${staging}`})
    say(pg.host.name, `keep the current database as ${aside} and put the restored one in its place`)
    await pg.exec(
      pgSql(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'ejabberd';\n` +
          `SELECT format('ALTER DATABASE ejabberd RENAME TO %I', ${sqlLiteral(aside)}) WHERE EXISTS (SELECT 1 FROM pg_database WHERE datname = 'ejabberd')\\gexec\n` +
          `ALTER DATABASE ${sqlIdent(staging)} RENAME TO ejabberd;\n`,
        'swap the restored database in',
      ),
    )
    keptAside.push(`${pg.host.name}: database ${aside}`)

    // Redis: the RDB in place of the current data (kept aside), loaded with AOF off, then AOF rebuilt from it.
    say(redis.host.name, 'stop Redis and put the RDB from the set in place (the current data is kept aside)')
    await redis.exec({argv: ['systemctl', 'stop', 'redis-server'], root: true, description: 'stop Redis'})
    await redis.exec({
      argv: shScript('cd /var/lib/redis && for f in dump.rdb appendonlydir; do if [ -e "$f" ]; then mv "$f" "$f.before-$1"; fi; done', [tag]),
      root: true,
      description: 'keep the current Redis data aside',
    })
    keptAside.push(`${redis.host.name}: /var/lib/redis/dump.rdb.before-${tag}, appendonlydir.before-${tag}`)
    await redis.exec({...atomicWrite('/var/lib/redis/dump.rdb', 'redis', 'redis', '660'), stdinStream: await artifact('redis-dump.rdb.gz.enc')})
    await rebuildAof(redis, model, say)

    // ejabberd: start it on the restored stores, then load its internal database.
    say(im.host.name, 'start ejabberd and restore its internal database')
    await im.exec({argv: ['systemctl', 'start', 'ejabberd'], root: true, description: 'start ejabberd'})
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
    return {id: opts.id, cluster: model.config.name, steps, keptAside, skipped: absent, health, healthy: health.every((h) => h.ok)}
  } finally {
    await lock.release()
  }
}

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function pgSql(sql: string, description: string): RemoteCommand {
  return {argv: ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres'], stdin: sql, asUser: 'postgres', description}
}

/**
 * Redis with `appendonly yes` ignores an RDB when it has no AOF, so the restored RDB is
 * loaded with AOF off (a temporary copy of the managed config), then AOF is switched on
 * at runtime, which rewrites it from the loaded data; the managed config then matches again.
 */
async function rebuildAof(redis: HostConnection, model: ClusterModel, say: (h: string, w: string) => void): Promise<void> {
  const managed = model.resources.find((r) => r.kind === 'file' && r.path === '/etc/redis/redis.conf')
  if (managed?.kind !== 'file') throw new Error('bug: no managed redis.conf')
  const write = (content: string, what: string) =>
    redis.exec({...atomicWrite(managed.path, managed.owner, managed.group, managed.mode), stdin: content, description: what})
  say(redis.host.name, 'load the RDB with AOF off, then rebuild the AOF from it')
  await write(managed.content.replace(/^appendonly yes$/m, 'appendonly no'), 'write redis.conf with AOF off for the load')
  await redis.exec({argv: ['systemctl', 'start', 'redis-server'], root: true, description: 'start Redis on the restored RDB'})
  const port = String(model.config.components.redis.port)
  const script =
    'export REDISCLI_AUTH="$(cat)"; i=0; ' +
    'until redis-cli --no-auth-warning -h 127.0.0.1 -p "$1" $2 PING 2>/dev/null | grep -q PONG; do i=$((i+1)); [ $i -gt 240 ] && { echo "Redis did not answer" >&2; exit 1; }; sleep 0.5; done; ' +
    'redis-cli --no-auth-warning -h 127.0.0.1 -p "$1" $2 CONFIG SET appendonly yes >/dev/null || exit 1; i=0; ' +
    'while :; do info=$(redis-cli --no-auth-warning -h 127.0.0.1 -p "$1" $2 INFO persistence | tr -d "\\r"); ' +
    '  if echo "$info" | grep -q "^aof_enabled:1" && echo "$info" | grep -q "^aof_rewrite_in_progress:0" && ! echo "$info" | grep -q "^aof_rewrite_scheduled:1"; then ' +
    '    echo "$info" | grep -q "^aof_last_bgrewrite_status:ok" || { echo "AOF rewrite failed" >&2; exit 1; }; break; fi; ' +
    '  i=$((i+1)); [ $i -gt 1800 ] && { echo "AOF rewrite did not finish" >&2; exit 1; }; sleep 0.5; done; ' +
    'redis-cli --no-auth-warning -h 127.0.0.1 -p "$1" $2 DBSIZE'
  await redis.exec({argv: shScript(script, [port, redisCliTls(model.config)]), stdin: model.secrets.redis.password, description: 'switch AOF on and wait for its rewrite'})
  await write(managed.content, 'put the managed redis.conf back (AOF on, as now at runtime)')
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
