import {createHash} from 'node:crypto'
import type {Readable} from 'node:stream'
import {UserError} from '../../errors.js'
import type {IoHost} from '../../io.js'
import {sqlIdent, sqlLiteral} from '../../plan/observe.js'
import {shScript, type RemoteCommand} from '../../transport/command.js'
import {commandOutput} from '../../transport/stream.js'
import type {HostConnection} from '../../transport/types.js'

/**
 * PostgreSQL in backup sets: every database of the cluster, one artifact each, in
 * pg_dump's directory format (parallel, staged on the database host) or its custom
 * format (streamed, no copy on the host); the roles apart. Builders and decisions
 * are pure; the two services at the end run them on the database host.
 */

export type PgFormat = 'custom' | 'directory'
export const PG_FORMATS: readonly PgFormat[] = ['directory', 'custom']

/**
 * The manifest's format. 1: one custom-format dump of database `ejabberd`
 * (`postgresql-ejabberd.pgdump.enc`). 2: one artifact per database, each saying its
 * database and dump format. A reader refuses a format newer than it knows.
 */
export const MANIFEST_FORMAT = 2
export const LEGACY_PG_ARTIFACT = 'postgresql-ejabberd.pgdump.enc'
export const PG_GLOBALS = 'postgresql-globals.sql.gz.enc'
/** The one staging directory on the database host: owned by postgres, 0700, removed after each use. */
export const PG_STAGING_DIR = '/var/lib/imctl/pg-staging'

/** What a database artifact records besides its bytes (absent from format-1 manifests). */
export interface PgArtifactInfo {
  database: string
  format: PgFormat
  owner: string
  encoding: string
  /** pg_database_size when dumped: the space a restore takes in the data directory. */
  bytes: number
}

/** The fields of an artifact record this module reads. */
export interface PgArtifactLike {
  name: string
  component: string
  size: number
  counts?: Record<string, number>
  postgresql?: PgArtifactInfo
}

