import {readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {basename, join} from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createGzip} from 'node:zlib'
import * as tar from 'tar-stream'
import {openKafka} from '../../components/kafka/client.js'
import {kafkaNodes} from '../../components/kafka/index.js'
import {minioNodes} from '../../components/minio/index.js'
import type {ComponentName, HostConfig} from '../../config/model.js'
import {UserError} from '../../errors.js'
import {silentIo, type IoHost} from '../../io.js'
import {redisCliTls} from '../../components/redis/index.js'
import {shScript, type RemoteCommand} from '../../transport/command.js'
import type {HostConnection} from '../../transport/types.js'
import {appendAuditCommand, auditEntry} from '../audit.js'
import {closeAll, connectHosts, loadCluster, type ClusterModel} from '../cluster.js'
import {lockCluster} from '../lock.js'
import {ArtifactCheck, encryptor, HashTap, loadBackupKey, sealManifest} from './crypto.js'
import {dumpRecords, KAFKA_RECORDS, KAFKA_TOPICS, snapshotCounts, snapshotKafka} from './kafka.js'
import {bucketsToBackUp, dumpObjects, indexText, MINIO_INDEX, MINIO_OBJECTS, NOT_BACKED_UP, openMinioAsRoot} from './minio.js'
import {backupPostgres, COUNT_ROWS_SQL, MANIFEST_FORMAT, manifestFormatProblem, parseCounts, readPgServer, type PgArtifactInfo, type PgFormat} from './postgres.js'
import {backupRoot, isS3, openBackupStore, parseS3Url, type BackupStore} from './store.js'
import type {S3EndpointOptions} from './s3-endpoint.js'
import {commandOutput} from '../../transport/stream.js'
import {localPort, onStore} from './store-host.js'

export interface ArtifactRecord {
  name: string
  component: ComponentName | 'cluster'
  host: string
  what: string
  sha256: string
  size: number
  gzip: boolean
  counts?: Record<string, number>
  /** A database's dump (format 2): which database, in which format, its owner, encoding and size. */
  postgresql?: PgArtifactInfo
}

export interface BackupManifest {
  /** 1: one custom-format dump of `ejabberd`; 2: one artifact per database (see postgres.ts). */
  format: 1 | 2
  id: string
  cluster: string
  domain: string
  release: string
  versions: Record<string, string>
  startedAt: string
  finishedAt: string
  keyFingerprint: string
  artifacts: ArtifactRecord[]
}

export interface BackupOptions {
  configFile: string
  /** Where sets are kept (default: backups/ beside cluster.yaml). */
  to?: string
  /** With an s3:// `to`: an S3-compatible endpoint outside the cluster instead of the cluster's MinIO. */
  s3?: S3EndpointOptions
  /** The key file (default: ~/.config/imctl/<cluster>.backup-key, apart from the backups). */
  keyFile?: string
  acceptNewHostKeys?: boolean
  /** Kafka: every record of every topic too, not only topic settings and group offsets. */
  kafkaData?: boolean
  /** PostgreSQL: `directory` (pg_dump -Fd -j N, staged on the database host; default) or `custom` (streamed, no copy there). */
  pgFormat?: PgFormat
  /** The caller holds the cluster lock already (an upgrade backing up before it starts). */
  lockHeld?: boolean
  io: IoHost
}

export {backupRoot}

export function defaultKeyFile(cluster: string): string {
  return join(homedir(), '.config', 'imctl', `${cluster}.backup-key`)
}

/** A set's id: its UTC start time, sortable. */
function newId(now = new Date()): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
}

/**
 * `imctl backup create`: one consistent set of every store, streamed from the hosts,
 * gzipped where it helps, encrypted with AES-256-GCM. The manifest (sealed with an
 * HMAC of the key) is written last: a set without it is incomplete.
 */
