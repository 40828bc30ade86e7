/**
 * `imctl archive`: ejabberd's message archive (table `archive`) older than a cutoff
 * moves to MinIO as gzipped JSON-lines objects, each read back and compared before
 * its rows are deleted; list, search and restore read those objects.
 *
 * SQL goes through `psql` as the postgres superuser on the database host (over SSH,
 * peer authentication: no password travels, and COPY streams through the SSH channel).
 * S3 goes through the `imctl-archive` key, which reaches its own bucket only.
 */
import {once} from 'node:events'
import {PassThrough, Transform, type TransformCallback} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {StringDecoder} from 'node:string_decoder'
import {createGunzip, createGzip} from 'node:zlib'
import {getObjectStream, listObjects, ObjectWriter, openClusterS3, type MinioS3} from '../../components/minio/s3.js'
import {UserError} from '../../errors.js'
import type {IoHost} from '../../io.js'
import type {RemoteCommand} from '../../transport/command.js'
import type {HostConnection} from '../../transport/types.js'
import {HashTap} from '../backup/crypto.js'
import {psql} from '../backup/backup.js'
import {closeAll, connectHosts, loadCluster, type ClusterModel} from '../cluster.js'
import {lockCluster} from '../lock.js'
import {commandOutput} from '../../transport/stream.js'
import {
  ARCHIVE_BUCKET,
  ARCHIVE_USER,
  compareObject,
  copyTextLine,
  dayOf,
  dayStartMicros,
  deleteBatchSql,
  exportSql,
  deleteBatches,
  lineFacts,
  nextDay,
  objectKey,
  OBJECT_TARGET_BYTES,
  parseDuration,
  PartitionTally,
  RESTORE_HEAD_SQL,
  restoreTailSql,
  resumePlan,
  rowsPredicate,
  runId,
  runKey,
  RUNS_PREFIX,
  SCHEDULE_KEY,
  statsSql,
  unfinishedRun,
  type ArchiveSchedule,
  type ObjectRecord,
  type RunManifest,
} from './model.js'

export interface ArchiveSessionOptions {
  configFile: string
  acceptNewHostKeys?: boolean
  io: IoHost
}

interface Session {
  model: ClusterModel
  conns: Map<string, HostConnection>
  pg: HostConnection
  s3: MinioS3
}

/** The database host and MinIO through the archive key; refuses a cluster without MinIO. */
export async function openArchiveSession(opts: ArchiveSessionOptions): Promise<Session> {
  const model = loadCluster(opts.configFile)
  const c = model.config.components
  if (!c.minio) throw new UserError(`cluster ${model.config.name} has no MinIO: the archive is kept in MinIO's bucket ${ARCHIVE_BUCKET}`, ['Add `components.minio` to cluster.yaml, run `imctl secrets generate` and `imctl install`, then run this again.'])
  const archiveSecret = model.secrets.minio?.archive_secret
  if (!archiveSecret) throw new UserError(`the secrets file has no minio.archive_secret`, ['Run `imctl secrets generate` and `imctl install`.'])
  const pgHost = model.config.hosts.find((h) => h.name === c.postgresql.host)!
  if (pgHost.engine) throw new UserError(`archiving from PostgreSQL on an engine host (${pgHost.name}) is not supported yet`)
  const names = new Set([c.postgresql.host, ...c.minio.hosts])
  const conns = await connectHosts(model.config, model.config.hosts.filter((h) => names.has(h.name)), opts)
  try {
    const s3 = await openClusterS3(model, conns, {accessKeyId: ARCHIVE_USER, secretAccessKey: archiveSecret}, ARCHIVE_BUCKET)
    return {model, conns, pg: conns.get(c.postgresql.host)!, s3}
  } catch (e) {
    await closeAll(conns)
    throw new UserError(`MinIO does not serve the archive: ${(e as Error).message}`, ['Run `imctl health` and `imctl install`, then run this again.'])
  }
}

export async function closeArchiveSession(s: Session): Promise<void> {
  await s.s3.close().catch(() => {})
  await closeAll(s.conns)
}

function sqlCmd(sql: string, description: string): RemoteCommand {
  return {...psql('ejabberd', sql), description}
}