/** A file-name-safe, injective spelling of a database name: [A-Za-z0-9_-] kept, every other byte as %XX. */
export function encodeDbName(db: string): string {
  return [...Buffer.from(db, 'utf8')].map((b) => (/[A-Za-z0-9_-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('')
}

export function pgArtifactName(db: string, format: PgFormat): string {
  return `postgresql-${encodeDbName(db)}.${format === 'directory' ? 'pgdir.tar' : 'pgdump'}.enc`
}

/**
 * The database artifacts of a set, with what each holds. A format-1 set has exactly
 * one, the custom-format dump of `ejabberd`, which says nothing of itself.
 */
export function pgDatabaseArtifacts<A extends PgArtifactLike>(manifest: {format: number; artifacts: A[]}): (A & {postgresql: PgArtifactInfo})[] {
  if (manifest.format === 1) {
    const a = manifest.artifacts.find((x) => x.name === LEGACY_PG_ARTIFACT)
    return a ? [{...a, postgresql: {database: 'ejabberd', format: 'custom', owner: 'ejabberd', encoding: 'UTF8', bytes: 0}}] : []
  }
  return manifest.artifacts.filter((a): a is A & {postgresql: PgArtifactInfo} => a.component === 'postgresql' && a.postgresql !== undefined)
}

/** A manifest this imctl can read, or the reason it cannot. */
export function manifestFormatProblem(format: unknown): string | null {
  if (format === 1 || format === MANIFEST_FORMAT) return null
  if (typeof format === 'number' && Number.isInteger(format) && format > MANIFEST_FORMAT) return `format ${format}, made by a newer imctl: this one reads formats 1 to ${MANIFEST_FORMAT}`
  return `unknown format ${JSON.stringify(format)}`
}

/** libpq's conninfo for one database, so a name with `=` or a URI prefix is never read as a connection string. */
export function pgConninfo(db: string): string {
  return `dbname='${db.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}

const MAX_IDENT_BYTES = 63

/** `s` cut to at most `bytes` UTF-8 bytes, never inside a character. */
function cutBytes(s: string, bytes: number): string {
  let out = ''
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > bytes) break
    out += ch
  }
  return out
}

/** `<db><suffix>` within PostgreSQL's 63-byte names; a cut name gets a hash of the whole so two never meet. */
function boundedName(db: string, suffix: string): string {
  if (Buffer.byteLength(db + suffix) <= MAX_IDENT_BYTES) return db + suffix
  const hash = createHash('sha256').update(db).digest('hex').slice(0, 8)
  return `${cutBytes(db, MAX_IDENT_BYTES - suffix.length - 9)}_${hash}${suffix}`
}

/** Where a database is restored before it is swapped in (ejabberd's is `ejabberd_restoring`, as before). */
export function stagingDatabase(db: string): string {
  return boundedName(db, '_restoring')
}

/** The name the current database is kept under by a restore (`<db>_before_<set>_<time>`). */
export function asideDatabase(db: string, tag: string): string {
  return boundedName(db, `_before_${tag}`)
}

/** Databases a restore made (staging, kept aside): never backed up again, or each set would carry the earlier ones. */
export function isRestoreLeftover(db: string): boolean {
  return /_restoring$/.test(db) || /_before_[a-z0-9_]*\d{8}t\d{6}z$/.test(db)
}

/** Parallel jobs for pg_dump / pg_restore: the host's cores, at least 1, at most 8. */
export function pgJobs(cores: number): number {
  return Math.max(1, Math.min(8, Math.floor(cores) || 1))
}

/** Room to ask for: the estimate, a tenth more, and 64 MiB so the filesystem is never filled to the brim. */
export function requiredBytes(estimate: number): number {
  return estimate + Math.ceil(estimate / 10) + 64 * 2 ** 20
}

export interface SpaceNeed {
  what: string
  path: string
  bytes: number
}

export interface FreeSpace {
  path: string
  /** The filesystem's device number: needs on one filesystem add up. */
  device: string
  available: number
}

/** Every filesystem where the needs (with headroom) exceed what is free, as sentences; empty when all fit. */
export function spaceShortfalls(needs: SpaceNeed[], free: FreeSpace[]): string[] {
  const byDevice = new Map<string, {needs: SpaceNeed[]; free: FreeSpace}>()
  for (const n of needs) {
    if (n.bytes <= 0) continue
    const f = free.find((x) => x.path === n.path)
    if (!f) throw new Error(`bug: no free space read for ${n.path}`)
    const entry = byDevice.get(f.device) ?? {needs: [], free: f}
    entry.needs.push(n)
    byDevice.set(f.device, entry)
  }
  const out: string[] = []
  for (const {needs: ns, free: f} of byDevice.values()) {
    const need = requiredBytes(ns.reduce((s, n) => s + n.bytes, 0))
    if (need > f.available) out.push(`${ns.map((n) => n.path).filter((p, i, a) => a.indexOf(p) === i).join(' and ')} ${ns.length > 1 ? 'share a filesystem that has' : 'has'} ${mib(f.available)} free, ${ns.map((n) => `${n.what} (${mib(n.bytes)})`).join(' and ')} need${ns.length > 1 ? '' : 's'} ${mib(need)} with headroom`)
  }
  return out
}

function mib(n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MiB`
}

/** `df`'s answer for each path (the nearest existing parent of one not made yet): "device available path" per line. */
export function freeSpaceCommand(paths: string[]): RemoteCommand {
  return {
    argv: shScript('for p in "$@"; do d=$p; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; printf "%s %s %s\\n" "$(stat -c %d "$d")" "$(df -P -B1 "$d" | awk "NR==2{print \\$4}")" "$p"; done', paths),
    root: true,
    component: 'postgresql',
    description: `read the free space at ${paths.join(', ')}`,
  }
}

export function parseFreeSpace(stdout: string): FreeSpace[] {
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [device, available, ...path] = l.split(' ')
      return {device: device!, available: Number(available), path: path.join(' ')}
    })
}

/**
 * Ends what a killed run may have left working in the staging directory (its
 * process group, found by the pid file and checked by its command line), then
 * removes the directory; with `recreate`, makes it again, empty, postgres's, 0700.
 */
export function stagingCommand(dir: string, recreate: boolean): RemoteCommand {
  const script =
    'd=$1; ' +
    'if [ -f "$d/pid" ]; then p=$(cat "$d/pid"); case "$p" in ""|*[!0-9]*) ;; *) ' +
    '  if tr "\\0" " " < "/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$d/"; then ' +
    '    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null; i=0; ' +
    '    while [ -d "/proc/$p" ] && [ $i -lt 60 ]; do sleep 0.5; i=$((i+1)); done; ' +
    '    if [ -d "/proc/$p" ]; then kill -KILL -- "-$p" 2>/dev/null; fi; ' +
    '  fi;; esac; fi; ' +
    'rm -rf -- "$d" || exit 1; ' +
    (recreate ? 'mkdir -p -- "${d%/*}" && mkdir -m 700 -- "$d" && chown postgres:postgres -- "$d"' : 'true')
  return {argv: shScript(script, [dir]), root: true, component: 'postgresql', description: recreate ? `make the staging directory ${dir} (a stale one is removed first)` : `remove the staging directory ${dir}`}
}

/** Runs a long tool in a session of its own, its pid in `<dir>/pid`, so the next run can end it if this one is killed. */
function tracked(dir: string, argv: string[]): string[] {
  return ['setsid', '-w', 'sh', '-c', 'echo $$ > "$0/pid" && exec "$@"', dir, ...argv]
}

export function pgDumpCustomCommand(bindir: string, db: string): RemoteCommand {
  return {argv: [`${bindir}/pg_dump`, '-Fc', '-d', pgConninfo(db)], asUser: 'postgres', component: 'postgresql', description: `dump database ${db} (custom format)`}
}

export function pgDumpDirectoryCommand(bindir: string, db: string, dir: string, jobs: number): RemoteCommand {
  return {argv: tracked(dir, [`${bindir}/pg_dump`, '-Fd', '-j', String(jobs), '-f', `${dir}/dump`, '-d', pgConninfo(db)]), asUser: 'postgres', component: 'postgresql', description: `dump database ${db} (directory format, ${jobs} jobs) into ${dir}`}
}

export function pgDumpGlobalsCommand(bindir: string): RemoteCommand {
  return {argv: [`${bindir}/pg_dumpall`, '--globals-only'], asUser: 'postgres', component: 'postgresql', description: 'dump roles'}
}

/** The dump directory as one uncompressed tar on stdout (pg_dump compressed each table already). */
export function tarOutCommand(dir: string): RemoteCommand {
  return {argv: ['tar', '-C', `${dir}/dump`, '-cf', '-', '.'], asUser: 'postgres', component: 'postgresql', description: `read ${dir}/dump as a tar`}
}

export function tarInCommand(dir: string): RemoteCommand {
  return {argv: shScript('mkdir -m 700 -- "$1/dump" && exec tar -C "$1/dump" -xf -', [dir]), asUser: 'postgres', component: 'postgresql', description: `unpack the dump into ${dir}/dump`}
}

export function pgRestoreCustomCommand(bindir: string, db: string): RemoteCommand {
  return {argv: [`${bindir}/pg_restore`, '--exit-on-error', '--no-password', '-d', pgConninfo(db)], asUser: 'postgres', component: 'postgresql', description: `pg_restore into ${db}`}
}

export function pgRestoreDirectoryCommand(bindir: string, db: string, dir: string, jobs: number): RemoteCommand {
  return {argv: tracked(dir, [`${bindir}/pg_restore`, '--exit-on-error', '--no-password', '-j', String(jobs), '-Fd', '-d', pgConninfo(db), `${dir}/dump`]), asUser: 'postgres', component: 'postgresql', description: `pg_restore (${jobs} jobs) into ${db}`}
}

/** A query as postgres, tab-separated, unaligned; `db` is `postgres` unless said. */
export function pgQuery(sql: string, description: string, db = 'postgres'): RemoteCommand {
  return {argv: ['psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-F', '\t', '-d', pgConninfo(db)], stdin: sql, asUser: 'postgres', component: 'postgresql', description}
}

/** SQL as postgres, connected to template1 so that even the database `postgres` can be renamed. */
export function pgAdminCommand(sql: string, description: string): RemoteCommand {
  return {argv: ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'template1'], stdin: sql, asUser: 'postgres', component: 'postgresql', description}
}