export async function createBackup(opts: BackupOptions): Promise<BackupManifest & {dir: string; keyFile: string; keyCreated: boolean}> {
  if (isS3(opts.to) && !parseS3Url(opts.to!)) throw new UserError(`--to ${opts.to}: write s3://BUCKET or s3://BUCKET/PREFIX`)
  const model = loadCluster(opts.configFile)
  const c = model.config.components
  const hosts = storeHosts(model)
  const keyFile = opts.keyFile ?? defaultKeyFile(model.config.name)
  const key = loadBackupKey(keyFile, true)
  if (key.created) opts.io.notify({type: 'warning', message: `created the backup key ${keyFile}: keep a copy apart from the backups and the cluster; without it no set can be restored`})

  const conns = await connectHosts(model.config, hosts, opts)
  let store: BackupStore | undefined
  try {
    store = await openBackupStore(model, opts.to, {conns, io: opts.io, s3: opts.s3})
    const startedAt = new Date()
    const id = newId(startedAt)
    const dir = `${store.root}/${id}`
    if (await store.has(id)) throw new UserError(`backup set ${id} already exists`, ['Wait a second and run again.'])
    await store.begin(id)
    const lock = opts.lockHeld ? {release: async () => {}} : await lockCluster([...conns.values()], 'imctl backup create', opts.io)
    try {
      // Each store's commands run where it lives: on its host, or in its container on an engine.
      const pg = onStore(conns.get(c.postgresql.host)!, 'postgresql')
      const redis = onStore(conns.get(c.redis.host)!, 'redis')
      const im = onStore(conns.get(c.ejabberd.host)!, 'ejabberd')
      const artifacts: ArtifactRecord[] = []
      const save = async (a: Omit<ArtifactRecord, 'sha256' | 'size'>, source: () => Promise<Readable>): Promise<ArtifactRecord> => {
        opts.io.notify({type: 'info', message: `${a.host}: ${a.what}`})
        const tap = new HashTap()
        const input = await source()
        const out = await store!.writer(id, a.name)
        try {
          if (a.gzip) await pipeline(input, createGzip(), encryptor(key.key), tap, out.sink)
          else await pipeline(input, encryptor(key.key), tap, out.sink)
          await out.commit()
        } catch (e) {
          await out.abort()
          throw e
        }
        const record = {...a, sha256: tap.hash.digest('hex'), size: tap.size}
        artifacts.push(record)
        return record
      }

      // Versions, so a restore can refuse a mismatched release and an older PostgreSQL.
      const pgServer = await readPgServer(pg)
      const versions: Record<string, string> = {
        postgresql: (await pg.exec({...psql('postgres', 'SHOW server_version;'), component: 'postgresql'})).stdout.trim(),
        pg_dump: pgServer.pgDumpVersion,
        redis: (await redis.exec({argv: ['redis-server', '--version'], description: 'read Redis\'s version'})).stdout.trim(),
        ejabberd: (await im.exec({argv: ['dpkg-query', '-W', '-f', '${Version}', 'ejabberd'], description: 'read ejabberd\'s version'})).stdout.trim(),
        ...(c.minio ? {minio: model.manifest.artifacts!.minio!.version} : {}),
        ...(c.kafka ? {kafka: model.manifest.artifacts!.kafka!.version} : {}),
      }

      // PostgreSQL: every database with its tables' row counts, by the server's own pg_dump, and the roles.
      await backupPostgres(pg, pgServer, opts.pgFormat ?? 'directory', save, opts.io)

      // Redis: a fresh BGSAVE that finished and succeeded, then its RDB file.
      const keys = await bgsave(redis, model)
      await save({name: 'redis-dump.rdb.gz.enc', component: 'redis', host: redis.host.name, what: 'Redis RDB after a successful BGSAVE', gzip: true, counts: {keys}}, () =>
        commandOutput(redis, {argv: ['cat', '/var/lib/redis/dump.rdb'], root: true, description: 'read dump.rdb'}),
      )

      // ejabberd: its internal (Mnesia) database and its configuration.
      const mnesia = '/var/lib/ejabberd/imctl-backup.mnesia'
      await im.exec({argv: ['ejabberdctl', 'backup', mnesia], root: true, description: 'back up ejabberd\'s internal database'})
      await save({name: 'ejabberd-mnesia.backup.gz.enc', component: 'ejabberd', host: im.host.name, what: 'ejabberd internal database (ejabberdctl backup)', gzip: true}, () =>
        commandOutput(im, {argv: ['cat', mnesia], root: true, description: 'read the Mnesia backup'}),
      )
      await im.exec({argv: ['rm', '-f', mnesia], root: true, description: 'remove the Mnesia backup file'})
      await save({name: 'ejabberd-config.yml.gz.enc', component: 'ejabberd', host: im.host.name, what: 'ejabberd configuration', gzip: true}, () =>
        commandOutput(im, {argv: ['cat', '/etc/ejabberd/ejabberd.yml'], root: true, description: 'read ejabberd.yml'}),
      )

      // MinIO: every bucket's objects with their headers in one tar, then the index with each object's sha256.
      if (c.minio) {
        const s3 = await openMinioAsRoot(model, conns)
        try {
          const buckets = await bucketsToBackUp(s3.client)
          const dump = dumpObjects(s3.client, buckets)
          const objects = await save({name: MINIO_OBJECTS, component: 'minio', host: minioNodes(model.config)[0]!.host, what: `objects of ${buckets.length} buckets with their headers (all but ${NOT_BACKED_UP.join(', ')}: the backups themselves)`, gzip: false}, async () => dump.stream)
          objects.counts = dump.counts
          await save({name: MINIO_INDEX, component: 'minio', host: objects.host, what: 'index of the objects: bucket, key, headers, size, sha256', gzip: true, counts: {objects: dump.counts.objects!}}, async () => Readable.from([indexText(dump.index)]))
        } finally {
          await s3.close()
        }
      }

      // Kafka: topic settings and group offsets; with --kafka-data every record up to the offsets read then.
      if (c.kafka) {
        const host = kafkaNodes(model.config)[0]!.host
        const session = await openKafka(model, conns, 'imctl-backup')
        const admin = session.kafka.admin()
        try {
          await admin.connect()
          const snapshot = await snapshotKafka(admin)
          await save({name: KAFKA_TOPICS, component: 'kafka', host, what: 'topic settings and consumer-group offsets', gzip: true, counts: snapshotCounts(snapshot)}, async () => Readable.from([JSON.stringify(snapshot, null, 1) + '\n']))
          if (opts.kafkaData) {
            const counts: Record<string, number> = {}
            const group = `imctl-backup-${id.toLowerCase()}`
            const records = await save({name: KAFKA_RECORDS, component: 'kafka', host, what: 'every record of every topic: key, value, headers, timestamp', gzip: true}, async () => dumpRecords(session.kafka, snapshot, group, counts))
            records.counts = counts
            await admin.deleteGroups([group]).catch(() => undefined)
          }
        } finally {
          await admin.disconnect().catch(() => undefined)
          await session.close()
        }
      }

      // The cluster's own definition, secrets and rendered configuration.
      await save({name: 'cluster.tar.gz.enc', component: 'cluster', host: 'local', what: 'cluster.yaml, secrets file and every rendered file', gzip: true}, async () => clusterTar(model))

      const body: BackupManifest = {
        format: MANIFEST_FORMAT,
        id,
        cluster: model.config.name,
        domain: model.config.domain,
        release: model.config.release,
        versions,
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        keyFingerprint: key.fingerprint,
        artifacts,
      }
      // Written last, atomically: only now is the set complete.
      const manifestOut = await store.writer(id, 'manifest.json')
      await pipeline(Readable.from([JSON.stringify({...body, hmac: sealManifest(body, key.key)}, null, 2) + '\n']), manifestOut.sink)
      await manifestOut.commit()
      const entry = auditEntry('imctl backup create', model.config.release, 'ok', 0, 0, [`backup set ${id}: ${artifacts.length} artifacts`])
      await Promise.allSettled([...conns.values()].map((x) => x.exec(appendAuditCommand(entry))))
      return {...body, dir, keyFile, keyCreated: key.created}
    } finally {
      await lock.release()
    }
  } finally {
    await store?.close()
    await closeAll(conns)
  }
}

