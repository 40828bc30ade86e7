/**
 * Backups into an S3 endpoint outside the cluster, and `verify --deep` over every
 * store. A 1-host cluster with PostgreSQL, Redis, ejabberd, single-node MinIO and
 * Kafka is seeded (users, Redis keys, objects, a topic with a group's committed
 * offsets); a separate MinIO run by this test on 127.0.0.1 with TLS (its own
 * self-signed certificate) stands for a company's S3. Then: the set goes there
 * with the keys in a 0600 file; a key file others may read and an untrusted
 * certificate are refused; list reads it with the keys from the environment;
 * `verify --deep` restores all five stores into a throwaway sandbox and finds
 * them equal to the set, none left out; one byte flipped in the external S3 is
 * named by verify; restore in place and prune read the set there too.
 */
import assert from 'node:assert/strict'
import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {Agent} from 'node:https'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {CreateBucketCommand, ListBucketsCommand, S3Client} from '@aws-sdk/client-s3'
import {parse} from 'yaml'
import {loadManifest} from '../../src/config/manifest.js'
import {artifactCacheDir} from '../../src/ops/artifacts.js'
import {createSandbox, editConfig, imctl, transcript, type Sandbox} from './harness.js'
import {getObject, openStores, putObject, seedKafka, seedObjects, type StoreAccess} from './stores.js'

const NAME = 'dv1'
const PORT = 47201
const ENDPOINT = `https://127.0.0.1:${PORT}`
const BUCKET = 'company-backups'
const TO = `s3://${BUCKET}/imctl`