/** The current database (if any) renamed aside, the restored one renamed into its place; its sessions ended first. */
export function swapDatabaseSql(db: string, staging: string, aside: string): string {
  return (
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${sqlLiteral(db)};\n` +
    `SELECT format('ALTER DATABASE %I RENAME TO %I', ${sqlLiteral(db)}, ${sqlLiteral(aside)}) WHERE EXISTS (SELECT 1 FROM pg_database WHERE datname = ${sqlLiteral(db)})\\gexec\n` +
    `ALTER DATABASE ${sqlIdent(staging)} RENAME TO ${sqlIdent(db)};\n`
  )
}

/** The server's own tools (its BINDIR), its version, data directory and the host's cores, in one round. */
export const SERVER_SQL = `SELECT setting FROM pg_config WHERE name = 'BINDIR';\nSHOW server_version_num;\nSHOW data_directory;\n`

export interface PgServer {
  bindir: string
  versionNum: number
  dataDirectory: string
  /** `pg_dump --version` of the server's own pg_dump. */
  pgDumpVersion: string
  cores: number
}

export async function readPgServer(conn: HostConnection): Promise<PgServer> {
  const [bindir, num, dataDirectory] = (await conn.exec(pgQuery(SERVER_SQL, "read the server's tools directory, version and data directory"))).stdout.trim().split('\n')
  const tools = await conn.exec({argv: shScript('"$1/pg_dump" --version && nproc', [bindir!]), asUser: 'postgres', component: 'postgresql', description: "read the server's own pg_dump version and the host's cores"})
  const [pgDumpVersion, cores] = tools.stdout.trim().split('\n')
  return {bindir: bindir!, versionNum: Number(num), dataDirectory: dataDirectory!, pgDumpVersion: pgDumpVersion!, cores: Number(cores)}
}

/** A major version from `pg_dump --version` ("pg_dump (PostgreSQL) 15.14 (Debian …)"), `server_version` or `server_version_num`. */
export function pgMajor(version: string | number): number | null {
  if (typeof version === 'number' || /^\d{5,6}$/.test(version)) {
    const n = Number(version)
    return n >= 100000 ? Math.floor(n / 10000) : Math.floor(n / 100) / 100 // 90624 -> 9.06: majors before 10 had two parts
  }
  const m = /(?:^|\(PostgreSQL\) )(\d+)(?:\.(\d+))?/.exec(version.trim())
  if (!m) return null
  const major = Number(m[1])
  return major >= 10 ? major : major + Number(m[2] ?? 0) / 100
}

/** A dump restores into a server of its own major version or newer only; the reason when not. */
export function olderServerProblem(pgDumpVersion: string | undefined, serverVersionNum: number): string | null {
  const dumped = pgDumpVersion ? pgMajor(pgDumpVersion) : null
  const server = pgMajor(serverVersionNum)
  if (dumped === null || server === null || server >= dumped) return null
  return `its databases were dumped by ${pgDumpVersion!.trim()} (PostgreSQL ${dumped}), and this server runs PostgreSQL ${server}: an older server cannot take them`
}

const LIST_DATABASES_SQL = `SELECT coalesce(json_agg(json_build_object('name', datname, 'owner', pg_get_userbyid(datdba), 'encoding', pg_encoding_to_char(encoding), 'bytes', pg_database_size(oid)) ORDER BY datname), '[]') FROM pg_database WHERE NOT datistemplate AND datallowconn;\n`

/** Every user table's row count: `table` in schema public, `schema.table` elsewhere. */
export const COUNT_ROWS_SQL = `SELECT CASE WHEN table_schema = 'public' THEN table_name ELSE table_schema || '.' || table_name END, (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text
FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') AND table_schema NOT LIKE 'pg\\_%' ORDER BY 1;\n`

export function parseCounts(stdout: string): Record<string, number> {
  return Object.fromEntries(
    stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t'))
      .map(([t, n]) => [t!, Number(n)]),
  )
}

/** Work in a fresh staging directory, removed afterwards also on failure (a failed removal never hides the first error). */
async function staged(conn: HostConnection, work: () => Promise<void>): Promise<void> {
  await conn.exec(stagingCommand(PG_STAGING_DIR, true))
  let done = false
  try {
    await work()
    done = true
  } finally {
    await conn.exec(stagingCommand(PG_STAGING_DIR, false)).catch((e: unknown) => {
      if (done) throw e
    })
  }
}

type Save = (a: {name: string; component: 'postgresql'; host: string; what: string; gzip: boolean; counts?: Record<string, number>; postgresql?: PgArtifactInfo}, source: () => Promise<Readable>) => Promise<unknown>

/**
 * Every database of the cluster (but what restores left: staging and kept-aside
 * databases), one artifact each with its tables' row counts, then the roles.
 * Directory format: dumped in parallel into the staging directory, after checking
 * that the largest database fits there, and streamed out as one tar.
 */
export async function backupPostgres(conn: HostConnection, server: PgServer, format: PgFormat, save: Save, io: IoHost): Promise<void> {
  const host = conn.host.name
  const all = JSON.parse((await conn.exec(pgQuery(LIST_DATABASES_SQL, 'list the databases'))).stdout.trim() || '[]') as {name: string; owner: string; encoding: string; bytes: number}[]
  const left = all.filter((d) => isRestoreLeftover(d.name))
  const dbs = all.filter((d) => !isRestoreLeftover(d.name))
  if (left.length) io.notify({type: 'warning', message: `${host}: databases a restore left are not backed up: ${left.map((d) => d.name).join(', ')} (drop them once you no longer need them)`})
  const jobs = pgJobs(server.cores)
  if (format === 'directory') {
    // One database at a time is staged, so the largest one must fit.
    const largest = dbs.reduce((m, d) => (d.bytes > m.bytes ? d : m), {name: '', bytes: 0} as {name: string; bytes: number})
    const free = parseFreeSpace((await conn.exec(freeSpaceCommand([PG_STAGING_DIR]))).stdout)
    const short = spaceShortfalls([{what: `the dump of database ${largest.name} (estimated by its size)`, path: PG_STAGING_DIR, bytes: largest.bytes}], free)
    if (short.length) {
      throw new UserError(`${host}: not enough disk for a directory-format dump: ${short.join('; ')}`, [
        `Free space on that filesystem and back up again, or run \`imctl backup create --pg-format custom\`, which streams each database without a copy on ${host}.`,
        'Nothing was dumped; the set this run began stays incomplete (`imctl backup list` shows it).',
      ])
    }
  }
  for (const d of dbs) {
    const counts = parseCounts((await conn.exec(pgQuery(COUNT_ROWS_SQL, `count the rows of every table in ${d.name}`, d.name))).stdout)
    const info: PgArtifactInfo = {database: d.name, format, owner: d.owner, encoding: d.encoding, bytes: d.bytes}
    const record = {name: pgArtifactName(d.name, format), component: 'postgresql' as const, host, gzip: false, counts, postgresql: info}
    if (format === 'custom') {
      await save({...record, what: `pg_dump of database ${d.name} (custom format, ${server.pgDumpVersion})`}, () => commandOutput(conn, pgDumpCustomCommand(server.bindir, d.name)))
      continue
    }
    await staged(conn, async () => {
      io.notify({type: 'info', message: `${host}: dump database ${d.name} in directory format with ${jobs} jobs into ${PG_STAGING_DIR}`})
      await conn.exec(pgDumpDirectoryCommand(server.bindir, d.name, PG_STAGING_DIR, jobs))
      await save({...record, what: `pg_dump of database ${d.name} (directory format, ${jobs} jobs, ${server.pgDumpVersion}) as one tar`}, () => commandOutput(conn, tarOutCommand(PG_STAGING_DIR)))
    })
  }
  await save({name: PG_GLOBALS, component: 'postgresql', host, what: 'roles (pg_dumpall --globals-only)', gzip: true}, () => commandOutput(conn, pgDumpGlobalsCommand(server.bindir)))
}

/**
 * Before a restore changes anything: the server is not older than the dump, every
 * database's owner exists, and staging plus the restored databases fit on disk.
 */
export async function checkPostgresRestore(conn: HostConnection, server: PgServer, setId: string, manifest: {format: number; versions: Record<string, string>; artifacts: PgArtifactLike[]}): Promise<void> {
  const host = conn.host.name
  const older = olderServerProblem(manifest.versions.pg_dump, server.versionNum)
  if (older) throw new UserError(`backup set ${setId} cannot be restored on ${host}: ${older}`, ['Restore onto a PostgreSQL of the same major version or newer (upgrade this one first). Nothing was changed.'])
  const dbs = pgDatabaseArtifacts(manifest)
  const roles = new Set((await conn.exec(pgQuery('SELECT rolname FROM pg_roles;\n', 'list the roles'))).stdout.split('\n').filter(Boolean))
  const missing = [...new Set(dbs.map((a) => a.postgresql.owner).filter((r) => !roles.has(r)))]
  if (missing.length) {
    throw new UserError(`backup set ${setId} has databases owned by roles ${host} lacks: ${missing.join(', ')}`, [
      `Create them first (the set's ${PG_GLOBALS} holds every role as it was), then restore again. Nothing was changed.`,
    ])
  }
  const staged = dbs.filter((a) => a.postgresql.format === 'directory')
  const needs: SpaceNeed[] = [
    {what: 'the staged dump of the largest database', path: PG_STAGING_DIR, bytes: staged.reduce((m, a) => Math.max(m, a.size), 0)},
    {what: 'the restored databases (what is there now is kept aside)', path: server.dataDirectory, bytes: dbs.reduce((s, a) => s + a.postgresql.bytes, 0)},
  ]
  const short = spaceShortfalls(needs, parseFreeSpace((await conn.exec(freeSpaceCommand([PG_STAGING_DIR, server.dataDirectory]))).stdout))
  if (short.length) throw new UserError(`${host}: not enough disk to restore backup set ${setId}: ${short.join('; ')}`, ['Free space there (databases kept aside by earlier restores, `*_before_*`, can go once you no longer need them), then restore again. Nothing was changed.'])
}

/**
 * Each database of the set into a staging database, then swapped in; what was there
 * is kept under `<db>_before_<tag>`. Returns the names kept aside.
 */
export async function restorePostgres(
  conn: HostConnection,
  server: PgServer,
  manifest: {format: number; artifacts: PgArtifactLike[]},
  artifact: (name: string) => Promise<Readable>,
  tag: string,
  say: (host: string, what: string) => void,
): Promise<string[]> {
  const host = conn.host.name
  const jobs = pgJobs(server.cores)
  const kept: string[] = []
  const admin = (sql: string, description: string) => conn.exec(pgAdminCommand(sql, description))
  for (const a of pgDatabaseArtifacts(manifest)) {
    const {database: db, format, owner, encoding} = a.postgresql
    const staging = stagingDatabase(db)
    const aside = asideDatabase(db, tag)
    say(host, `restore database ${db} from the set (${format} format${format === 'directory' ? `, ${jobs} jobs` : ''}) into ${staging}`)
    await admin(`DROP DATABASE IF EXISTS ${sqlIdent(staging)} WITH (FORCE);\nCREATE DATABASE ${sqlIdent(staging)} OWNER ${sqlIdent(owner)} ENCODING ${sqlLiteral(encoding)} TEMPLATE template0;\n`, `prepare the staging database ${staging}`)
    if (format === 'custom') {
      await conn.exec({...pgRestoreCustomCommand(server.bindir, staging), stdinStream: await artifact(a.name)})
    } else {
      await staged(conn, async () => {
        await conn.exec({...tarInCommand(PG_STAGING_DIR), stdinStream: await artifact(a.name)})
        await conn.exec(pgRestoreDirectoryCommand(server.bindir, staging, PG_STAGING_DIR, jobs))
      })
    }
    const exists = (await conn.exec(pgQuery(`SELECT count(*) FROM pg_database WHERE datname = ${sqlLiteral(db)};\n`, `look for database ${db}`, 'template1'))).stdout.trim() === '1'
    say(host, exists ? `keep the current database ${db} as ${aside} and put the restored one in its place` : `put the restored database ${db} in place (there was none)`)
    await admin(swapDatabaseSql(db, staging, aside), `swap the restored database ${db} in`)
    if (exists) kept.push(`${host}: database ${aside}`)
  }
  return kept
}
