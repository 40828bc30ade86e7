/**
 * The pure side of `imctl archive`: durations and days, the run manifest and the
 * resume decisions it drives, the SQL text that exports, deletes and restores rows,
 * and the facts read from one exported line. Nothing here touches a host.
 */
import {createHash} from 'node:crypto'

export const ARCHIVE_BUCKET = 'imctl-archive'
export const ARCHIVE_USER = 'imctl-archive'
/** Objects are closed at the first day boundary after this many compressed bytes. */
export const OBJECT_TARGET_BYTES = 8 * 1024 * 1024
/** Rows deleted per transaction. */
export const DELETE_BATCH_ROWS = 10_000
export const RUNS_PREFIX = 'runs/'
export const OBJECTS_PREFIX = 'objects/'
export const SCHEDULE_KEY = 'schedule.json'

const DAY_MS = 86_400_000
const UNITS: Record<string, number> = {s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS, w: 7 * DAY_MS}

/** `90d`, `12h`, `2w`, `30m`, `45s` → milliseconds; null when it is not one of those. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+)([smhdw])$/.exec(text.trim())
  if (!m) return null
  const ms = Number(m[1]) * UNITS[m[2]!]!
  return ms > 0 ? ms : null
}

/** ejabberd's `timestamp` column is microseconds since the epoch (it is also the MAM id). */
export function dayOf(micros: number): string {
  return new Date(Math.floor(micros / 1000)).toISOString().slice(0, 10)
}

/** The first microsecond of a UTC day `YYYY-MM-DD`. */
export function dayStartMicros(day: string): number {
  const ms = Date.parse(`${day}T00:00:00Z`)
  // Date.parse takes 2026-02-30 as March 2nd: only a day that reads back the same is one.
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== day) throw new Error(`not a day: ${day}`)
  return ms * 1000
}

export function nextDay(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10)
}

/** A run's id: its UTC start time, sortable (as backup sets are named). */
export function runId(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
}

/** One day of one domain inside an object, as written and as read back. */
export interface PartitionRecord {
  day: string
  rows: number
  /** Bytes of its JSON lines (newlines included), before compression. */
  rawBytes: number
  /** sha256 of those lines. */
  sha256: string
  minId: number
  maxId: number
}

export type ObjectState = 'written' | 'verified' | 'deleted'

/** One gzipped JSON-lines object: consecutive days of one domain, ordered by timestamp then id. */
export interface ObjectRecord {
  key: string
  domain: string
  firstDay: string
  lastDay: string
  rows: number
  /** Compressed size and sha256 of the object as stored. */
  bytes: number
  sha256: string
  rawBytes: number
  minId: number
  maxId: number
  partitions: PartitionRecord[]
  /** written: stored; verified: read back equal; deleted: its rows are gone from the database. */
  state: ObjectState
  deletedRows: number
  /** Delete batches committed so far (a re-run repeats at most the one in flight, which deletes nothing twice). */
  deletedBatches: number
}

/**
 * A run's manifest (`runs/<id>.json`), rewritten after every step: it is the run's
 * progress, so a run cut at any point is resumed from it.
 */
export interface RunManifest {
  format: 1
  id: string
  cluster: string
  olderThan: string
  /** Rows with timestamp below this (microseconds) are archived. */
  cutoffMicros: number
  cutoff: string
  /** Rows with a higher id (written after the run began) are left for the next run. */
  maxId: number
  domains: string[]
  domainsDone: string[]
  state: 'running' | 'done' | 'failed'
  error?: string
  startedAt: string
  updatedAt: string
  finishedAt?: string
  objects: ObjectRecord[]
}

export function objectKey(domain: string, firstDay: string, run: string): string {
  return `${OBJECTS_PREFIX}${encodeURIComponent(domain)}/${firstDay}.${run}.jsonl.gz`
}

export function runKey(id: string): string {
  return `${RUNS_PREFIX}${id}.json`
}

export interface ResumePlan {
  /** Objects stored but not yet read back. */
  verify: string[]
  /** Objects read back equal whose rows are not all deleted yet. */
  delete: string[]
  /** Per domain still exporting: the first day not in any object of the run. */
  export: {domain: string; fromDay: string | null}[]
}

/**
 * What a run still has to do, from its manifest alone: verify what was written,
 * delete what was verified, export each unfinished domain from the day after its
 * last object (an object cut before it was recorded is written again under the same key).
 */
export function resumePlan(m: RunManifest): ResumePlan {
  const verify = m.objects.filter((o) => o.state === 'written').map((o) => o.key)
  const del = m.objects.filter((o) => o.state === 'verified').map((o) => o.key)
  const exp = m.domains
    .filter((d) => !m.domainsDone.includes(d))
    .map((domain) => {
      const last = m.objects.filter((o) => o.domain === domain).sort((a, b) => a.lastDay.localeCompare(b.lastDay)).at(-1)
      return {domain, fromDay: last ? nextDay(last.lastDay) : null}
    })
  return {verify, delete: del, export: exp}
}