/** Every host a store of the cluster lives on. */
export function storeHosts(model: ClusterModel): HostConfig[] {
  const c = model.config.components
  const names = new Set([c.postgresql.host, c.redis.host, c.ejabberd.host, ...(c.kafka?.hosts ?? []), ...(c.minio?.hosts ?? [])])
  return model.config.hosts.filter((h) => names.has(h.name))
}

export {COUNT_ROWS_SQL, parseCounts}

export function psql(database: string, sql: string): RemoteCommand {
  return {argv: ['psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-F', '\t', '-d', database], stdin: sql, asUser: 'postgres', description: `query database ${database}`}
}

/** Starts BGSAVE and waits until it finished and succeeded; returns the number of keys. */
async function bgsave(conn: HostConnection, model: ClusterModel): Promise<number> {
  const port = String(localPort(model, conn.kind, 'redis'))
  // The password arrives on stdin, never in argv.
  const script =
    'export REDISCLI_AUTH="$(cat)"; ' +
    'before=$(redis-cli --no-auth-warning -h 127.0.0.1 -p "$1" $2 LASTSAVE) || exit 1; ' +
    'out=$(redis-cli --no-auth-warning -h 127.0.0.1 -p "$1" $2 BGSAVE); case "$out" in *"in progress"*|*started*) ;; *) echo "BGSAVE: $out" >&2; exit 1;; esac; ' +
    'i=0; while [ $i -lt 1800 ]; do ' +
    '  info=$(redis-cli --no-auth-warning -h 127.0.0.1 -p "$1" $2 INFO persistence | tr -d "\\r"); ' +
    '  last=$(redis-cli --no-auth-warning -h 127.0.0.1 -p "$1" $2 LASTSAVE); ' +
    '  if echo "$info" | grep -q "^rdb_bgsave_in_progress:0" && [ "$last" -gt "$before" ]; then ' +
    '    echo "$info" | grep -q "^rdb_last_bgsave_status:ok" || { echo "BGSAVE failed: $(echo "$info" | grep rdb_last_bgsave_status)" >&2; exit 1; }; ' +
    '    redis-cli --no-auth-warning -h 127.0.0.1 -p "$1" $2 DBSIZE; exit 0; fi; ' +
    '  i=$((i+1)); sleep 0.5; done; echo "BGSAVE did not finish within 15 minutes" >&2; exit 1'
  const r = await conn.exec({argv: shScript(script, [port, redisCliTls(model.config)]), stdin: model.secrets.redis.password, description: 'BGSAVE and wait until it succeeded'})
  return Number(r.stdout.trim().split('\n').pop())
}

