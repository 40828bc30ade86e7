import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {wrapArgv} from '../../src/transport/command.js'
import {
  asideDatabase,
  encodeDbName,
  isRestoreLeftover,
  manifestFormatProblem,
  olderServerProblem,
  parseFreeSpace,
  pgArtifactName,
  pgConninfo,
  pgDatabaseArtifacts,
  pgDumpCustomCommand,
  pgDumpDirectoryCommand,
  pgDumpGlobalsCommand,
  pgJobs,
  pgMajor,
  pgRestoreCustomCommand,
  pgRestoreDirectoryCommand,
  requiredBytes,
  spaceShortfalls,
  stagingCommand,
  stagingDatabase,
  swapDatabaseSql,
  tarInCommand,
  tarOutCommand,
} from '../../src/ops/backup/postgres.js'

const BIN = '/usr/lib/postgresql/15/bin'
const DIR = '/var/lib/imctl/pg-staging'
const MiB = 2 ** 20
const root = {isRoot: true}

describe('PostgreSQL backups: command builders', () => {
  it('dumps in custom format to stdout with the server\'s own pg_dump, the database named as conninfo', () => {
    assert.deepEqual(wrapArgv(pgDumpCustomCommand(BIN, 'ejabberd'), root), ['runuser', '-u', 'postgres', '--', `${BIN}/pg_dump`, '-Fc', '-d', "dbname='ejabberd'"])
  })

  it('dumps in directory format with N jobs into the staging directory, in a session of its own with its pid recorded', () => {
    assert.deepEqual(wrapArgv(pgDumpDirectoryCommand(BIN, 'imctl_extra', DIR, 2), root), [
      'runuser', '-u', 'postgres', '--',
      'setsid', '-w', 'sh', '-c', 'echo $$ > "$0/pid" && exec "$@"', DIR,
      `${BIN}/pg_dump`, '-Fd', '-j', '2', '-f', `${DIR}/dump`, '-d', "dbname='imctl_extra'",
    ])
  })

  it('restores a directory dump with N jobs, and a custom one from stdin', () => {
    assert.deepEqual(pgRestoreDirectoryCommand(BIN, 'ejabberd_restoring', DIR, 4).argv, [
      'setsid', '-w', 'sh', '-c', 'echo $$ > "$0/pid" && exec "$@"', DIR,
      `${BIN}/pg_restore`, '--exit-on-error', '--no-password', '-j', '4', '-Fd', '-d', "dbname='ejabberd_restoring'", `${DIR}/dump`,
    ])
    assert.deepEqual(pgRestoreCustomCommand(BIN, 'ejabberd_restoring').argv, [`${BIN}/pg_restore`, '--exit-on-error', '--no-password', '-d', "dbname='ejabberd_restoring'"])
    assert.equal(pgRestoreCustomCommand(BIN, 'x').asUser, 'postgres')
  })

  it('streams the dump directory as one uncompressed tar, and unpacks one into a fresh dump directory', () => {
    assert.deepEqual(tarOutCommand(DIR).argv, ['tar', '-C', `${DIR}/dump`, '-cf', '-', '.'])
    assert.deepEqual(tarInCommand(DIR).argv, ['sh', '-c', 'mkdir -m 700 -- "$1/dump" && exec tar -C "$1/dump" -xf -', 'sh', DIR])
    for (const c of [tarOutCommand(DIR), tarInCommand(DIR)]) assert.equal(c.asUser, 'postgres')
  })

  it('dumps the roles with the server\'s pg_dumpall', () => {
    assert.deepEqual(pgDumpGlobalsCommand(BIN).argv, [`${BIN}/pg_dumpall`, '--globals-only'])
  })

  it('the staging directory: a stale tool ended by its pid file (only when its command line names the directory), removed, made again postgres\'s and 0700', () => {
    const make = stagingCommand(DIR, true)
    const drop = stagingCommand(DIR, false)
    assert.equal(make.root, true)
    assert.deepEqual(make.argv.slice(-2), ['sh', DIR])
    const script = make.argv[2]!
    assert.match(script, /grep -qF -- "\$d\/"/)
    assert.match(script, /kill -TERM -- "-\$p"/)
    assert.match(script, /rm -rf -- "\$d" \|\| exit 1; mkdir -p -- "\$\{d%\/\*\}" && mkdir -m 700 -- "\$d" && chown postgres:postgres -- "\$d"$/)
    assert.match(drop.argv[2]!, /rm -rf -- "\$d" \|\| exit 1; true$/)
    assert.doesNotMatch(drop.argv[2]!, /mkdir/)
  })

  it('a database name is given as conninfo, quotes and backslashes escaped, so no name reads as a connection string', () => {
    assert.equal(pgConninfo("it's"), "dbname='it\\'s'")
    assert.equal(pgConninfo('a\\b'), "dbname='a\\\\b'")
    assert.equal(pgConninfo('host=evil'), "dbname='host=evil'")
  })

  it('swaps the restored database in, the current one renamed aside only if it exists', () => {
    assert.equal(
      swapDatabaseSql('ejabberd', 'ejabberd_restoring', 'ejabberd_before_x'),
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'ejabberd';\n" +
        "SELECT format('ALTER DATABASE %I RENAME TO %I', 'ejabberd', 'ejabberd_before_x') WHERE EXISTS (SELECT 1 FROM pg_database WHERE datname = 'ejabberd')\\gexec\n" +
        'ALTER DATABASE "ejabberd_restoring" RENAME TO "ejabberd";\n',
    )
  })
})