/** Splits a byte stream into arrays of complete lines (one array per chunk), with backpressure; UTF-8 cut between chunks stays whole. */
class LineSplitter extends Transform {
  private rest = ''
  private readonly decoder = new StringDecoder('utf8')
  constructor() {
    super({readableObjectMode: true})
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    const lines = (this.rest + this.decoder.write(chunk)).split('\n')
    this.rest = lines.pop()!
    cb(null, lines.length ? lines : undefined)
  }
  override _flush(cb: TransformCallback): void {
    const last = this.rest + this.decoder.end()
    cb(null, last ? [last] : undefined)
  }
}

async function readManifests(s3: MinioS3): Promise<RunManifest[]> {
  const out: RunManifest[] = []
  for await (const o of listObjects(s3.client, ARCHIVE_BUCKET, RUNS_PREFIX)) {
    if (o.key.endsWith('.json')) out.push(JSON.parse((await s3.get(ARCHIVE_BUCKET, o.key)).toString('utf8')) as RunManifest)
  }
  return out.sort((a, b) => a.id.localeCompare(b.id))
}

async function saveManifest(s3: MinioS3, m: RunManifest): Promise<void> {
  m.updatedAt = new Date().toISOString()
  await s3.put(ARCHIVE_BUCKET, runKey(m.id), Buffer.from(JSON.stringify(m, null, 1) + '\n'))
}

export interface DomainStats {
  domain: string
  rows: number
  bytes: number
  maxId: number
}

async function stats(s: Session, cutoffMicros: number, bytes: boolean): Promise<DomainStats[]> {
  const r = await s.pg.exec(sqlCmd(statsSql(cutoffMicros, bytes), 'count the archived messages below the cutoff'))
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'))
    .map(([domain, rows, bytes, maxId]) => ({domain: domain!, rows: Number(rows), bytes: Number(bytes), maxId: Number(maxId)}))
}

export interface RunOptions extends ArchiveSessionOptions {
  olderThan: string
  dryRun?: boolean
  now?: Date
}

export interface RunResult {
  dryRun: boolean
  run: string | null
  resumed: boolean
  cutoff: string
  /** dry run: what would move, per domain. */
  domains: DomainStats[]
  rows: number
  bytes: number
  objects: number
  state: RunManifest['state'] | 'planned'
  seconds: number
  notes: string[]
}

/** `imctl archive run`: resumes an unfinished run if there is one, else starts one at now − olderThan. */
export async function runArchive(opts: RunOptions): Promise<RunResult> {
  const ms = parseDuration(opts.olderThan)
  if (!ms) throw new UserError(`--older-than ${JSON.stringify(opts.olderThan)} is not a duration`, ['Write a number and a unit: 90d, 12w, 36h.'])
  const t0 = Date.now()
  const now = opts.now ?? new Date()
  const cutoffMicros = (now.getTime() - ms) * 1000
  const s = await openArchiveSession(opts)
  try {
    const manifests = await readManifests(s.s3)
    const open = unfinishedRun(manifests)
    const notes: string[] = []
    if (opts.dryRun) {
      const d = await stats(s, open?.cutoffMicros ?? cutoffMicros, true)
      if (open) notes.push(`run ${open.id} (${open.state}, cutoff ${open.cutoff}) is unfinished: a run resumes it first, with its cutoff`)
      const cut = open?.cutoffMicros ?? cutoffMicros
      return {dryRun: true, run: open?.id ?? null, resumed: Boolean(open), cutoff: new Date(cut / 1000).toISOString(), domains: d, rows: d.reduce((n, x) => n + x.rows, 0), bytes: d.reduce((n, x) => n + x.bytes, 0), objects: 0, state: 'planned', seconds: (Date.now() - t0) / 1000, notes}
    }
    const lock = await lockCluster([...s.conns.values()], `imctl archive run --older-than ${opts.olderThan}`, opts.io)
    let m: RunManifest | undefined
    try {
      m = open
      if (m) {
        opts.io.notify({type: 'info', message: `resuming run ${m.id} (${m.state}, cutoff ${m.cutoff})`})
        notes.push(`resumed run ${m.id} with its own cutoff ${m.cutoff}; run again to archive up to a newer one`)
        m.state = 'running'
        delete m.error
      } else {
        const d = await stats(s, cutoffMicros, false)
        const id = runId(now)
        m = {
          format: 1,
          id,
          cluster: s.model.config.name,
          olderThan: opts.olderThan,
          cutoffMicros,
          cutoff: new Date(cutoffMicros / 1000).toISOString(),
          maxId: d.reduce((n, x) => Math.max(n, x.maxId), 0),
          domains: d.map((x) => x.domain),
          domainsDone: [],
          state: 'running',
          startedAt: now.toISOString(),
          updatedAt: now.toISOString(),
          objects: [],
        }
        opts.io.notify({type: 'info', message: `run ${id}: ${d.reduce((n, x) => n + x.rows, 0)} rows older than ${m.cutoff} in ${d.length} domains`})
      }
      await saveManifest(s.s3, m)
      try {
        await continueRun(s, m, opts.io)
        m.state = 'done'
        m.finishedAt = new Date().toISOString()
        await saveManifest(s.s3, m)
      } catch (e) {
        m.state = 'failed'
        m.error = (e as Error).message.slice(0, 2000)
        await saveManifest(s.s3, m).catch(() => {})
        throw e
      }
    } finally {
      await lock.release()
    }
    const rows = m.objects.reduce((n, o) => n + o.rows, 0)
    return {dryRun: false, run: m.id, resumed: Boolean(open), cutoff: m.cutoff, domains: [], rows, bytes: m.objects.reduce((n, o) => n + o.bytes, 0), objects: m.objects.length, state: m.state, seconds: (Date.now() - t0) / 1000, notes}
  } finally {
    await closeArchiveSession(s)
  }
}

