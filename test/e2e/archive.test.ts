/**
 * The message archive on real hosts (1 sandbox host: PostgreSQL, Redis, ejabberd and
 * MinIO with one drive): a year of messages seeded straight into `archive` (1,000,000
 * by default, ARCHIVE_E2E_ROWS) plus real ones over XMPP → archive run --older-than
 * 90d, killed with SIGKILL after an export before its verify and again mid-delete,
 * then completed → the database holds only the recent rows, and the objects hold
 * exactly the removed ones (count and a digest over every row, computed in SQL
 * before and from the objects after) → a month restored is identical and served by
 * MAM → twice adds nothing → search, schedule and health.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {gunzipSync} from 'node:zlib'
import {after, before, describe, it} from 'node:test'
import {GetObjectCommand, ListObjectsV2Command, S3Client} from '@aws-sdk/client-s3'
import {parse} from 'yaml'
import {rowsDigest, rowsDigestSql} from '../../src/ops/archive/model.js'
import {seedArchiveSql} from './archive-seed.js'
import {createSandbox, editConfig, imctl, imctlKilledWhen, transcript, type Sandbox} from './harness.js'
import {archive, login, send} from './xmpp.js'

const NAME = 'e2e-arc'
const DOMAIN = `${NAME}.imctl.test`
const OTHER = 'other.imctl.test'
const ROWS = Number(process.env.ARCHIVE_E2E_ROWS ?? 1_000_000)

describe('message archive: export, verify, purge, restore', {timeout: 1_500_000}, () => {
  let sb: Sandbox
  let s3: S3Client
  let cutoffMicros = 0
  const real = ['real message 1', 'real message 2', 'real message 3']
  const run = ['archive', 'run', '--older-than', '90d']
  const c = () => sb.config
  const sql = (text: string) => execFileSync('podman', ['exec', '-i', sb.hosts[0]!.container, 'runuser', '-u', 'postgres', '--', 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', 'ejabberd'], {input: text, encoding: 'utf8', maxBuffer: 1 << 26}).trim()
  const digest = (table: string, where: string) => sql(rowsDigestSql(where).replace('FROM public.archive a', `FROM public.${table} a`))
  const ws = () => `ws://${sb.hosts[0]!.address}:5280/ws`

  /** Every line of every object in the bucket, read with the archive key straight from MinIO. */
  async function objectLines(): Promise<string[]> {
    const lines: string[] = []
    const list = await s3.send(new ListObjectsV2Command({Bucket: 'imctl-archive', Prefix: 'objects/'}))
    for (const o of list.Contents ?? []) {
      const res = await s3.send(new GetObjectCommand({Bucket: 'imctl-archive', Key: o.Key!}))
      const text = gunzipSync(Buffer.from(await res.Body!.transformToByteArray())).toString('utf8')
      for (const l of text.split('\n')) if (l) lines.push(l)
    }
    return lines
  }

  before(async () => {
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
    sb = await createSandbox(NAME, 1)
    editConfig(c(), (t) => `${t}  minio:\n    hosts: [h1]\n`)
    const gen = await imctl(['secrets', 'generate', '-c', c(), '--json'])
    assert.equal(gen.exitCode, 0, gen.stdout + gen.stderr)
    const keys = (parse(readFileSync(join(sb.dir, `${NAME}.secrets.yaml`), 'utf8')) as {minio: Record<string, string>}).minio
    sb.secrets.push(...Object.values(keys))
    s3 = new S3Client({endpoint: `http://${sb.hosts[0]!.address}:9000`, forcePathStyle: true, region: 'us-east-1', credentials: {accessKeyId: 'imctl-archive', secretAccessKey: keys.archive_secret!}, maxAttempts: 2})
    const r = await imctl(['install', '-c', c(), '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
  })

  after(async () => {
    s3?.destroy()
    await sb?.destroy()
  })

  it('refuses a cluster without MinIO, saying what to add', async () => {
    const plain = join(sb.dir, 'no-minio.yaml')
    execFileSync('sh', ['-c', `sed '/^  minio:/,$d' ${c()} > ${plain}`])
    const r = await imctl([...run, '-c', plain, '--json'])
    assert.equal(r.exitCode, 2, r.stdout)
    assert.match(r.json.error!.message, /has no MinIO/)
  })

  it('seeds a year of messages and a few real ones, and a dry run says what would move', async () => {
    for (const u of ['alice', 'bob']) sb.onHost('h1', `printf %s '${u}-password-123' | (read p; ejabberdctl register ${u} ${DOMAIN} "$p")`)
    const alice = await login(ws(), DOMAIN, 'alice', 'alice-password-123')
    for (const m of real) await send(alice, `bob@${DOMAIN}`, m)
    await new Promise((r) => setTimeout(r, 1000))
    await alice.stop()
    const t0 = Date.now()
    sql(seedArchiveSql({rows: ROWS, days: 365, domain: DOMAIN, other: OTHER}))
    // The originals, kept aside to compare with afterwards.
    sql('CREATE TABLE public.archive_before AS SELECT * FROM public.archive;')
    console.log(`seeded ${ROWS} rows in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    const dry = await imctl([...run, '--dry-run', '-c', c(), '--json'])
    assert.equal(dry.exitCode, 0, dry.stdout + dry.stderr)
    assert.ok(dry.json.result.rows > ROWS * 0.74 && dry.json.result.rows < ROWS * 0.76, String(dry.json.result.rows))
    assert.deepEqual(dry.json.result.domains.map((d: {domain: string}) => d.domain), [DOMAIN, OTHER].sort())
    assert.equal(Number(sql('SELECT count(*) FROM public.archive')), ROWS + 6)
  })

  it('a run killed after an export, before its verify, deleted nothing; one killed mid-delete; the next completes', async () => {
    const t0 = Date.now()
    const cut1 = await imctlKilledWhen([...run, '-c', c()], (out) => /^exported objects\//m.test(out), {maxMs: 600_000})
    assert.ok(cut1.killed, cut1.output)
    assert.doesNotMatch(cut1.output, /deleting/)
    assert.equal(Number(sql('SELECT count(*) FROM public.archive')), ROWS + 6, 'no row deleted before its copy is verified')
    const cut2 = await imctlKilledWhen([...run, '-c', c()], (out) => /batch 3\/\d+ committed/.test(out), {maxMs: 600_000})
    assert.ok(cut2.killed, cut2.output)
    assert.match(cut2.output, /resuming run/)
    const done = await imctl([...run, '-c', c(), '--json'])
    assert.equal(done.exitCode, 0, done.stdout + done.stderr)
    assert.equal(done.json.result.state, 'done')
    assert.equal(done.json.result.resumed, true)
    cutoffMicros = Date.parse(done.json.result.cutoff) * 1000
    console.log(`archive run with two kills: ${((Date.now() - t0) / 1000).toFixed(1)} s, ${done.json.result.rows} rows, ${done.json.result.objects} objects, ${done.json.result.bytes} bytes`)
  })

  it('the database holds only the recent rows; the objects hold exactly the removed ones', async () => {
    assert.equal(sql(`SELECT count(*) FROM public.archive WHERE timestamp < ${cutoffMicros}`), '0')
    assert.equal(sql(`SELECT count(*) FROM public.archive WHERE txt LIKE 'real message %'`), '6', 'the real messages are recent: they stay')
    const [removed, want] = digest('archive_before', `timestamp < ${cutoffMicros}`).split('|')
    assert.equal(sql('SELECT count(*) FROM public.archive'), String(ROWS + 6 - Number(removed)))
    const lines = await objectLines()
    const ids = lines.map((l) => /[{,]"id":(\d+)[,}]/.exec(l)![1])
    assert.equal(new Set(ids).size, ids.length, 'no row exported twice')
    assert.deepEqual(rowsDigest(lines), {rows: Number(removed), digest: want})
    // Every run after kills is one run: its manifest lists each object once.
    const list = await imctl(['archive', 'list', '-c', c(), '--json'])
    assert.equal(list.json.result.runs.length, 1)
    assert.equal(list.json.result.rows, Number(removed))
    assert.equal(list.json.result.runs[0].deletedRows, Number(removed))
  })

  it('restores a month identical to the originals, served by MAM, and a second restore adds nothing', async () => {
    const from = new Date(cutoffMicros / 1000 - 150 * 86_400_000).toISOString().slice(0, 8) + '01'
    const to = new Date(Date.parse(`${from}T00:00:00Z`) + 32 * 86_400_000).toISOString().slice(0, 8) + '01'
    const month = `timestamp >= ${Date.parse(`${from}T00:00:00Z`) * 1000} AND timestamp < ${Date.parse(`${to}T00:00:00Z`) * 1000}`
    const last = new Date(Date.parse(`${to}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10)
    const want = digest('archive_before', month)
    const r = await imctl(['archive', 'restore', '--from', from, '--to', last, '-c', c(), '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.inserted, Number(want.split('|')[0]))
    console.log(`restored ${r.json.result.inserted} rows (${from}..${last}) in ${r.json.result.seconds} s`)
    assert.equal(digest('archive', month), want)
    const again = await imctl(['archive', 'restore', '--from', from, '--to', last, '-c', c(), '--json'])
    assert.deepEqual([again.json.result.inserted, again.json.result.alreadyPresent], [0, r.json.result.inserted])
    assert.equal(digest('archive', month), want)
    // alice reads that month and her recent messages through XMPP's message archive.
    const hers = sql(`SELECT txt FROM public.archive_before WHERE username = 'alice' AND server_host = '${DOMAIN}' AND ${month} ORDER BY timestamp`).split('\n')
    const recent = sql(`SELECT txt FROM public.archive_before WHERE username = 'alice' AND server_host = '${DOMAIN}' AND timestamp >= ${cutoffMicros} ORDER BY timestamp LIMIT 1`)
    const alice = await login(ws(), DOMAIN, 'alice', 'alice-password-123')
    try {
      // MAM pages oldest first: the restored month, then the first message that never left the database.
      const history = await archive(alice)
      assert.deepEqual(history.slice(0, hers.length + 1), [...hers, recent])
    } finally {
      await alice.stop()
    }
    const found = await imctl(['archive', 'search', '--user', `alice@${DOMAIN}`, '--from', from, '--to', last, '-c', c(), '--json'])
    assert.deepEqual(found.json.result.hits.map((h: {text: string}) => h.text), hers)
  })

  it('schedule writes a timer on this machine; health reports the last run', async () => {
    const units = mkdtempSync(join(tmpdir(), 'imctl-e2e-units-'))
    const s = await imctl(['archive', 'schedule', '--every', '1d', '--older-than', '90d', '--unit-dir', units, '-c', c(), '--json'])
    assert.equal(s.exitCode, 0, s.stdout + s.stderr)
    assert.match(readFileSync(join(units, `imctl-archive-${NAME}.service`), 'utf8'), /archive run --older-than 90d -c /)
    const h = await imctl(['health', '-c', c(), '--json'])
    const check = h.json.result.checks.find((x: {check: string}) => /message archive/.test(x.check))
    assert.equal(check.ok, true, JSON.stringify(check))
    assert.match(check.detail, /last run \S+ done .* scheduled every 1d/)
  })

  it('never prints a secret', () => {
    const text = transcript.join('\n')
    for (const s of sb.secrets) assert.ok(!text.includes(s), 'a secret appeared in imctl output')
  })
})