describe('PostgreSQL backups: names', () => {
  it('one artifact per database and format; names are file-safe and never collide', () => {
    assert.equal(pgArtifactName('ejabberd', 'custom'), 'postgresql-ejabberd.pgdump.enc') // a format-1 set's name, unchanged
    assert.equal(pgArtifactName('ejabberd', 'directory'), 'postgresql-ejabberd.pgdir.tar.enc')
    assert.equal(pgArtifactName('imctl_extra', 'directory'), 'postgresql-imctl_extra.pgdir.tar.enc')
    assert.equal(encodeDbName('a b/c.d%é'), 'a%20b%2Fc%2Ed%25%C3%A9')
    assert.notEqual(encodeDbName('a%2E'), encodeDbName('a.'))
    assert.notEqual(pgArtifactName('globals', 'custom'), 'postgresql-globals.sql.gz.enc')
  })

  it('staging and kept-aside databases: ejabberd\'s as before; long names kept within 63 bytes and apart by a hash', () => {
    assert.equal(stagingDatabase('ejabberd'), 'ejabberd_restoring')
    const tag = '20261126t210713z_20261126t211000z'
    assert.equal(asideDatabase('ejabberd', tag), `ejabberd_before_${tag}`)
    const long1 = 'x'.repeat(40) + 'one'
    const long2 = 'x'.repeat(40) + 'two'
    for (const n of [asideDatabase(long1, tag), asideDatabase(long2, tag), stagingDatabase('é'.repeat(40))]) assert.ok(Buffer.byteLength(n) <= 63, n)
    assert.notEqual(asideDatabase(long1, tag), asideDatabase(long2, tag))
    assert.match(asideDatabase(long1, tag), new RegExp(`^x+_[0-9a-f]{8}_before_${tag}$`))
    assert.doesNotMatch(stagingDatabase('é'.repeat(40)), /\uFFFD/)
  })

  it('what restores left is never backed up again; other databases are', () => {
    assert.equal(isRestoreLeftover('ejabberd_restoring'), true)
    assert.equal(isRestoreLeftover('ejabberd_before_20261126t210713z_20261126t211000z'), true)
    assert.equal(isRestoreLeftover('imctl_extra_before_20261126t210713zpg99_20261126t211000z'), true)
    for (const db of ['ejabberd', 'postgres', 'imctl_extra', 'before_lunch', 'x_before_2026']) assert.equal(isRestoreLeftover(db), false, db)
  })
})