/** Everything the manifest says is still to do: verify, delete, then export the rest. */
async function continueRun(s: Session, m: RunManifest, io: IoHost): Promise<void> {
  const plan = resumePlan(m)
  const byKey = (k: string) => m.objects.find((o) => o.key === k)!
  for (const k of [...plan.verify, ...plan.delete]) {
    const o = byKey(k)
    const rows = await verifyObject(s, m, o, io)
    await deleteObjectRows(s, m, o, rows, io)
  }
  for (const {domain, fromDay} of plan.export) {
    await exportDomain(s, m, domain, fromDay, io)
    m.domainsDone.push(domain)
    await saveManifest(s.s3, m)
  }
}

/** Streams a domain's rows from `fromDay` on into objects of at least OBJECT_TARGET_BYTES, each verified and its rows deleted once closed. */
async function exportDomain(s: Session, m: RunManifest, domain: string, fromDay: string | null, io: IoHost): Promise<void> {
  const cmd = sqlCmd(exportSql(m, domain, fromDay), `export archived messages of ${domain}`)
  // psql reads the result through a cursor, FETCH_COUNT rows at a time, instead of holding it all.
  cmd.argv = [...cmd.argv, '-v', 'FETCH_COUNT=20000']
  const source = await commandOutput(s.pg, cmd)
  const lines = source.pipe(new LineSplitter())
  source.on('error', (e) => lines.destroy(e))

  interface Open {
    key: string
    firstDay: string
    gz: ReturnType<typeof createGzip>
    tap: HashTap
    tally: PartitionTally
    done: Promise<void>
  }
  let cur: Open | undefined
  const openObject = (day: string): Open => {
    const key = objectKey(domain, day, m.id)
    const gz = createGzip({level: 6})
    const tap = new HashTap()
    const writer = new ObjectWriter(s.s3.client, ARCHIVE_BUCKET, key, {contentType: 'application/gzip', metadata: {'imctl-run': m.id, 'imctl-domain': domain}})
    return {key, firstDay: day, gz, tap, tally: new PartitionTally(), done: pipeline(gz, tap, writer)}
  }
  const closeObject = async (o: Open) => {
    o.gz.end()
    await o.done
    const partitions = o.tally.close()
    const rec: ObjectRecord = {
      key: o.key,
      domain,
      firstDay: o.firstDay,
      lastDay: partitions.at(-1)!.day,
      rows: partitions.reduce((n, p) => n + p.rows, 0),
      bytes: o.tap.size,
      sha256: o.tap.hash.digest('hex'),
      rawBytes: partitions.reduce((n, p) => n + p.rawBytes, 0),
      minId: Math.min(...partitions.map((p) => p.minId)),
      maxId: Math.max(...partitions.map((p) => p.maxId)),
      partitions,
      state: 'written',
      deletedRows: 0,
      deletedBatches: 0,
    }
    m.objects = m.objects.filter((x) => x.key !== rec.key)
    m.objects.push(rec)
    await saveManifest(s.s3, m)
    io.notify({type: 'info', message: `exported ${rec.key}: ${rec.rows} rows, days ${rec.firstDay}..${rec.lastDay}, ${rec.bytes} bytes`})
    const rows = await verifyObject(s, m, rec, io)
    await deleteObjectRows(s, m, rec, rows, io)
  }

  try {
    for await (const batch of lines as AsyncIterable<string[]>) {
      let pending: string[] = []
      for (const line of batch) {
        if (!line) continue
        const day = dayOf(lineFacts(line).timestamp)
        if (cur && day !== cur.tally.day && cur.tap.size >= OBJECT_TARGET_BYTES) {
          if (pending.length && !cur.gz.write(pending.join(''))) await once(cur.gz, 'drain')
          pending = []
          await closeObject(cur)
          cur = undefined
        }
        cur ??= openObject(day)
        cur.tally.add(line)
        pending.push(line + '\n')
      }
      if (cur && pending.length && !cur.gz.write(pending.join(''))) await once(cur.gz, 'drain')
    }
    if (cur) await closeObject(cur)
    cur = undefined
  } finally {
    // A cut export leaves no object behind: the writer aborts its multipart upload.
    if (cur) cur.gz.destroy(new Error('export stopped'))
    source.destroy()
  }
}