/** cluster.yaml, the secrets file and every rendered file, as a tar stream. */
function clusterTar(model: ClusterModel): Readable {
  const pack = tar.pack()
  pack.entry({name: 'cluster.yaml', mode: 0o644}, readFileSync(model.config.file))
  pack.entry({name: basename(model.config.secretsFile), mode: 0o600}, readFileSync(model.config.secretsFile))
  for (const r of model.resources) {
    if (r.kind === 'file') pack.entry({name: join('rendered', r.host, r.path), mode: parseInt(r.mode, 8)}, r.content)
    if (r.kind === 'container') for (const f of r.files) pack.entry({name: join('rendered', r.host, f.path), mode: parseInt(f.mode, 8)}, f.content)
  }
  pack.finalize()
  return pack as unknown as Readable
}

export interface BackupSetSummary {
  id: string
  complete: boolean
  createdAt: string | null
  artifacts: number
  bytes: number
  release: string | null
}

/** `imctl backup list`: every set, complete or not; only a set with its manifest is complete. */
export async function listBackups(opts: {configFile: string; to?: string; s3?: S3EndpointOptions; io?: IoHost; acceptNewHostKeys?: boolean; store?: BackupStore}): Promise<{root: string; sets: BackupSetSummary[]}> {
  const model = loadCluster(opts.configFile)
  const store = opts.store ?? (await openBackupStore(model, opts.to, {io: opts.io ?? silentIo, acceptNewHostKeys: opts.acceptNewHostKeys ?? false, s3: opts.s3}))
  try {
    const sets: BackupSetSummary[] = []
    for (const set of await store.list()) {
      const manifest = await readManifest(store, set.id).catch(() => null)
      sets.push({
        id: set.id,
        complete: manifest !== null,
        createdAt: manifest?.startedAt ?? null,
        artifacts: manifest?.artifacts.length ?? set.files.filter((f) => f.name.endsWith('.enc')).length,
        bytes: set.files.reduce((n, f) => n + f.size, 0),
        release: manifest?.release ?? null,
      })
    }
    return {root: store.root, sets: sets.sort((a, b) => a.id.localeCompare(b.id))}
  } finally {
    if (!opts.store) await store.close()
  }
}