/** The manifest to resume: the newest run that is not done (only one run is ever unfinished). */
export function unfinishedRun(manifests: RunManifest[]): RunManifest | undefined {
  return [...manifests].sort((a, b) => a.id.localeCompare(b.id)).filter((m) => m.state !== 'done').at(-1)
}

// ---- SQL --------------------------------------------------------------------

/** A SQL string literal (standard_conforming_strings is on since PostgreSQL 9.1). */
export function sqlLiteral(text: string): string {
  if (text.includes('\0')) throw new Error('NUL in a SQL literal')
  return `'${text.replace(/'/g, "''")}'`
}

/** The rows a run archives for a domain from a day on: below the cutoff, written before the run began. */
export function rowsPredicate(m: Pick<RunManifest, 'cutoffMicros' | 'maxId'>, domain: string, fromDay: string | null): string {
  return [`server_host = ${sqlLiteral(domain)}`, ...(fromDay ? [`timestamp >= ${dayStartMicros(fromDay)}`] : []), `timestamp < ${m.cutoffMicros}`, `id <= ${m.maxId}`].join(' AND ')
}

/** Each row as one JSON object (every column, PostgreSQL's own text of each value), in timestamp order. */
export function exportSql(m: Pick<RunManifest, 'cutoffMicros' | 'maxId'>, domain: string, fromDay: string | null): string {
  return `SELECT row_to_json(a)::text FROM public.archive a WHERE ${rowsPredicate(m, domain, fromDay)} ORDER BY timestamp, id;\n`
}

/** Per domain: rows below the cutoff and the highest id; with `bytes`, their JSON's size too (a dry run's answer, dearer to count). */
export function statsSql(cutoffMicros: number, bytes: boolean): string {
  return `SELECT server_host, count(*), ${bytes ? 'sum(octet_length(row_to_json(a)::text) + 1)' : '0'}, max(id) FROM public.archive a WHERE timestamp < ${cutoffMicros} GROUP BY server_host ORDER BY server_host;\n`
}

/** Verified rows to delete together: their ids and the timestamps they span. */
export interface DeleteBatch {
  ids: number[]
  minTs: number
  maxTs: number
}

/**
 * One batch of verified ids deleted in one transaction, bounded to the object's
 * domain and to the batch's own timestamps as well (so the index on server_host and
 * timestamp finds them); prints how many rows went.
 */
export function deleteBatchSql(domain: string, b: DeleteBatch): string {
  return [
    'BEGIN;',
    `WITH gone AS (DELETE FROM public.archive WHERE server_host = ${sqlLiteral(domain)} AND timestamp >= ${b.minTs} AND timestamp <= ${b.maxTs}`,
    `  AND id = ANY('{${b.ids.join(',')}}'::bigint[]) RETURNING 1) SELECT count(*) FROM gone;`,
    'COMMIT;',
    '',
  ].join('\n')
}

/** Rows in timestamp order (then id), cut into batches: the same batches every time the object is read. */
export function deleteBatches(rows: {id: number; timestamp: number}[], size = DELETE_BATCH_ROWS): DeleteBatch[] {
  const sorted = [...rows].sort((a, b) => a.timestamp - b.timestamp || a.id - b.id)
  const out: DeleteBatch[] = []
  for (let i = 0; i < sorted.length; i += size) {
    const part = sorted.slice(i, i + size)
    out.push({ids: part.map((r) => r.id), minTs: part[0]!.timestamp, maxTs: part.at(-1)!.timestamp})
  }
  return out
}

/** Restore, head: a staging table the lines are copied into, in one transaction. */
export const RESTORE_HEAD_SQL = 'BEGIN;\nCREATE TEMP TABLE imctl_restore (line text) ON COMMIT DROP;\nCOPY imctl_restore (line) FROM STDIN;\n'

/**
 * Restore, tail: every staged row whose id is not in the table yet goes back as it
 * was (json_populate_record gives each column its original value); prints inserted
 * and already present. `ok` false rolls everything back.
 */
export function restoreTailSql(ok: boolean): string {
  if (!ok) return '\\.\nROLLBACK;\n'
  return [
    '\\.',
    'WITH rows AS (SELECT r.* FROM imctl_restore s CROSS JOIN LATERAL json_populate_record(NULL::public.archive, s.line::json) r),',
    '  ins AS (INSERT INTO public.archive SELECT * FROM rows WHERE NOT EXISTS (SELECT 1 FROM public.archive a WHERE a.id = rows.id) RETURNING 1)',
    'SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM rows) - (SELECT count(*) FROM ins);',
    'COMMIT;',
    '',
  ].join('\n')
}

/** A JSON line as COPY's text format wants it: backslashes doubled (JSON text has no raw tab or newline). */
export function copyTextLine(line: string): string {
  return line.replace(/\\/g, '\\\\')
}

// ---- lines ------------------------------------------------------------------

/**
 * The id and timestamp of one exported line, read without parsing all of it: a
 * `"key":` preceded by `{` or `,` is structural, as any quote inside a JSON string is escaped.
 */
export function lineFacts(line: string): {id: number; timestamp: number} {
  const id = /[{,]"id":(\d+)[,}]/.exec(line)
  const ts = /[{,]"timestamp":(\d+)[,}]/.exec(line)
  if (!id || !ts) throw new Error(`not an archive row: ${line.slice(0, 80)}`)
  return {id: Number(id[1]), timestamp: Number(ts[1])}
}