describe('PostgreSQL backups: decisions', () => {
  it('jobs follow the host\'s cores, at least 1 and at most 8', () => {
    assert.deepEqual([0, 1, 2, 6, 8, 64, Number.NaN].map(pgJobs), [1, 1, 2, 6, 8, 8, 1])
  })

  it('free space: needs on one filesystem add up, with a tenth and 64 MiB of headroom', () => {
    assert.equal(requiredBytes(100 * MiB), 174 * MiB)
    const free = [
      {path: DIR, device: '2049', available: 300 * MiB},
      {path: '/var/lib/postgresql/15/main', device: '2049', available: 300 * MiB},
    ]
    // Given 100 MiB to stage and 100 MiB to restore on one filesystem with 300 MiB free: 284 MiB needed, it fits
    assert.deepEqual(spaceShortfalls([{what: 'stage', path: DIR, bytes: 100 * MiB}, {what: 'restore', path: free[1]!.path, bytes: 100 * MiB}], free), [])
    // 150 + 100 -> 339 MiB: refused, naming both
    assert.deepEqual(spaceShortfalls([{what: 'stage', path: DIR, bytes: 150 * MiB}, {what: 'restore', path: free[1]!.path, bytes: 100 * MiB}], free), [
      `${DIR} and /var/lib/postgresql/15/main share a filesystem that has 300.0 MiB free, stage (150.0 MiB) and restore (100.0 MiB) need 339.0 MiB with headroom`,
    ])
    // On two filesystems each need stands alone
    const apart = [free[0]!, {...free[1]!, device: '2050'}]
    assert.deepEqual(spaceShortfalls([{what: 'stage', path: DIR, bytes: 150 * MiB}, {what: 'restore', path: free[1]!.path, bytes: 100 * MiB}], apart), [])
    assert.deepEqual(spaceShortfalls([{what: 'the dump of database ejabberd', path: DIR, bytes: 250 * MiB}], apart), [`${DIR} has 300.0 MiB free, the dump of database ejabberd (250.0 MiB) needs 339.0 MiB with headroom`])
    // Nothing to stage (custom format): no check at all
    assert.deepEqual(spaceShortfalls([{what: 'stage', path: DIR, bytes: 0}], [{path: DIR, device: '1', available: 0}]), [])
  })

  it('reads df\'s answer per path', () => {
    assert.deepEqual(parseFreeSpace(`2049 123456 ${DIR}\n2050 99 /srv/pg data\n`), [
      {device: '2049', available: 123456, path: DIR},
      {device: '2050', available: 99, path: '/srv/pg data'},
    ])
  })

  it('major versions from pg_dump --version, server_version and server_version_num', () => {
    assert.equal(pgMajor('pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)'), 15)
    assert.equal(pgMajor('pg_dump (PostgreSQL) 17.2'), 17)
    assert.equal(pgMajor('15.14 (Debian 15.14-0+deb12u1)'), 15)
    assert.equal(pgMajor(150014), 15)
    assert.equal(pgMajor('170002'), 17)
    assert.equal(pgMajor(90624), 9.06)
    assert.equal(pgMajor('pg_dump (PostgreSQL) 9.6.24'), 9.06)
    assert.equal(pgMajor('nonsense'), null)
  })

  it('a dump goes into a server of its major version or newer, never an older one', () => {
    assert.equal(olderServerProblem('pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)', 150010), null)
    assert.equal(olderServerProblem('pg_dump (PostgreSQL) 15.14', 170002), null)
    assert.equal(olderServerProblem('pg_dump (PostgreSQL) 17.2', 150014), 'its databases were dumped by pg_dump (PostgreSQL) 17.2 (PostgreSQL 17), and this server runs PostgreSQL 15: an older server cannot take them')
    assert.equal(olderServerProblem(undefined, 150014), null)
  })
})

describe('PostgreSQL backups: manifests old and new', () => {
  const legacy = {
    format: 1,
    artifacts: [
      {name: 'postgresql-ejabberd.pgdump.enc', component: 'postgresql', size: 10, counts: {archive: 10}},
      {name: 'postgresql-globals.sql.gz.enc', component: 'postgresql', size: 5},
      {name: 'redis-dump.rdb.gz.enc', component: 'redis', size: 5},
    ],
  }

  it('a format-1 set: its one custom-format dump of ejabberd, as it was restored before', () => {
    assert.deepEqual(pgDatabaseArtifacts(legacy), [
      {name: 'postgresql-ejabberd.pgdump.enc', component: 'postgresql', size: 10, counts: {archive: 10}, postgresql: {database: 'ejabberd', format: 'custom', owner: 'ejabberd', encoding: 'UTF8', bytes: 0}},
    ])
    assert.deepEqual(pgDatabaseArtifacts({format: 1, artifacts: legacy.artifacts.slice(1)}), [])
  })

  it('a format-2 set: each database artifact as it describes itself, the roles not among them', () => {
    const info = (database: string, format: 'custom' | 'directory') => ({database, format, owner: 'ejabberd', encoding: 'UTF8', bytes: 8 * MiB})
    const set = {
      format: 2,
      artifacts: [
        {name: 'postgresql-ejabberd.pgdir.tar.enc', component: 'postgresql', size: 10, postgresql: info('ejabberd', 'directory')},
        {name: 'postgresql-imctl_extra.pgdump.enc', component: 'postgresql', size: 10, postgresql: info('imctl_extra', 'custom')},
        {name: 'postgresql-globals.sql.gz.enc', component: 'postgresql', size: 5},
      ],
    }
    assert.deepEqual(pgDatabaseArtifacts(set).map((a) => [a.name, a.postgresql.database, a.postgresql.format]), [
      ['postgresql-ejabberd.pgdir.tar.enc', 'ejabberd', 'directory'],
      ['postgresql-imctl_extra.pgdump.enc', 'imctl_extra', 'custom'],
    ])
    // A format-2 set is read by what it says, not by names: a legacy name there is not taken for ejabberd's
    assert.deepEqual(pgDatabaseArtifacts({format: 2, artifacts: legacy.artifacts}), [])
  })

  it('formats 1 and 2 are read; a newer one is refused as made by a newer imctl, anything else as unknown', () => {
    assert.equal(manifestFormatProblem(1), null)
    assert.equal(manifestFormatProblem(2), null)
    assert.equal(manifestFormatProblem(3), 'format 3, made by a newer imctl: this one reads formats 1 to 2')
    assert.equal(manifestFormatProblem(undefined), 'unknown format undefined')
    assert.equal(manifestFormatProblem('2'), 'unknown format "2"')
  })
})