describe('backup to an external S3 endpoint, and verify --deep over every store', {timeout: 900_000}, () => {
  let sb: Sandbox
  let stores: StoreAccess | undefined
  let minio: ChildProcess | undefined
  let external: S3Client
  const work = mkdtempSync(join(tmpdir(), 'imctl-e2e-dv-'))
  const key = join(work, 'backup-key')
  const ca = join(work, 'certs', 'public.crt')
  const creds = join(work, 's3-credentials')
  const s3Keys = {user: 'dv-backup-writer', password: `dv-${Math.random().toString(36).slice(2)}-secret`}
  let setId = ''
  let expected = {objects: 0, tables: 0}

  const c = () => sb.config
  const s3Args = (...extra: string[]) => ['--to', TO, '--s3-endpoint', ENDPOINT, '--s3-ca', ca, '-c', c(), '--json', ...extra]

  /** A MinIO outside the cluster: the artifact cache's binary, TLS with a self-signed certificate for 127.0.0.1, its own data dir. */
  async function startExternalS3(): Promise<void> {
    const version = loadManifest('ejabberd-23.01-debian12').artifacts!.minio!.version
    const bin = join(artifactCacheDir(), `minio-${version}`, 'minio')
    mkdirSync(join(work, 'certs'), {recursive: true})
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(work, 'certs', 'private.key'), '-out', ca], {stdio: 'ignore'})
    minio = spawn(bin, ['server', '--quiet', '--address', `127.0.0.1:${PORT}`, '--console-address', `127.0.0.1:${PORT + 1}`, '--certs-dir', join(work, 'certs'), join(work, 'data')], {
      env: {...process.env, MINIO_ROOT_USER: s3Keys.user, MINIO_ROOT_PASSWORD: s3Keys.password},
      stdio: 'ignore',
    })
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
    external = new S3Client({endpoint: ENDPOINT, forcePathStyle: true, region: 'us-east-1', credentials: {accessKeyId: s3Keys.user, secretAccessKey: s3Keys.password}, requestHandler: {httpsAgent: new Agent({ca: readFileSync(ca)})}})
    const deadline = Date.now() + 30_000
    for (;;) {
      try {
        await external.send(new ListBucketsCommand({}))
        break
      } catch (e) {
        if (Date.now() > deadline || minio.exitCode !== null) throw new Error(`the external MinIO did not come up: ${(e as Error).message}`)
        await new Promise((r) => setTimeout(r, 300))
      }
    }
    await external.send(new CreateBucketCommand({Bucket: BUCKET}))
  }

  before(async () => {
    const s3Up = startExternalS3()
    sb = await createSandbox(NAME, 1)
    editConfig(c(), (t) => `${t}  kafka:\n    hosts: [h1]\n  minio:\n    hosts: [h1]\n    buckets: [chat-media]\n`)
    assert.equal((await imctl(['secrets', 'generate', '-c', c(), '--json'])).exitCode, 0)
    const r = await imctl(['install', '-c', c(), '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    await s3Up
    stores = await openStores(sb.hosts[0]!.address, join(sb.dir, `${NAME}.secrets.yaml`))
    writeFileSync(creds, `# the external S3's keys\n[default]\naws_access_key_id = ${s3Keys.user}\naws_secret_access_key = ${s3Keys.password}\n`, {mode: 0o600})
  })

  after(async () => {
    await stores?.close()
    external?.destroy()
    if (minio && minio.exitCode === null) minio.kill('SIGTERM')
    await sb?.destroy()
    rmSync(work, {recursive: true, force: true})
  })

  it('backs up every store into the external S3, with its keys from a 0600 file, never from argv', async () => {
    // Given users, Redis keys, objects, and a topic with a group's committed offsets
    for (const u of ['alice', 'bob']) sb.onHost('h1', `printf %s '${u}-password-123' | (read p; ejabberdctl register ${u} ${NAME}.imctl.test "$p")`)
    const redisAuth = (parse(readFileSync(join(sb.dir, `${NAME}.secrets.yaml`), 'utf8')) as {redis: {password: string}}).redis.password
    sb.onHost('h1', `export REDISCLI_AUTH='${redisAuth}'; for i in $(seq 1 12); do redis-cli --no-auth-warning SET dv:$i value-$i >/dev/null; done`)
    await seedObjects(stores!.s3)
    await seedKafka(stores!)

    // A key file others may read is refused before anything is contacted
    chmodSync(creds, 0o644)
    const loose = await imctl(['backup', 'create', ...s3Args('--key', key, '--s3-credentials', creds)])
    assert.equal(loose.exitCode, 2, loose.stdout)
    assert.match(loose.json.error!.message, /has mode 0644: others may read the secret/)
    chmodSync(creds, 0o600)
    // A certificate nobody vouched for is refused: no --s3-ca, so Node's own CAs, which do not know it
    const untrusted = await imctl(['backup', 'list', '--to', TO, '--s3-endpoint', ENDPOINT, '--s3-credentials', creds, '-c', c(), '--json'])
    assert.equal(untrusted.exitCode, 2, untrusted.stdout)
    assert.match(untrusted.json.error!.nextSteps!.join(' '), /--s3-ca/)

    const r = await imctl(['backup', 'create', '--kafka-data', ...s3Args('--key', key, '--s3-credentials', creds)])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    setId = r.json.result.id
    assert.equal(r.json.result.dir, `${TO}/${NAME}/${setId}`)
    const names = r.json.result.artifacts.map((a: {name: string}) => a.name)
    const counts = (n: string) => r.json.result.artifacts.find((a: {name: string}) => a.name === n)?.counts
    expected = {objects: counts('minio-index.jsonl.gz.enc').objects, tables: Object.keys(r.json.result.artifacts.find((a: {component: string; counts?: object}) => a.component === 'postgresql' && a.counts)?.counts ?? {}).length}
    assert.ok(expected.objects >= 6 && expected.tables > 30, JSON.stringify(expected))
    for (const n of ['minio-objects.tar.enc', 'minio-index.jsonl.gz.enc', 'kafka-topics.json.gz.enc', 'kafka-records.jsonl.gz.enc']) assert.ok(names.includes(n), names.join(', '))
  })

  it('list and verify read the set from the external S3, with the keys from the environment', async () => {
    const env = {AWS_ACCESS_KEY_ID: s3Keys.user, AWS_SECRET_ACCESS_KEY: s3Keys.password}
    const list = await imctl(['backup', 'list', ...s3Args()], {env})
    assert.equal(list.exitCode, 0, list.stdout + list.stderr)
    assert.deepEqual(list.json.result.sets.map((s: {id: string; complete: boolean}) => [s.id, s.complete]), [[setId, true]])
    const v = await imctl(['backup', 'verify', setId, ...s3Args('--key', key)], {env})
    assert.equal(v.exitCode, 0, v.stdout)
  })

  it('verify --deep restores every store into a throwaway sandbox and finds each equal to the set, none left out', async () => {
    const t0 = Date.now()
    const r = await imctl(['backup', 'verify', setId, '--deep', ...s3Args('--key', key, '--s3-credentials', creds)])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const d = r.json.result.deep
    assert.deepEqual(
      {healthy: d.healthy, redis: d.redisKeysCompared, objects: d.objectsCompared, topics: d.topicsCompared, groups: d.groupsCompared, records: d.recordsCompared, notRestored: d.storesNotRestored},
      {healthy: true, redis: true, objects: expected.objects, topics: 2, groups: 1, records: 39, notRestored: []},
    )
    assert.equal(d.tablesCompared, expected.tables)
    assert.equal(execFileSync('podman', ['ps', '-aq', '--filter', `name=imctl-sbx-${d.sandbox}-`], {encoding: 'utf8'}).trim(), '')
    console.log(`# verify --deep with MinIO and Kafka: ${Math.round((Date.now() - t0) / 1000)} s`)
  })

  it('one byte flipped in the external S3 is named by verify', async () => {
    const objectKey = `imctl/${NAME}/${setId}/kafka-topics.json.gz.enc`
    const good = await getObject(external, BUCKET, objectKey)
    const bad = Buffer.from(good)
    bad[bad.length >> 1] = bad[bad.length >> 1]! ^ 1
    await putObject(external, BUCKET, objectKey, bad)
    const r = await imctl(['backup', 'verify', setId, ...s3Args('--key', key, '--s3-credentials', creds)])
    assert.equal(r.exitCode, 1, r.stdout)
    assert.deepEqual(r.json.result.problems.map((p: {artifact: string}) => p.artifact), ['kafka-topics.json.gz.enc'])
    await putObject(external, BUCKET, objectKey, good)
  })

  it('restore and prune work from the external S3 too', async () => {
    // Given a key lost since the backup
    const redisAuth = (parse(readFileSync(join(sb.dir, `${NAME}.secrets.yaml`), 'utf8')) as {redis: {password: string}}).redis.password
    const get = () => sb.onHost('h1', `REDISCLI_AUTH='${redisAuth}' redis-cli --no-auth-warning GET dv:1`).trim()
    sb.onHost('h1', `REDISCLI_AUTH='${redisAuth}' redis-cli --no-auth-warning DEL dv:1`)
    assert.equal(get(), '')
    // When restoring in place from the external S3, then it is back and the cluster healthy
    const r = await imctl(['backup', 'restore', setId, ...s3Args('--key', key, '--s3-credentials', creds)])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.healthy, true)
    assert.equal(get(), 'value-1')
    const p = await imctl(['backup', 'prune', '--keep', 'daily=1', '--dry-run', ...s3Args('--key', key, '--s3-credentials', creds)])
    assert.equal(p.exitCode, 0, p.stdout + p.stderr)
    assert.deepEqual({kept: p.json.result.kept, verified: p.json.result.verified, removed: p.json.result.removed}, {kept: [setId], verified: setId, removed: []})
  })

  it('never prints a secret', () => {
    const text = transcript.join('\n')
    const secrets = [...sb.secrets, s3Keys.password, readFileSync(key, 'utf8').trim()]
    for (const s of secrets) assert.ok(!text.includes(s), 'a secret appeared in imctl output')
  })
})
