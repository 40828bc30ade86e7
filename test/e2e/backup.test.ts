/**
 * The restore drill, on real hosts: seed users, chat messages (in ejabberd's SQL
 * archive), Redis keys, MinIO objects (1 host, 1 drive) and Kafka topics with a
 * consumer group's committed offsets (1 node) → back up (with every Kafka record)
 * → the same into the cluster's own MinIO (`--to s3://`), verified, damaged there,
 * and restored in place over changed data → damage each artifact and the manifest
 * in a copy (verify names it) → a backup killed half-way is never listed complete →
 * destroy the sandbox → a new one → install → restore (once cut by SIGKILL, then
 * completed) → every table's rows and checksum, the Redis keys, the users, every
 * object's sha256 and headers, every record and the group's offsets are equal, and
 * a restored user reads the same history over XMPP. Last, the schedule's units run
 * under a real systemd (a sandbox host's). PostgreSQL: every database (a second one,
 * `imctl_extra`, beside ejabberd's), in directory format (the local sets) and custom
 * format (the S3 set); the staging directory never outlives a run, and a stale one
 * (with a process still in it) is cleared by the next backup.
 */
import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {parse} from 'yaml'
import {loadBackupKey, sealManifest} from '../../src/ops/backup/crypto.js'
import {PG_STAGING_DIR} from '../../src/ops/backup/postgres.js'
import {scheduleBackup, type Systemd} from '../../src/ops/backup/schedule.js'
import {silentIo} from '../../src/io.js'
import {createSandbox, editConfig, imctl, imctlKilledWhen, transcript, type Sandbox} from './harness.js'
import {BIG_OBJECT_BYTES, consumeToEnd, deleteObject, getObject, GROUP, kafkaDigest, listKeys, objectsDigest, openStores, putObject, seedKafka, seedObjects, TOPIC, type StoreAccess} from './stores.js'
import {archive, login, send} from './xmpp.js'

const NAME = 'e2e-bk'
const DOMAIN = `${NAME}.imctl.test`

