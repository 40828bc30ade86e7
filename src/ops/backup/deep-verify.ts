import {randomBytes} from 'node:crypto'
import {appendFileSync, mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {pipeline as streamPipeline, Writable, type Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createGunzip} from 'node:zlib'
import {openKafka} from '../../components/kafka/client.js'
import {getObjectStream, listObjects} from '../../components/minio/s3.js'
import {loadManifest} from '../../config/manifest.js'
import {ensureSecrets} from '../../config/secrets.js'
import {UserError} from '../../errors.js'
import type {IoHost} from '../../io.js'
import {createSandbox, destroySandbox} from '../../sandbox/sandbox.js'
import type {HostConnection} from '../../transport/types.js'
import {ensureArtifact} from '../artifacts.js'
import {closeAll, connectHosts, loadCluster, type ClusterModel} from '../cluster.js'
import {installService} from '../install.js'
import {COUNT_ROWS_SQL, defaultKeyFile, parseCounts, readManifest, verifyBackup, type BackupManifest, type VerifyResult} from './backup.js'
import {decryptor, HashTap, loadBackupKey} from './crypto.js'
import {compareKafka, compareObjects, compareRowCounts, type Mismatch, type RecordFacts, type RestoredObject} from './deep-compare.js'
import {KAFKA_RECORDS, KAFKA_TOPICS, OffsetMap, snapshotKafka, whileCoordinatorLoads, type KafkaSnapshot, type RecordLine} from './kafka.js'
import {MINIO_INDEX, MINIO_OBJECTS, openMinioAsRoot, readIndex} from './minio.js'
import type {S3EndpointOptions} from './s3-endpoint.js'
import {pgDatabaseArtifacts, pgQuery} from './postgres.js'
import {restoreBackup} from './restore.js'
import {openBackupStore, type BackupStore} from './store.js'

export interface DeepVerifyResult extends VerifyResult {
  deep: {
    sandbox: string
    healthy: boolean
    tablesCompared: number
    /** Whether Redis's key count was compared with the manifest's. */
    redisKeysCompared: boolean
    objectsCompared: number
    topicsCompared: number
    groupsCompared: number
    /** Records compared by count per partition (0 when the set has no records). */
    recordsCompared: number
    /** Stores of the set left out, each with why (none when every store could be restored). */
    storesNotRestored: string[]
    notes: string[]
  } | null
}

/** A set's optional stores: each needs its component (and its artifact) in the throwaway sandbox. */
const OPTIONAL_STORES = ['minio', 'kafka'] as const
type OptionalStore = (typeof OPTIONAL_STORES)[number]

/**
 * `imctl backup verify ID --deep`: the checksums, then a real restore of every
 * store of the set into a throwaway one-host sandbox of the same release and
 * domain (with single-node MinIO and Kafka when the set has their data), its
 * health, and a comparison with what the set says: every table's row count,
 * Redis's key count, every object's sha256 and headers against the index, every
 * topic's settings, every group's offsets and, with records, each partition's
 * record count. The sandbox is always removed.
 */
export async function deepVerifyBackup(opts: {configFile: string; id: string; to?: string; s3?: S3EndpointOptions; keyFile?: string; io: IoHost}): Promise<DeepVerifyResult> {
  const model = loadCluster(opts.configFile)
  const store = await openBackupStore(model, opts.to, {io: opts.io, s3: opts.s3})
  try {
    return await deepVerifyFrom(model, store, opts)
  } finally {
    await store.close()
  }
}

async function deepVerifyFrom(model: ClusterModel, store: BackupStore, opts: {configFile: string; id: string; keyFile?: string; io: IoHost}): Promise<DeepVerifyResult> {
  const keyFile = opts.keyFile ?? defaultKeyFile(model.config.name)
  const shallow = await verifyBackup({configFile: opts.configFile, id: opts.id, store, keyFile})
  if (!shallow.ok) return {...shallow, deep: null}
  const manifest = (await readManifest(store, opts.id))!
  const key = loadBackupKey(keyFile, false)
  const artifact = (name: string) => readArtifact(store, manifest, key.key, name)

  // The set's MinIO and Kafka data need those components in the sandbox, and they need their artifacts here.
  const notRestored = new Map<OptionalStore, string>()
  const wanted: OptionalStore[] = []
  const release = loadManifest(manifest.release)
  for (const c of OPTIONAL_STORES) {
    if (!manifest.artifacts.some((a) => a.component === c)) continue
    try {
      if (!release.artifacts?.[c]) throw new UserError(`release ${manifest.release} has no ${c} artifact`)
      await ensureArtifact(release, c, opts.io)
      wanted.push(c)
    } catch (e) {
      notRestored.set(c, (e as Error).message)
      opts.io.notify({type: 'warning', message: `${c}: the set's data cannot be restored into the sandbox: ${(e as Error).message}`})
    }
  }

  const name = `vfy-${randomBytes(3).toString('hex')}`
  const sbDir = mkdtempSync(join(tmpdir(), `imctl-${name}-`))
  const problems = [...shallow.problems]
  const notes: string[] = []
  const deep = (extra: Partial<NonNullable<DeepVerifyResult['deep']>>): NonNullable<DeepVerifyResult['deep']> => ({
    sandbox: name,
    healthy: false,
    tablesCompared: 0,
    redisKeysCompared: false,
    objectsCompared: 0,
    topicsCompared: 0,
    groupsCompared: 0,
    recordsCompared: 0,
    storesNotRestored: [...notRestored.keys()],
    notes: [...notes, ...[...notRestored].map(([c, why]) => `${c} not restored: ${why}`)],
    ...extra,
  })
  opts.io.notify({type: 'info', message: `restoring ${opts.id} into a throwaway sandbox ${name} (release ${manifest.release}${wanted.length ? `, with ${wanted.join(' and ')}` : ''})`})
  try {
    const sb = await createSandbox({name, hosts: 1, dir: sbDir, domain: manifest.domain, release: manifest.release, io: opts.io})
    if (wanted.length) {
      // One node of each on the sandbox's only host, default ports and drive: all a restore of the set needs.
      appendFileSync(sb.configFile, wanted.map((c) => `  ${c}: {hosts: [h1]}\n`).join(''))
      ensureSecrets(sb.secretsFile, wanted)
    }
    const installed = await installService({configFile: sb.configFile, io: opts.io, command: 'imctl backup verify --deep (sandbox install)'})
    if (installed.failed || installed.skipped) {
      problems.push({artifact: 'sandbox', problem: `the throwaway install failed: ${installed.applied.filter((a) => a.status === 'failed').map((a) => a.error).join('; ')}`})
      return {...shallow, ok: false, problems, deep: deep({})}
    }
    const restored = await restoreBackup({configFile: sb.configFile, id: opts.id, store, keyFile, skipAbsentStores: true, io: opts.io})
    if (!restored.healthy) problems.push({artifact: 'restore', problem: `health after the restore: ${restored.health.filter((h) => !h.ok).map((h) => `${h.component}: ${h.detail}`).join('; ')}`})
    for (const s of restored.skipped) if (!notRestored.has(s as OptionalStore)) notRestored.set(s as OptionalStore, 'the sandbox has no such component')

    const sbModel = loadCluster(sb.configFile)
    const conns = await connectHosts(sbModel.config, sbModel.config.hosts, {io: opts.io})
    try {
      const host = conns.get('h1')!
      const pg = await comparePostgres(manifest, host)
      const redis = compareRedis(manifest, restored.redisKeys)
      problems.push(...pg.problems, ...redis.problems)
      const minio = wanted.includes('minio') ? await compareMinio(sbModel, conns, artifact) : {problems: [], objects: 0}
      const kafka = wanted.includes('kafka') ? await compareKafkaStores(sbModel, conns, manifest, artifact) : {problems: [], topics: 0, groups: 0, records: 0}
      problems.push(...minio.problems, ...kafka.problems)
      return {
        ...shallow,
        ok: problems.length === 0,
        problems,
        deep: deep({healthy: restored.healthy, tablesCompared: pg.tables, redisKeysCompared: redis.compared, objectsCompared: minio.objects, topicsCompared: kafka.topics, groupsCompared: kafka.groups, recordsCompared: kafka.records}),
      }
    } finally {
      await closeAll(conns)
    }
  } finally {
    await destroySandbox(name, sbDir).catch(() => undefined)
  }
}

/** An artifact's plain bytes: decrypted and, where it was gzipped, gunzipped. */
async function readArtifact(store: BackupStore, manifest: BackupManifest, key: Buffer, name: string): Promise<Readable> {
  const a = manifest.artifacts.find((x) => x.name === name)
  const body = a ? await store.read(manifest.id, name) : null
  if (!a || !body) throw new UserError(`backup set ${manifest.id} has no ${name}`)
  const done = () => undefined
  return a.gzip ? streamPipeline(body, decryptor(key), createGunzip(), done) : streamPipeline(body, decryptor(key), done)
}

/** Every PostgreSQL artifact that carries row counts, against the database it names (postgresql-<db>.…; ejabberd otherwise). */
async function comparePostgres(manifest: BackupManifest, host: HostConnection): Promise<{problems: Mismatch[]; tables: number}> {
  const problems: Mismatch[] = []
  let tables = 0
  // Every database of the set (a format-1 set: ejabberd's only), each table's rows against the manifest.
  for (const a of pgDatabaseArtifacts(manifest).filter((x) => x.counts)) {
    const database = a.postgresql.database
    const got = parseCounts((await host.exec(pgQuery(COUNT_ROWS_SQL, `count the rows of every table in ${database}`, database))).stdout)
    problems.push(...compareRowCounts(a.name, a.counts!, got))
    tables += Object.keys(a.counts!).length
  }
  return {problems, tables}
}

/**
 * Redis's key count once the restore loaded the set's RDB, against the manifest's. Counted
 * before ejabberd starts on it: ejabberd adds keys of its own (sessions) as soon as it runs.
 */
function compareRedis(manifest: BackupManifest, loaded: number): {problems: Mismatch[]; compared: boolean} {
  const a = manifest.artifacts.find((x) => x.component === 'redis' && x.counts?.keys !== undefined)
  if (!a) return {problems: [], compared: false}
  return {problems: loaded === a.counts!.keys ? [] : [{artifact: a.name, problem: `${loaded} Redis keys restored, the manifest says ${a.counts!.keys}`}], compared: true}
}

/** Every object of the index read back from the restored MinIO and hashed. */
async function compareMinio(sb: ClusterModel, conns: Map<string, HostConnection>, artifact: (name: string) => Promise<Readable>): Promise<{problems: Mismatch[]; objects: number}> {
  const index = await readIndex(await artifact(MINIO_INDEX))
  const s3 = await openMinioAsRoot(sb, conns)
  try {
    const restored = new Map<string, Map<string, RestoredObject>>()
    for (const bucket of index.buckets) {
      const objects = new Map<string, RestoredObject>()
      try {
        for await (const o of listObjects(s3.client, bucket)) {
          const {body, size: _size, etag: _etag, lastModified: _lm, ...headers} = await getObjectStream(s3.client, bucket, o.key)
          const tap = new HashTap()
          await pipeline(body, tap, new Writable({write: (_c, _e, cb) => cb()}))
          objects.set(o.key, {size: tap.size, sha256: tap.hash.digest('hex'), headers})
        }
      } catch (e) {
        if ((e as {$metadata?: {httpStatusCode?: number}}).$metadata?.httpStatusCode === 404) continue
        throw e
      }
      restored.set(bucket, objects)
    }
    return {problems: compareObjects(MINIO_OBJECTS, {buckets: index.buckets, objects: index.objects.values()}, restored), objects: index.objects.size}
  } finally {
    await s3.close()
  }
}

/** The restored Kafka's topics, groups and record counts against the set's snapshot and records. */
async function compareKafkaStores(sb: ClusterModel, conns: Map<string, HostConnection>, manifest: BackupManifest, artifact: (name: string) => Promise<Readable>): Promise<{problems: Mismatch[]; topics: number; groups: number; records: number}> {
  const set = JSON.parse(await text(await artifact(KAFKA_TOPICS))) as KafkaSnapshot
  const records = manifest.artifacts.some((a) => a.name === KAFKA_RECORDS) ? await recordFacts(set, await artifact(KAFKA_RECORDS)) : null
  const session = await openKafka(sb, conns, 'imctl-verify')
  const admin = session.kafka.admin()
  try {
    await admin.connect()
    const restored = await whileCoordinatorLoads(() => snapshotKafka(admin))
    const brokers = (await admin.describeCluster()).brokers.length
    return {
      problems: compareKafka({topics: KAFKA_TOPICS, records: KAFKA_RECORDS}, set, restored, brokers, records),
      topics: set.topics.length,
      groups: set.groups.length,
      records: records ? [...records.counts.values()].reduce((n, x) => n + x, 0) : 0,
    }
  } finally {
    await admin.disconnect().catch(() => undefined)
    await session.close()
  }
}

/** Per partition, how many records the set has, and each committed offset as the restore translates it. */
export async function recordFacts(set: KafkaSnapshot, lines: Readable): Promise<RecordFacts> {
  const map = new OffsetMap(set)
  const counts = new Map<string, number>()
  for await (const line of createInterface({input: lines, crlfDelay: Infinity})) {
    if (!line) continue
    const r = JSON.parse(line) as RecordLine
    map.saw(r.t, r.p, r.o)
    counts.set(`${r.t}/${r.p}`, (counts.get(`${r.t}/${r.p}`) ?? 0) + 1)
  }
  const offsets = new Map<string, string>()
  for (const g of set.groups) for (const o of g.offsets) offsets.set(`${g.groupId} ${o.topic}/${o.partition}`, map.translate(o.topic, o.partition, o.offset))
  return {counts, offsets}
}

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