/** Reads an object back and compares size, sha256 and every day's rows, ids and sha256 with its record; returns its rows' ids and timestamps. */
async function verifyObject(s: Session, m: RunManifest, o: ObjectRecord, io: IoHost): Promise<{id: number; timestamp: number}[]> {
  const got = await getObjectStream(s.s3.client, ARCHIVE_BUCKET, o.key)
  const tap = new HashTap()
  const tally = new PartitionTally(true)
    await pipeline(got.body, tap, createGunzip(), new LineSplitter(), async function (batches: AsyncIterable<string[]>) {
    for await (const b of batches) for (const l of b) if (l) tally.add(l)
  })
  const problems = compareObject(o, {bytes: tap.size, sha256: tap.hash.digest('hex'), partitions: tally.close()})
  if (problems.length) throw new UserError(`the object read back is not what was written; no row of it was deleted:\n  ${problems.join('\n  ')}`, ['Check MinIO (`imctl health`), then run `imctl archive run` again.'], 1)
  if (o.state === 'written') {
    o.state = 'verified'
    await saveManifest(s.s3, m)
  }
  io.notify({type: 'info', message: `verified ${o.key}: read back equal (${o.rows} rows)`})
  return tally.rows
}

/** Deletes an object's verified ids in batches, each in its own transaction, then checks that none of its span is left. */
async function deleteObjectRows(s: Session, m: RunManifest, o: ObjectRecord, rows: {id: number; timestamp: number}[], io: IoHost): Promise<void> {
  const batches = deleteBatches(rows)
  const todo = batches.slice(o.deletedBatches)
  if (todo.length) {
    // One psql session runs the remaining batches, each its own transaction, and prints each one's count as it commits.
    const out = await commandOutput(s.pg, sqlCmd(todo.map((b) => deleteBatchSql(o.domain, b)).join(''), `delete archived rows of ${o.key}, batches ${o.deletedBatches + 1}..${batches.length}`))
    for await (const lines of out.pipe(new LineSplitter()) as AsyncIterable<string[]>) {
      for (const l of lines) {
        if (!l) continue
        o.deletedRows += Number(l)
        o.deletedBatches++
        await saveManifest(s.s3, m)
        io.notify({type: 'info', message: `deleting ${o.key}: batch ${o.deletedBatches}/${batches.length} committed`})
      }
    }
    if (o.deletedBatches !== batches.length) throw new Error(`bug: ${o.deletedBatches} of ${batches.length} delete batches reported for ${o.key}`)
  }
  // Every row of the object's days below the cutoff is in the object: none may be left.
  const span = `${rowsPredicate(m, o.domain, o.firstDay)} AND timestamp < ${dayStartMicros(nextDay(o.lastDay))}`
  const left = Number((await s.pg.exec(sqlCmd(`SELECT count(*) FROM public.archive WHERE ${span};\n`, `count rows left of ${o.key}`))).stdout.trim())
  if (left !== 0) throw new UserError(`${left} rows of ${o.domain} in days ${o.firstDay}..${o.lastDay} are still in the database but not in ${o.key}`, ['Nothing else was deleted. Report this: rows were written into archived days during the run.'], 1)
  // Rows an interrupted batch deleted before its count was recorded are counted too: all of the object's rows are gone.
  o.deletedRows = o.rows
  o.state = 'deleted'
  await saveManifest(s.s3, m)
}