/** A set's manifest as stored (seal unchecked), or null when the set has none. */
export async function readManifest(store: BackupStore, id: string): Promise<(BackupManifest & {hmac?: string}) | null> {
  const body = await store.read(id, 'manifest.json')
  if (!body) return null
  const chunks: Buffer[] = []
  for await (const c of body) chunks.push(c as Buffer)
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as BackupManifest & {hmac?: string}
}

export interface VerifyResult {
  id: string
  ok: boolean
  problems: {artifact: string; problem: string}[]
  checked: number
}

/** Checks that `id` names a set in the store. */
export async function checkSetId(store: BackupStore, id: string): Promise<void> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id)) throw new UserError(`${JSON.stringify(id)} is not a backup set id`, ['Use an id that `imctl backup list` shows.'])
  if (!(await store.has(id))) throw new UserError(`no backup set ${id} in ${store.root}`, ['Run `imctl backup list` to see the sets.'])
}

/**
 * `imctl backup verify ID`: the manifest's seal, then every artifact's size, sha256
 * and GCM tag, each artifact read once (from a directory or from S3 alike).
 * `store`: a store opened already (deep verify, restore); else `to` is opened.
 */
export async function verifyBackup(opts: {configFile: string; id: string; to?: string; s3?: S3EndpointOptions; keyFile?: string; store?: BackupStore; io?: IoHost; acceptNewHostKeys?: boolean}): Promise<VerifyResult> {
  const model = loadCluster(opts.configFile)
  const key = loadBackupKey(opts.keyFile ?? defaultKeyFile(model.config.name), false)
  const store = opts.store ?? (await openBackupStore(model, opts.to, {io: opts.io ?? silentIo, acceptNewHostKeys: opts.acceptNewHostKeys ?? false, s3: opts.s3}))
  try {
    await checkSetId(store, opts.id)
    const problems: VerifyResult['problems'] = []
    let manifest: (BackupManifest & {hmac?: string}) | null = null
    try {
      manifest = await readManifest(store, opts.id)
      if (!manifest) problems.push({artifact: 'manifest.json', problem: 'missing: the set is incomplete'})
    } catch (e) {
      problems.push({artifact: 'manifest.json', problem: `unreadable: ${(e as Error).message}`})
    }
    if (manifest) {
      const {hmac, ...body} = manifest
      const formatProblem = manifestFormatProblem(manifest.format)
      if (formatProblem) problems.push({artifact: 'manifest.json', problem: formatProblem})
      if (manifest.keyFingerprint !== key.fingerprint) problems.push({artifact: 'manifest.json', problem: `made with key ${manifest.keyFingerprint}, not with ${key.file} (${key.fingerprint})`})
      else if (hmac !== sealManifest(body, key.key)) problems.push({artifact: 'manifest.json', problem: 'its seal does not match: the manifest was changed or damaged'})
      for (const a of manifest.artifacts ?? []) {
        const source = await store.read(opts.id, a.name)
        if (!source) {
          problems.push({artifact: a.name, problem: 'missing'})
          continue
        }
        const check = new ArtifactCheck(key.key)
        await pipeline(source, check)
        if (check.size !== a.size) problems.push({artifact: a.name, problem: `size ${check.size}, manifest says ${a.size}`})
        else if (check.sha256 !== a.sha256) problems.push({artifact: a.name, problem: 'sha256 differs from the manifest: damaged'})
        else if (check.decryptError) problems.push({artifact: a.name, problem: `does not decrypt: ${check.decryptError}`})
      }
    }
    return {id: opts.id, ok: problems.length === 0, problems, checked: manifest?.artifacts?.length ?? 0}
  } finally {
    if (!opts.store) await store.close()
  }
}
