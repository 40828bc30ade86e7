/**
 * The restore drill, on real hosts: seed users, chat messages (in ejabberd's SQL
 * archive) and Redis keys → back up → damage each artifact and the manifest in a
 * copy (verify names it) → a backup killed half-way is never listed complete →
 * destroy the sandbox → a new one → install → restore (once cut by SIGKILL, then
 * completed) → every table's rows and checksum, the Redis keys and the users are
 * equal, and a restored user reads the same history over XMPP.
 */
import assert from 'node:assert/strict'
import {cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createSandbox, imctl, imctlKilledWhen, transcript, type Sandbox} from './harness.js'
import {archive, login, send} from './xmpp.js'

const NAME = 'e2e-bk'
const DOMAIN = `${NAME}.imctl.test`

describe('backup and restore: the restore drill', {timeout: 1_500_000}, () => {
  let sb: Sandbox
  const keep = mkdtempSync(join(tmpdir(), 'imctl-e2e-backups-'))
  const backups = join(keep, 'sets')
  const key = join(keep, 'keys', 'backup-key')
  let setId = ''
  let before_: {tables: string; redis: string; users: string; history: string[]}
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
  const redisDigest = () => sb.onHost('h1', `export REDISCLI_AUTH='${redisAuth()}'; for k in $(redis-cli --no-auth-warning --scan --pattern 'drill:*' | sort); do echo "$k=$(redis-cli --no-auth-warning GET "$k")"; done`)
  const users = () => sb.onHost('h1', `ejabberdctl registered_users ${DOMAIN} | sort`)
  const ws = () => `ws://${sb.hosts[0]!.address}:5280/ws`

  async function freshCluster(): Promise<void> {
    sb = await createSandbox(NAME, 1)
    allSecrets.push(...sb.secrets)
    const r = await imctl(['install', '-c', c(), '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
  }

  before(async () => {
    await freshCluster()
  })

  after(async () => {
    await sb?.destroy()
  })

  it('seeds users, an archived conversation and Redis keys, then backs them up', async () => {
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
    before_ = {tables: tableDigest(), redis: redisDigest(), users: users(), history}
    assert.match(before_.tables, /^archive 10 /m, 'each delivered message is archived twice (sender and receiver)')
    assert.equal(before_.redis.trim().split('\n').length, 20)

    const r = await imctl(['backup', 'create', ...bk()])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    setId = r.json.result.id
    assert.ok(r.json.warnings.some((w: string) => /created the backup key/.test(w)))
    const pgdump = r.json.result.artifacts.find((a: {name: string}) => a.name === 'postgresql-ejabberd.pgdump.enc')
    assert.equal(pgdump.counts.archive, 10)
    assert.equal(pgdump.counts.users, 3) // alice, bob and imctl's admin
    const v = await imctl(['backup', 'verify', setId, ...bk()])
    assert.equal(v.exitCode, 0, v.stdout)
  })

  it('verify --deep restores the set into a throwaway sandbox, healthy and with every row count equal', async () => {
    const r = await imctl(['backup', 'verify', setId, '--deep', ...bk()])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.deep.healthy, true)
    assert.equal(r.json.result.deep.tablesCompared, 41)
    // The throwaway sandbox is gone again.
    const {execFileSync} = await import('node:child_process')
    assert.equal(execFileSync('podman', ['ps', '-aq', '--filter', `name=imctl-sbx-${r.json.result.deep.sandbox}-`], {encoding: 'utf8'}).trim(), '')
  })

  it('verify names every damaged artifact and a damaged manifest', async () => {
    const set = join(backups, NAME, setId)
    const names = [...readdirSync(set).filter((f) => f.endsWith('.enc')), 'manifest.json']
    assert.equal(names.length, 7)
    for (const name of names) {
      const copy = `${setId}-damaged-${name.replace(/[^a-z]/g, '')}`
      cpSync(set, join(backups, NAME, copy), {recursive: true})
      const file = join(backups, NAME, copy, name)
      const bytes = readFileSync(file)
      const at = name === 'manifest.json' ? bytes.indexOf('"release"') + 12 : Math.floor(bytes.length / 2)
      bytes[at] = bytes[at]! ^ 0x01
      writeFileSync(file, bytes)
      const r = await imctl(['backup', 'verify', copy, ...bk()])
      assert.equal(r.exitCode, 1, `${name}: ${r.stdout}`)
      assert.ok(r.json.result.problems.some((p: {artifact: string}) => p.artifact === name), `${name}: ${JSON.stringify(r.json.result.problems)}`)
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
    await new Promise((r) => setTimeout(r, 1100)) // set ids are per second
    const next = await imctl(['backup', 'create', ...bk()])
    assert.equal(next.exitCode, 0, next.stdout + next.stderr)
    assert.ok(next.json.warnings.some((w: string) => /stale lock/.test(w)), JSON.stringify(next.json.warnings))
  })

  it('restores onto a new cluster, also after a restore was cut by SIGKILL, and everything is equal', async () => {
    // Disaster: the hosts are gone. New hosts, a fresh install.
    await sb.destroy()
    await freshCluster()
    assert.doesNotMatch(users(), /alice/)
    const cut = await imctlKilledWhen(['backup', 'restore', setId, ...bk()], (out) => /keep the current database/.test(out), {maxMs: 300_000})
    assert.ok(cut.killed, cut.output)
    const r = await imctl(['backup', 'restore', setId, ...bk()])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.healthy, true)
    assert.deepEqual({tables: tableDigest(), redis: redisDigest(), users: users()}, {tables: before_.tables, redis: before_.redis, users: before_.users})
    const alice = await login(ws(), DOMAIN, 'alice', 'alice-password-123')
    try {
      assert.deepEqual(await archive(alice), before_.history)
    } finally {
      await alice.stop()
    }
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

  it('never prints a secret', () => {
    const text = transcript.join('\n')
    for (const s of [...allSecrets, readFileSync(key, 'utf8').trim()]) assert.ok(!text.includes(s), 'a secret or the backup key appeared in imctl output')
  })
})