// ---- list, search, restore --------------------------------------------------

export interface ListResult {
  runs: {id: string; state: string; cutoff: string; objects: number; rows: number; deletedRows: number; bytes: number; rawBytes: number; startedAt: string; finishedAt: string | null; error?: string}[]
  objects: number
  rows: number
  bytes: number
  firstDay: string | null
  lastDay: string | null
  schedule: ArchiveSchedule | null
}

export async function listArchive(opts: ArchiveSessionOptions): Promise<ListResult> {
  const s = await openArchiveSession(opts)
  try {
    const ms = await readManifests(s.s3)
    const all = ms.flatMap((m) => m.objects)
    const days = all.flatMap((o) => [o.firstDay, o.lastDay]).sort()
    return {
      runs: ms.map((m) => ({
        id: m.id,
        state: m.state,
        cutoff: m.cutoff,
        objects: m.objects.length,
        rows: m.objects.reduce((n, o) => n + o.rows, 0),
        deletedRows: m.objects.reduce((n, o) => n + o.deletedRows, 0),
        bytes: m.objects.reduce((n, o) => n + o.bytes, 0),
        rawBytes: m.objects.reduce((n, o) => n + o.rawBytes, 0),
        startedAt: m.startedAt,
        finishedAt: m.finishedAt ?? null,
        ...(m.error ? {error: m.error} : {}),
      })),
      objects: all.length,
      rows: all.reduce((n, o) => n + o.rows, 0),
      bytes: all.reduce((n, o) => n + o.bytes, 0),
      firstDay: days[0] ?? null,
      lastDay: days.at(-1) ?? null,
      schedule: await readSchedule(s.s3),
    }
  } finally {
    await closeArchiveSession(s)
  }
}

export async function readSchedule(s3: MinioS3): Promise<ArchiveSchedule | null> {
  try {
    return JSON.parse((await s3.get(ARCHIVE_BUCKET, SCHEDULE_KEY)).toString('utf8')) as ArchiveSchedule
  } catch (e) {
    if ((e as {$metadata?: {httpStatusCode?: number}}).$metadata?.httpStatusCode === 404) return null
    throw e
  }
}

function checkDay(name: string, day: string | undefined): string | undefined {
  if (day === undefined) return undefined
  try {
    dayStartMicros(day)
  } catch {
    throw new UserError(`${name} ${JSON.stringify(day)} is not a day`, ['Write it as YYYY-MM-DD (UTC).'])
  }
  return day
}

/** Objects holding rows of days [from, to] (of one domain if given), verified ones only: the others' rows are still in the database. */
function objectsFor(ms: RunManifest[], from: string | undefined, to: string | undefined, domain?: string): ObjectRecord[] {
  return ms
    .flatMap((m) => m.objects)
    .filter((o) => o.state !== 'written' && (!domain || o.domain === domain) && (!from || o.lastDay >= from) && (!to || o.firstDay <= to))
    .sort((a, b) => a.firstDay.localeCompare(b.firstDay) || a.key.localeCompare(b.key))
}

/** Every line of an object, streamed; the object's sha256 is checked once it has been read to the end. */
async function eachLine(s: Session, o: ObjectRecord, fn: (line: string) => void | Promise<void>): Promise<boolean> {
  const got = await getObjectStream(s.s3.client, ARCHIVE_BUCKET, o.key)
  const tap = new HashTap()
    await pipeline(got.body, tap, createGunzip(), new LineSplitter(), async function (batches: AsyncIterable<string[]>) {
    for await (const b of batches) for (const l of b) if (l) await fn(l)
  })
  return tap.hash.digest('hex') === o.sha256 && tap.size === o.bytes
}

export interface SearchHit {
  id: number
  timestamp: number
  time: string
  user: string
  domain: string
  peer: string
  kind: string | null
  text: string | null
}

export interface SearchOptions extends ArchiveSessionOptions {
  user: string
  from?: string
  to?: string
  text?: string
  limit?: number
}