describe('backup and restore: the restore drill', {timeout: 1_500_000}, () => {
  let sb: Sandbox
  const keep = mkdtempSync(join(tmpdir(), 'imctl-e2e-backups-'))
  const backups = join(keep, 'sets')
  const key = join(keep, 'keys', 'backup-key')
  let setId = ''
  let before_: {tables: string; extra: string; redis: string; users: string; history: string[]; objects: string[]; kafka: Awaited<ReturnType<typeof kafkaDigest>>}
  let stores: StoreAccess | undefined
  const S3_TO = 's3://imctl-backups/drill'
  const allSecrets: string[] = []

  const c = () => sb.config
  const bk = (...args: string[]) => [...args, '-c', c(), '--to', backups, '--key', key, '--json']
  const redisAuth = () => (readFileSync(join(sb.dir, `${NAME}.secrets.yaml`), 'utf8').match(/^redis:\n\s+password: (\S+)/m) ?? [])[1]!
  /** Row count and an md5 of the rows of every table, in one line per table. */
  const tableDigest = () =>
    sb.onHost(
      'h1',
      `runuser -u postgres -- psql -XAt -d ejabberd -c "SELECT string_agg(format('%s %s %s', t.table_name, (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM public.%I', t.table_name), false, true, '')))[1]::text, (xpath('/row/m/text()', query_to_xml(format('SELECT md5(coalesce(string_agg(x::text, chr(10) ORDER BY x::text), '''')) AS m FROM public.%I x', t.table_name), false, true, '')))[1]::text), chr(10) ORDER BY t.table_name) FROM information_schema.tables t WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE'"`,
    )
  /** The second database: row count and md5 of each table's rows, its schemas' owner and the database's. */
  const extraDigest = () =>
    sb.onHost(
      'h1',
      `runuser -u postgres -- psql -XAt -d imctl_extra -c "SELECT 'notes ' || count(*) || ' ' || md5(string_agg(x::text, chr(10) ORDER BY x::text)) FROM extra_notes x" -c "SELECT 'tally ' || count(*) || ' ' || md5(string_agg(x::text, chr(10) ORDER BY x::text)) FROM side.tally x" -c "SELECT 'owner ' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"`,
    )
  const stagingLeft = () => sb.onHost('h1', `test -e ${PG_STAGING_DIR} && echo left || echo gone`).trim()
  const redisDigest = () => sb.onHost('h1', `export REDISCLI_AUTH='${redisAuth()}'; for k in $(redis-cli --no-auth-warning --scan --pattern 'drill:*' | sort); do echo "$k=$(redis-cli --no-auth-warning GET "$k")"; done`)
  const users = () => sb.onHost('h1', `ejabberdctl registered_users ${DOMAIN} | sort`)
  const ws = () => `ws://${sb.hosts[0]!.address}:5280/ws`

  async function freshCluster(): Promise<void> {
    await stores?.close()
    stores = undefined
    sb = await createSandbox(NAME, 1)
    // Kafka (1 node) and MinIO (1 host, 1 drive, one config bucket) beside the rest, on h1.
    editConfig(c(), (t) => `${t}  kafka:\n    hosts: [h1]\n  minio:\n    hosts: [h1]\n    buckets: [chat-media]\n`)
    const gen = await imctl(['secrets', 'generate', '-c', c(), '--json'])
    assert.equal(gen.exitCode, 0, gen.stdout + gen.stderr)
    const doc = parse(readFileSync(secretsFile(), 'utf8')) as Record<string, Record<string, string>>
    allSecrets.push(...Object.entries(doc).flatMap(([section, v]) => Object.entries(v).filter(([k]) => !(section === 'kafka' && k === 'cluster_id')).map(([, x]) => x)))
    const r = await imctl(['install', '-c', c(), '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    stores = await openStores(sb.hosts[0]!.address, secretsFile())
  }
  const secretsFile = () => join(sb.dir, `${NAME}.secrets.yaml`)

  before(async () => {
    await freshCluster()
  })

  after(async () => {
    await stores?.close()
    await sb?.destroy()
  })

  it('seeds users, an archived conversation, Redis keys, MinIO objects and Kafka records with a group\'s offsets, then backs them up', async () => {
    for (const u of ['alice', 'bob']) sb.onHost('h1', `printf %s '${u}-password-123' | (read p; ejabberdctl register ${u} ${DOMAIN} "$p")`)
    const alice = await login(ws(), DOMAIN, 'alice', 'alice-password-123')
    const bob = await login(ws(), DOMAIN, 'bob', 'bob-password-123')
    for (let i = 1; i <= 5; i++) await send(alice, `bob@${DOMAIN}`, `drill message ${i}`)
    await new Promise((r) => setTimeout(r, 1000))
    const history = await archive(alice)
    assert.deepEqual(history, [1, 2, 3, 4, 5].map((i) => `drill message ${i}`))
    await alice.stop()
    await bob.stop()
    sb.onHost('h1', `export REDISCLI_AUTH='${redisAuth()}'; for i in $(seq 1 20); do redis-cli --no-auth-warning SET drill:$i value-$i >/dev/null; done`)
    await new Promise((r) => setTimeout(r, 1000))
    await seedObjects(stores!.s3)
    await seedKafka(stores!)
    // A second database of the cluster, owned by ejabberd's role, with a table in public and one in a schema of its own.
    sb.onHost(
      'h1',
      `runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE imctl_extra OWNER ejabberd" && runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d imctl_extra -c "CREATE TABLE extra_notes (id int PRIMARY KEY, body text); INSERT INTO extra_notes SELECT g, md5(g::text) FROM generate_series(1, 500) g; ALTER TABLE extra_notes OWNER TO ejabberd; CREATE SCHEMA side AUTHORIZATION ejabberd; CREATE TABLE side.tally (k text, n int); INSERT INTO side.tally VALUES ('a', 1), ('b', 2), ('c', 3); ALTER TABLE side.tally OWNER TO ejabberd"`,
    )
    before_ = {tables: tableDigest(), extra: extraDigest(), redis: redisDigest(), users: users(), history, objects: await objectsDigest(stores!.s3), kafka: await kafkaDigest(stores!)}
    assert.match(before_.tables, /^archive 10 /m, 'each delivered message is archived twice (sender and receiver)')
    assert.match(before_.extra, /^notes 500 [0-9a-f]{32}\ntally 3 [0-9a-f]{32}\nowner ejabberd\n$/)
    assert.equal(before_.redis.trim().split('\n').length, 20)
    assert.deepEqual(before_.kafka.offsets, [0, 1, 2].map((p) => `${GROUP} ${TOPIC}/${p}=10`))
    assert.equal(before_.kafka.topics[TOPIC]!.records.length, 36)

    const r = await imctl(['backup', 'create', '--kafka-data', ...bk()])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    setId = r.json.result.id
    assert.ok(r.json.warnings.some((w: string) => /created the backup key/.test(w)))
    // Every database of the cluster, in directory format by default, then the roles.
    const pg = r.json.result.artifacts.filter((a: {component: string}) => a.component === 'postgresql')
    assert.deepEqual(
      pg.map((a: {name: string; postgresql?: {database: string; format: string; owner: string}}) => [a.name, a.postgresql?.database, a.postgresql?.format, a.postgresql?.owner]),
      [
        ['postgresql-ejabberd.pgdir.tar.enc', 'ejabberd', 'directory', 'ejabberd'],
        ['postgresql-imctl_extra.pgdir.tar.enc', 'imctl_extra', 'directory', 'ejabberd'],
        ['postgresql-postgres.pgdir.tar.enc', 'postgres', 'directory', 'postgres'],
        ['postgresql-globals.sql.gz.enc', undefined, undefined, undefined],
      ],
    )
    assert.equal(r.json.result.format, 2)
    assert.match(r.json.result.versions.pg_dump, /^pg_dump \(PostgreSQL\) 15\./)
    assert.equal(pg[0].counts.archive, 10)
    assert.equal(pg[0].counts.users, 3) // alice, bob and imctl's admin
    assert.deepEqual(pg[1].counts, {extra_notes: 500, 'side.tally': 3})
    assert.equal(stagingLeft(), 'gone')
    const counts = (name: string) => r.json.result.artifacts.find((a: {name: string}) => a.name === name)?.counts
    assert.deepEqual(
      {objects: counts('minio-objects.tar.enc')['chat-media.objects'], handMade: counts('minio-objects.tar.enc')['made-by-hand.objects'], backups: counts('minio-objects.tar.enc')['imctl-backups.objects']},
      {objects: 4, handMade: 1, backups: undefined},
    )
    assert.ok(counts('minio-objects.tar.enc')['chat-media.bytes'] > BIG_OBJECT_BYTES)
    const k = counts('kafka-topics.json.gz.enc')
    assert.deepEqual({topics: k.topics, partitions: k.partitions, offsets: k.offsets}, {topics: 2, partitions: 4, offsets: 3})
    assert.equal(counts('kafka-records.jsonl.gz.enc').records, 39)
    const v = await imctl(['backup', 'verify', setId, ...bk()])
    assert.equal(v.exitCode, 0, v.stdout)
  })

  it('--to s3:// puts a set into the cluster\'s MinIO; list and verify read it there, a damaged object is named, and restore from there puts changed data back', async () => {
    const s3 = (...args: string[]) => [...args, '-c', c(), '--to', S3_TO, '--key', key, '--json']
    const t0 = Date.now()
    // PostgreSQL in custom format here: streamed, nothing staged on the host
    const r = await imctl(['backup', 'create', '--pg-format', 'custom', ...s3()])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const id: string = r.json.result.id
    assert.equal(r.json.result.dir, `${S3_TO}/${NAME}/${id}`)
    assert.deepEqual(
      r.json.result.artifacts.filter((a: {component: string}) => a.component === 'postgresql').map((a: {name: string; postgresql?: {format: string}}) => [a.name, a.postgresql?.format]),
      [['postgresql-ejabberd.pgdump.enc', 'custom'], ['postgresql-imctl_extra.pgdump.enc', 'custom'], ['postgresql-postgres.pgdump.enc', 'custom'], ['postgresql-globals.sql.gz.enc', undefined]],
    )
    const list = await imctl(['backup', 'list', '-c', c(), '--to', S3_TO, '--json'])
    assert.deepEqual(list.json.result.sets.map((x: {id: string; complete: boolean; artifacts: number}) => [x.id, x.complete, x.artifacts]), [[id, true, 11]])
    // One flipped byte in an object and in a custom-format dump of the set is named by verify (the restore below verifies the whole set first)
    const damage = ['minio-objects.tar.enc', 'postgresql-imctl_extra.pgdump.enc']
    const goods: Buffer[] = []
    for (const name of damage) {
      const good = await getObject(stores!.s3, 'imctl-backups', `drill/${NAME}/${id}/${name}`)
      goods.push(good)
      const bad = Buffer.from(good)
      bad[bad.length >> 1] = bad[bad.length >> 1]! ^ 1
      await putObject(stores!.s3, 'imctl-backups', `drill/${NAME}/${id}/${name}`, bad)
    }
    const damaged = await imctl(['backup', 'verify', id, ...s3()])
    assert.equal(damaged.exitCode, 1, damaged.stdout)
    assert.deepEqual(damaged.json.result.problems.map((p: {artifact: string}) => p.artifact).sort(), damage)
    for (const [i, name] of damage.entries()) await putObject(stores!.s3, 'imctl-backups', `drill/${NAME}/${id}/${name}`, goods[i]!)
    // Given changed data: rows of the second database gone, an object gone, one overwritten, the group further on
    sb.onHost('h1', `runuser -u postgres -- psql -q -d imctl_extra -c "DELETE FROM extra_notes WHERE id > 100"`)
    assert.notEqual(extraDigest(), before_.extra)
    await deleteObject(stores!.s3, 'chat-media', 'files/report.bin')
    await putObject(stores!.s3, 'chat-media', 'avatars/alice.png', Buffer.from('overwritten'))
    await consumeToEnd(stores!, GROUP)
    assert.deepEqual((await stores!.admin.fetchOffsets({groupId: GROUP, topics: [TOPIC]}))[0]!.partitions.map((p) => p.offset).sort(), ['12', '12', '12'])
    // When restoring from S3 in place
    const restored = await imctl(['backup', 'restore', id, ...s3()])
    assert.equal(restored.exitCode, 0, restored.stdout + restored.stderr)
    // Then the databases, objects, records and offsets are as backed up, and the overwritten object was kept aside
    assert.deepEqual({tables: tableDigest(), extra: extraDigest()}, {tables: before_.tables, extra: before_.extra})
    assert.ok(restored.json.result.keptAside.some((k: string) => /^h1: database imctl_extra_before_/.test(k)), restored.json.result.keptAside.join('\n'))
    assert.deepEqual(await objectsDigest(stores!.s3), before_.objects)
    assert.deepEqual(await kafkaDigest(stores!), before_.kafka)
    const kept = await listKeys(stores!.s3, 'chat-media', '.imctl-before-restore/')
    assert.equal(kept.length, 1, kept.join(', '))
    assert.match(kept[0]!, /\/avatars\/alice\.png$/)
    assert.equal((await getObject(stores!.s3, 'chat-media', kept[0]!)).toString(), 'overwritten')
    assert.ok(restored.json.result.keptAside.some((k: string) => k.startsWith('MinIO: chat-media/.imctl-before-restore/')))
    assert.ok(restored.json.result.steps.includes(`kafka: topics that exist with records were kept as they are: ${TOPIC}, profiles`), restored.json.result.steps.join('\n'))
    console.log(`# s3 round: create, list, verify, restore in place: ${Math.round((Date.now() - t0) / 1000)} s`)
  })

  it('restore refuses before changing anything while a consumer group of the set has members', async () => {
    const consumer = stores!.kafka.consumer({groupId: GROUP})
    await consumer.connect()
    await consumer.subscribe({topic: TOPIC})
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()))
    await consumer.run({autoCommit: false, eachMessage: async () => {}})
    try {
      await joined
      const r = await imctl(['backup', 'restore', setId, ...bk()])
      assert.equal(r.exitCode, 2, r.stdout)
      assert.match(r.json.error!.message, new RegExp(`consumer groups still have members, so their offsets cannot be restored: ${GROUP} \\(Stable; 1 member`))
      assert.match(r.json.error!.nextSteps!.join(' '), /nothing was changed/)
    } finally {
      await consumer.disconnect()
    }
  })

  it('restore refuses before changing anything a set dumped by a newer PostgreSQL than the server runs', async () => {
    // A copy of the set whose manifest says pg_dump 99, sealed again with the key (as that newer imctl would have)
    const copy = `${setId}-pg99`
    cpSync(join(backups, NAME, setId), join(backups, NAME, copy), {recursive: true})
    try {
      const file = join(backups, NAME, copy, 'manifest.json')
      const {hmac: _, ...body} = JSON.parse(readFileSync(file, 'utf8'))
      body.versions.pg_dump = 'pg_dump (PostgreSQL) 99.1'
      writeFileSync(file, JSON.stringify({...body, hmac: sealManifest(body, loadBackupKey(key, false).key)}, null, 2) + '\n')
      const r = await imctl(['backup', 'restore', copy, ...bk()])
      assert.equal(r.exitCode, 2, r.stdout)
      assert.match(r.json.error!.message, /dumped by pg_dump \(PostgreSQL\) 99\.1 \(PostgreSQL 99\), and this server runs PostgreSQL 15: an older server cannot take them/)
      assert.match(r.json.error!.nextSteps!.join(' '), /Nothing was changed/)
      assert.equal(sb.onHost('h1', 'systemctl is-active ejabberd').trim(), 'active')
    } finally {
      rmSync(join(backups, NAME, copy), {recursive: true})
    }
  })

  it('verify --deep restores the set into a throwaway sandbox, healthy and with every row count equal', async () => {
    const r = await imctl(['backup', 'verify', setId, '--deep', ...bk()])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.deep.healthy, true)
    assert.equal(r.json.result.deep.tablesCompared, 43) // ejabberd's 41, imctl_extra's 2
    assert.deepEqual(r.json.result.deep.storesNotRestored, ['minio', 'kafka'])
    // The throwaway sandbox is gone again.
    const {execFileSync} = await import('node:child_process')
    assert.equal(execFileSync('podman', ['ps', '-aq', '--filter', `name=imctl-sbx-${r.json.result.deep.sandbox}-`], {encoding: 'utf8'}).trim(), '')
  })

  it('verify names every damaged artifact and a damaged manifest', async () => {
    const set = join(backups, NAME, setId)
    const names = [...readdirSync(set).filter((f) => f.endsWith('.enc')), 'manifest.json']
    assert.equal(names.length, 13)
    // One copy per kind of artifact (a directory-format database dump, the roles, Redis, ejabberd's two, the cluster, the manifest),
    // and one with a byte of each MinIO and Kafka artifact and of the other database dumps flipped at once.
    const fresh = names.filter((n) => /^(minio|kafka)-|^postgresql-(imctl_extra|postgres)\.pgdir\.tar\.enc$/.test(n)).sort()
    assert.deepEqual(fresh, ['kafka-records.jsonl.gz.enc', 'kafka-topics.json.gz.enc', 'minio-index.jsonl.gz.enc', 'minio-objects.tar.enc', 'postgresql-imctl_extra.pgdir.tar.enc', 'postgresql-postgres.pgdir.tar.enc'])
    assert.deepEqual(names.filter((n) => !fresh.includes(n)).sort(), ['cluster.tar.gz.enc', 'ejabberd-config.yml.gz.enc', 'ejabberd-mnesia.backup.gz.enc', 'manifest.json', 'postgresql-ejabberd.pgdir.tar.enc', 'postgresql-globals.sql.gz.enc', 'redis-dump.rdb.gz.enc'])
    for (const group of [...names.filter((n) => !fresh.includes(n)).map((n) => [n]), fresh]) {
      const copy = `${setId}-damaged-${group.length > 1 ? 'stores' : group[0]!.replace(/[^a-z]/g, '')}`
      cpSync(set, join(backups, NAME, copy), {recursive: true})
      for (const name of group) {
        const file = join(backups, NAME, copy, name)
        const bytes = readFileSync(file)
        const at = name === 'manifest.json' ? bytes.indexOf('"release"') + 12 : Math.floor(bytes.length / 2)
        bytes[at] = bytes[at]! ^ 0x01
        writeFileSync(file, bytes)
      }
      const r = await imctl(['backup', 'verify', copy, ...bk()])
      assert.equal(r.exitCode, 1, `${group}: ${r.stdout}`)
      if (group.length > 1) assert.deepEqual(r.json.result.problems.map((p: {artifact: string}) => p.artifact).sort(), group)
      else assert.ok(r.json.result.problems.some((p: {artifact: string}) => p.artifact === group[0]), `${group}: ${JSON.stringify(r.json.result.problems)}`)
      rmSync(join(backups, NAME, copy), {recursive: true})
    }
  })

  it('a backup killed half-way is never listed complete, and the next one succeeds', async () => {
    const root = join(backups, NAME)
    const before = new Set(readdirSync(root))
    const cut = await imctlKilledWhen(['backup', 'create', ...bk()], () => {
      const fresh = readdirSync(root).filter((d) => !before.has(d))
      return fresh.some((d) => readdirSync(join(root, d)).some((f) => f.endsWith('.enc')) && !existsSync(join(root, d, 'manifest.json')))
    }, {maxMs: 120_000})
    assert.ok(cut.killed, cut.output)
    const list = await imctl(['backup', 'list', '-c', c(), '--to', backups, '--json'])
    const killedSet = list.json.result.sets.find((s: {id: string}) => !before.has(s.id))
    assert.equal(killedSet.complete, false)
    // Given a staging directory as a killed run leaves it: a dump in it and its tool still running, in a session of its own
    sb.onHost(
      'h1',
      `rm -rf ${PG_STAGING_DIR}; install -d -o postgres -g postgres -m 700 ${PG_STAGING_DIR} && runuser -u postgres -- mkdir ${PG_STAGING_DIR}/dump && runuser -u postgres -- sh -c 'head -c 1000000 /dev/urandom > ${PG_STAGING_DIR}/dump/stale.dat' && ` +
        `(runuser -u postgres -- setsid sh -c 'echo $$ > ${PG_STAGING_DIR}/pid; exec tail -f ${PG_STAGING_DIR}/dump/stale.dat' >/dev/null 2>&1 &) && sleep 1`,
    )
    const stalePid = sb.onHost('h1', `cat ${PG_STAGING_DIR}/pid`).trim()
    assert.equal(sb.onHost('h1', `tr '\\0' ' ' < /proc/${stalePid}/cmdline`).trim(), `tail -f ${PG_STAGING_DIR}/dump/stale.dat`)
    await new Promise((r) => setTimeout(r, 1100)) // set ids are per second
    const next = await imctl(['backup', 'create', ...bk()])
    assert.equal(next.exitCode, 0, next.stdout + next.stderr)
    assert.ok(next.json.warnings.some((w: string) => /stale lock/.test(w)), JSON.stringify(next.json.warnings))
    // Then the stale tool was ended, its directory is gone, and the databases the in-place restore kept aside were left out
    assert.equal(stagingLeft(), 'gone')
    assert.equal(sb.onHost('h1', `test -d /proc/${stalePid} && echo running || echo ended`).trim(), 'ended')
    assert.ok(next.json.warnings.some((w: string) => /databases a restore left are not backed up: .*ejabberd_before_/.test(w)), JSON.stringify(next.json.warnings))
    assert.deepEqual(next.json.result.artifacts.filter((a: {postgresql?: unknown}) => a.postgresql).map((a: {postgresql: {database: string}}) => a.postgresql.database), ['ejabberd', 'imctl_extra', 'postgres'])
  })

  it('restores onto a new cluster, also after a restore was cut by SIGKILL, and everything is equal', async () => {
    // Disaster: the hosts are gone. New hosts, a fresh install.
    await sb.destroy()
    await freshCluster()
    assert.doesNotMatch(users(), /alice/)
    // Without --json, so the progress lines show and the cut falls right after the database swap, before Redis, MinIO and Kafka.
    const cut = await imctlKilledWhen(['backup', 'restore', setId, ...bk().filter((a) => a !== '--json')], (out) => /keep the current database/.test(out), {maxMs: 300_000})
    assert.ok(cut.killed, cut.output)
    const r = await imctl(['backup', 'restore', setId, ...bk()])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.healthy, true)
    assert.deepEqual({tables: tableDigest(), extra: extraDigest(), redis: redisDigest(), users: users()}, {tables: before_.tables, extra: before_.extra, redis: before_.redis, users: before_.users})
    assert.equal(stagingLeft(), 'gone')
    assert.deepEqual(await objectsDigest(stores!.s3), before_.objects)
    assert.deepEqual(await kafkaDigest(stores!), before_.kafka)
    assert.ok(r.json.result.steps.includes('kafka: topics created: chat-events, profiles'), r.json.result.steps.join('\n'))
    const alice = await login(ws(), DOMAIN, 'alice', 'alice-password-123')
    try {
      assert.deepEqual(await archive(alice), before_.history)
    } finally {
      await alice.stop()
    }
  })

  it('a set made before every database was backed up (manifest format 1, one custom dump of ejabberd) still verifies and restores', async () => {
    // Given such a set: made now in custom format, then cut down to what format 1 held and sealed again
    const legacy = join(keep, 'legacy')
    const made = await imctl(['backup', 'create', '--pg-format', 'custom', '-c', c(), '--to', legacy, '--key', key, '--json'])
    assert.equal(made.exitCode, 0, made.stdout + made.stderr)
    const id: string = made.json.result.id
    const file = join(legacy, NAME, id, 'manifest.json')
    const {hmac: _, ...body} = JSON.parse(readFileSync(file, 'utf8'))
    const others = body.artifacts.filter((a: {postgresql?: {database: string}}) => a.postgresql && a.postgresql.database !== 'ejabberd')
    for (const a of others) rmSync(join(legacy, NAME, id, a.name))
    body.format = 1
    body.artifacts = body.artifacts.filter((a: {name: string}) => !others.some((o: {name: string}) => o.name === a.name)).map(({postgresql: __, ...a}: {postgresql?: unknown}) => a)
    writeFileSync(file, JSON.stringify({...body, hmac: sealManifest(body, loadBackupKey(key, false).key)}, null, 2) + '\n')
    assert.deepEqual(body.artifacts.filter((a: {component: string}) => a.component === 'postgresql').map((a: {name: string}) => a.name), ['postgresql-ejabberd.pgdump.enc', 'postgresql-globals.sql.gz.enc'])
    const v = await imctl(['backup', 'verify', id, '-c', c(), '--to', legacy, '--key', key, '--json'])
    assert.equal(v.exitCode, 0, v.stdout)
    assert.equal(v.json.result.checked, 9)
    // When ejabberd's data changed and the set is restored
    sb.onHost('h1', `runuser -u postgres -- psql -q -d ejabberd -c "DELETE FROM archive"`)
    assert.notEqual(tableDigest(), before_.tables)
    const r = await imctl(['backup', 'restore', id, '-c', c(), '--to', legacy, '--key', key, '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    // Then ejabberd's database is back, the one the set lacks is left as it was, and only ejabberd's was kept aside
    assert.deepEqual({tables: tableDigest(), extra: extraDigest()}, {tables: before_.tables, extra: before_.extra})
    assert.deepEqual(r.json.result.keptAside.filter((k: string) => / database /.test(k)).map((k: string) => k.replace(/_before_.*/, '')), ['h1: database ejabberd'])
  })

  it('prune keeps what the policy says, and nothing goes while the newest set does not verify', async () => {
    const root = join(backups, NAME)
    const complete = () => readdirSync(root).filter((d) => existsSync(join(root, d, 'manifest.json'))).sort()
    assert.equal(complete().length, 2)
    const newest = complete().at(-1)!
    // Given the newest set damaged: prune refuses and deletes nothing
    const victim = join(root, newest, 'redis-dump.rdb.gz.enc')
    const good = readFileSync(victim)
    const bad = Buffer.from(good)
    bad[bad.length >> 1] = bad[bad.length >> 1]! ^ 1
    writeFileSync(victim, bad)
    const refused = await imctl(['backup', 'prune', '--keep', 'daily=1', ...bk()])
    assert.equal(refused.exitCode, 2)
    assert.match(refused.json.error!.message, /does not verify .*nothing was pruned/)
    assert.equal(complete().length, 2)
    // When it is whole again, daily=1 keeps only the newest set
    writeFileSync(victim, good)
    const r = await imctl(['backup', 'prune', '--keep', 'daily=1', ...bk()])
    assert.equal(r.exitCode, 0, r.stdout)
    assert.deepEqual(r.json.result.kept, [newest])
    assert.deepEqual(complete(), [newest])
  })

  it('backup schedule: a real systemd (a sandbox host\'s) loads the units, runs the service into its journal, shows the runs, and --disable removes them', async () => {
    // The units go where that systemd reads them; the service runs echo in place of imctl, which that host lacks.
    const container = sb.hosts[0]!.container
    const mount = execFileSync('podman', ['mount', container], {encoding: 'utf8'}).trim()
    const systemd: Systemd = {
      scope: 'system',
      unitDir: join(mount, 'etc/systemd/system'),
      available: async () => true,
      systemctl: async (args) => {
        const r = spawnSync('podman', ['exec', container, 'systemctl', ...args], {encoding: 'utf8'})
        return {exitCode: r.status ?? 1, stdout: r.stdout, stderr: r.stderr}
      },
    }
    const base = {configFile: c(), keyFile: key, io: silentIo, systemd, imctl: ['/bin/echo', 'imctl']}
    const made = await scheduleBackup({...base, every: '1d', at: '03:30', to: S3_TO})
    assert.deepEqual({action: made.action, enabled: made.enabled, schedule: made.schedule, lastRun: made.lastRun}, {action: 'scheduled', enabled: true, schedule: '*-*-* 03:30:00', lastRun: null})
    assert.match(made.nextRun ?? '', / 03:30:00 /)
    sb.onHost('h1', `systemctl start imctl-backup-${NAME}.service`)
    const st = await scheduleBackup({...base, status: true})
    assert.deepEqual({result: st.lastRun?.result, exit: st.lastRun?.exitStatus}, {result: 'success', exit: 0})
    assert.equal(sb.onHost('h1', `journalctl -u imctl-backup-${NAME}.service -o cat --no-pager | grep '^imctl backup'`).trim(), `imctl backup create --json -c ${c()} --key ${key} --to ${S3_TO}`)
    const off = await scheduleBackup({...base, disable: true})
    assert.equal(off.installed, false)
    assert.equal(sb.onHost('h1', `ls /etc/systemd/system /etc/systemd/system/timers.target.wants | grep -c imctl-backup || true`).trim(), '0')
  })

  it('never prints a secret', () => {
    const text = transcript.join('\n')
    for (const s of [...allSecrets, readFileSync(key, 'utf8').trim()]) assert.ok(!text.includes(s), 'a secret or the backup key appeared in imctl output')
  })
})