/** Builds partition records from lines in order, as the export writes them and verify reads them back. */
export class PartitionTally {
  readonly partitions: PartitionRecord[] = []
  private hash = createHash('sha256')
  private current: PartitionRecord | undefined
  readonly rows: {id: number; timestamp: number}[] = []
  minTs = Number.POSITIVE_INFINITY
  maxTs = 0

  constructor(private readonly keepRows = false) {}

  /** The day of the line just added. */
  add(line: string): string {
    const {id, timestamp} = lineFacts(line)
    const day = dayOf(timestamp)
    if (this.current?.day !== day) {
      this.close()
      this.current = {day, rows: 0, rawBytes: 0, sha256: '', minId: id, maxId: id}
      this.hash = createHash('sha256')
    }
    const c = this.current
    const bytes = Buffer.byteLength(line) + 1
    this.hash.update(line + '\n')
    c.rows++
    c.rawBytes += bytes
    if (id < c.minId) c.minId = id
    if (id > c.maxId) c.maxId = id
    if (timestamp < this.minTs) this.minTs = timestamp
    if (timestamp > this.maxTs) this.maxTs = timestamp
    if (this.keepRows) this.rows.push({id, timestamp})
    return day
  }

  /** The day in progress, if any. */
  get day(): string | undefined {
    return this.current?.day
  }

  close(): PartitionRecord[] {
    if (this.current) {
      this.current.sha256 = this.hash.digest('hex')
      this.partitions.push(this.current)
      this.current = undefined
    }
    return this.partitions
  }
}

/** Where a read-back object differs from its record; empty when it is equal. */
export function compareObject(o: ObjectRecord, read: {bytes: number; sha256: string; partitions: PartitionRecord[]}): string[] {
  const problems: string[] = []
  if (read.bytes !== o.bytes) problems.push(`${o.key}: ${read.bytes} bytes read back, ${o.bytes} written`)
  if (read.sha256 !== o.sha256) problems.push(`${o.key}: sha256 read back differs from the one written`)
  const want = JSON.stringify(o.partitions)
  if (JSON.stringify(read.partitions) !== want) problems.push(`${o.key}: its rows read back differ from the rows written (counts, ids or sha256 per day)`)
  return problems
}

/**
 * An order-independent digest of rows: the sum of the first 60 bits of each line's
 * md5, mod 2^60, as hex. The same over `row_to_json` in SQL (rowsDigestSql) and
 * over the lines of the objects, so the two sides compare without sorting.
 */
export function rowsDigest(lines: Iterable<string>): {rows: number; digest: string} {
  let sum = 0n
  let rows = 0
  for (const l of lines) {
    sum += BigInt(`0x${createHash('md5').update(l).digest('hex').slice(0, 15)}`)
    rows++
  }
  return {rows, digest: (sum % MOD60).toString(16)}
}

const MOD60 = 1n << 60n

export function addDigests(a: string, b: string): string {
  return ((BigInt(`0x${a}`) + BigInt(`0x${b}`)) % MOD60).toString(16)
}

/** The same digest in SQL over the rows a WHERE clause selects: prints rows and digest. */
export function rowsDigestSql(where: string): string {
  return `SELECT count(*), to_hex((coalesce(sum(('x' || lpad(substr(md5(row_to_json(a)::text), 1, 15), 16, '0'))::bit(64)::bigint), 0) % ${MOD60})::bigint) FROM public.archive a WHERE ${where};\n`
}

// ---- health -----------------------------------------------------------------

export interface ArchiveSchedule {
  every: string
  olderThan: string
  unit: string
  machine: string
  installedAt: string
}

/**
 * The archive's health from its newest run and its schedule: a failed last run, or
 * none finished within twice the interval (plus an hour), is a failed check.
 */
export function archiveHealth(last: RunManifest | undefined, schedule: ArchiveSchedule | undefined, now: Date): {ok: boolean; detail: string} {
  const every = schedule ? parseDuration(schedule.every) : null
  const lastText = last ? `last run ${last.id} ${last.state}${last.finishedAt ? ` at ${last.finishedAt}` : ` (updated ${last.updatedAt})`}, ${last.objects.reduce((n, o) => n + o.deletedRows, 0)} rows archived` : 'no run yet'
  if (last?.state === 'failed') return {ok: false, detail: `${lastText}: ${last.error ?? 'failed'}; see the timer's journal, then run \`imctl archive run\``}
  if (schedule && every) {
    const since = last ? Date.parse(last.finishedAt ?? last.startedAt) : Date.parse(schedule.installedAt)
    if (now.getTime() - since > 2 * every + 3_600_000) return {ok: false, detail: `overdue: scheduled every ${schedule.every} from ${schedule.machine}, ${lastText}`}
    return {ok: true, detail: `${lastText}; scheduled every ${schedule.every} (older than ${schedule.olderThan}) from ${schedule.machine}`}
  }
  return {ok: true, detail: `${lastText}; not scheduled`}
}