/** `imctl archive search`: reads the objects of the days asked for, oldest first. */
export async function searchArchive(opts: SearchOptions): Promise<{hits: SearchHit[]; objectsRead: number; truncated: boolean}> {
  const [user, domain] = opts.user.includes('@') ? (opts.user.split('@', 2) as [string, string]) : [opts.user, undefined]
  const from = checkDay('--from', opts.from)
  const to = checkDay('--to', opts.to)
  const limit = opts.limit ?? 100
  const needle = `"username":${JSON.stringify(user)}`
  const text = opts.text?.toLowerCase()
  const s = await openArchiveSession(opts)
  try {
    const objects = objectsFor(await readManifests(s.s3), from, to, domain)
    const seen = new Map<number, SearchHit>()
    for (const o of objects) {
      const ok = await eachLine(s, o, (line) => {
        if (!line.includes(needle)) return
        const r = JSON.parse(line) as Record<string, unknown>
        const day = dayOf(Number(r.timestamp))
        if ((from && day < from) || (to && day > to)) return
        const txt = (r.txt as string | null) ?? null
        if (text && !(txt ?? '').toLowerCase().includes(text) && !String(r.xml).toLowerCase().includes(text)) return
        const id = Number(r.id)
        seen.set(id, {id, timestamp: Number(r.timestamp), time: new Date(Number(r.timestamp) / 1000).toISOString(), user: String(r.username), domain: String(r.server_host), peer: String(r.peer), kind: (r.kind as string | null) ?? null, text: txt})
      })
      if (!ok) throw new UserError(`${o.key} does not match its manifest (size or sha256): it is damaged`, ['Restore the object from a MinIO backup.'], 1)
    }
    const hits = [...seen.values()].sort((a, b) => a.timestamp - b.timestamp || a.id - b.id)
    return {hits: hits.slice(0, limit), objectsRead: objects.length, truncated: hits.length > limit}
  } finally {
    await closeArchiveSession(s)
  }
}

export interface RestoreOptions extends ArchiveSessionOptions {
  from: string
  to: string
}

export interface RestoreResult {
  from: string
  to: string
  objects: number
  inserted: number
  alreadyPresent: number
  seconds: number
}

/**
 * `imctl archive restore --from D1 --to D2`: the rows of those days go back into
 * `archive` exactly as they were (every column, from the exported JSON), one
 * transaction per object, committed only once the object's sha256 matched; a row
 * whose id is there already is skipped, so running it twice adds nothing.
 */
export async function restoreArchive(opts: RestoreOptions): Promise<RestoreResult> {
  const from = checkDay('--from', opts.from)!
  const to = checkDay('--to', opts.to)!
  if (from > to) throw new UserError(`--from ${from} is after --to ${to}`)
  const t0 = Date.now()
  const s = await openArchiveSession(opts)
  try {
    const lock = await lockCluster([...s.conns.values()], `imctl archive restore --from ${from} --to ${to}`, opts.io)
    try {
      const objects = objectsFor(await readManifests(s.s3), from, to)
      let inserted = 0
      let alreadyPresent = 0
      for (const o of objects) {
        const input = new PassThrough()
        const cmd = {...sqlCmd('', `restore archived rows of ${o.key}`), stdinStream: input}
        delete (cmd as {stdin?: unknown}).stdin
        const run = s.pg.exec(cmd)
        run.catch(() => {})
        const write = async (text: string) => {
          if (!input.write(text)) await once(input, 'drain')
        }
        await write(RESTORE_HEAD_SQL)
        let ok = false
        try {
          let chunk: string[] = []
          ok = await eachLine(s, o, async (line) => {
            const day = dayOf(lineFacts(line).timestamp)
            if (day < from || day > to) return
            chunk.push(copyTextLine(line) + '\n')
            if (chunk.length >= 1000) {
              await write(chunk.join(''))
              chunk = []
            }
          })
          if (chunk.length) await write(chunk.join(''))
        } finally {
          input.end(restoreTailSql(ok))
        }
        const r = await run
        if (!ok) throw new UserError(`${o.key} does not match its manifest (size or sha256): nothing of it was restored`, ['Restore the object from a MinIO backup.'], 1)
        const [ins, present] = r.stdout.trim().split('\n').pop()!.split('\t').map(Number)
        inserted += ins!
        alreadyPresent += present!
        opts.io.notify({type: 'info', message: `restored from ${o.key}: ${ins} rows inserted, ${present} there already`})
      }
      return {from, to, objects: objects.length, inserted, alreadyPresent, seconds: (Date.now() - t0) / 1000}
    } finally {
      await lock.release()
    }
  } finally {
    await closeArchiveSession(s)
  }
}

