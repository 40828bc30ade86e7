/**
 * MinIO erasure-coded over three sandbox hosts with two tmpfs drives each (6
 * drives, EC:3, write quorum 4), beside PostgreSQL, Redis and ejabberd. Drives on
 * the root filesystem are refused before anything changes; install converges;
 * health passes; a re-run changes nothing; each of imctl's keys reaches its own
 * bucket only; a stopped node leaves the cluster DEGRADED (exit 5) but writable;
 * install starts it again and health is green.
 *
 * Three hosts, not two: with two hosts of two drives a stopped node takes half of
 * the drives, and MinIO then has no write quorum (it needs 3 of 4).
 */
import assert from 'node:assert/strict'
import {createHash, randomBytes} from 'node:crypto'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client} from '@aws-sdk/client-s3'
import {parse} from 'yaml'
import {createSandbox, editConfig, imctl, transcript, type Sandbox} from './harness.js'

const DRIVES = ['/srv/minio/d1', '/srv/minio/d2']
const MINIO = 'minio:\n    hosts: [h1, h2, h3]\n    drives: [/srv/minio/d1, /srv/minio/d2]\n    buckets: [chat-media]\n'

type Check = {host: string; component: string; check: string; ok: boolean; degraded?: boolean; clusterLevel?: boolean; detail: string}

describe('MinIO erasure-coded over 3 hosts x 2 drives', {timeout: 600_000}, () => {
  let sb: Sandbox
  let c: string
  let keys: Record<string, string>
  const clients: S3Client[] = []

  /** A client of this machine's, straight to a node's S3 address on the sandbox network. */
  const s3 = (host: string, user: string): S3Client => {
    const address = sb.hosts.find((h) => h.name === host)!.address
    const secret = {'imctl-backup': keys.backup_secret, 'imctl-archive': keys.archive_secret, 'imctl-health': keys.health_secret}[user]!
    const client = new S3Client({endpoint: `http://${address}:9000`, forcePathStyle: true, region: 'us-east-1', credentials: {accessKeyId: user, secretAccessKey: secret}, maxAttempts: 1})
    clients.push(client)
    return client
  }
  const denied = async (what: Promise<unknown>) => {
    await assert.rejects(what, (e: {name?: string; Code?: string}) => (e.Code ?? e.name) === 'AccessDenied')
  }
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
  const minioChecks = (r: {json: {result?: {checks: Check[]}}}) => r.json.result!.checks.filter((x) => x.component === 'minio')

  before(async () => {
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
    sb = await createSandbox('e2e-minio', 3, ['--drives', DRIVES.join(',')])
    c = sb.config
    editConfig(c, (t) => `${t}  ${MINIO}`)
    const gen = await imctl(['secrets', 'generate', '-c', c, '--json'])
    assert.equal(gen.exitCode, 0, gen.stdout + gen.stderr)
    keys = (parse(readFileSync(join(sb.dir, 'e2e-minio.secrets.yaml'), 'utf8')) as {minio: Record<string, string>}).minio
    sb.secrets.push(...Object.values(keys))
  })

  after(async () => {
    for (const cl of clients) cl.destroy()
    await sb?.destroy()
  })

  it('refuses drives on the root filesystem before changing anything, and says how to fix it', async () => {
    // Given the same cluster with its drives as plain directories
    const rootDrives = join(sb.dir, 'root-drives.yaml')
    writeFileSync(rootDrives, readFileSync(c, 'utf8').replace('drives: [/srv/minio/d1, /srv/minio/d2]', 'drives: [/var/lib/minio/d1, /srv/minio/d2]'))
    sb.onHost('h2', 'mkdir -p /var/lib/minio/d1')
    // When installing
    const r = await imctl(['install', '-c', rootDrives, '--json'])
    // Then nothing was changed, and each bad drive is named with the fix
    assert.equal(r.exitCode, 2, r.stdout + r.stderr)
    const msg = r.json.error!.message
    assert.match(msg, /^nothing was changed: /)
    assert.match(msg, /h2: \/var\/lib\/minio\/d1 is not a filesystem of its own \(it is on the \S+ filesystem mounted at \/\): with 6 drives in all, MinIO refuses drives on the root filesystem/)
    assert.match(msg, /h1: \/var\/lib\/minio\/d1 is not a filesystem of its own \(it does not exist\)/)
    assert.match(msg, /Mount a disk there \(listed in \/etc\/fstab\), then run install again/)
    assert.doesNotMatch(msg, /\/srv\/minio\/d2 is not/)
    assert.equal(sb.onHost('h1', 'test -e /opt/imctl && echo present || echo absent').trim(), 'absent')
    sb.onHost('h2', 'rmdir /var/lib/minio/d1 /var/lib/minio')
  })

  it('installs the whole cluster, MinIO on every host, its buckets and keys through mc on h1', async () => {
    const r = await imctl(['install', '-c', c, '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.failed, 0, JSON.stringify(r.json.result.applied.filter((a: {status: string}) => a.status !== 'changed')))
    const whats: string[] = r.json.result.steps.map((s: {host: string; what: string}) => `${s.host}: ${s.what}`)
    for (const h of ['h1', 'h2', 'h3']) assert.ok(whats.includes(`${h}: restart imctl-minio`), whats.join('\n'))
    for (const b of ['imctl-backups', 'imctl-archive', 'imctl-health', 'chat-media']) assert.ok(whats.includes(`h1: create bucket ${b}`), whats.join('\n'))
    assert.ok(whats.includes('h1: set MinIO user imctl-backup (read, write, list and delete in imctl-backups only)'), whats.join('\n'))
    // Bound to the cluster address only, S3 and console.
    const h2 = sb.hosts[1]!.address.replace(/\./g, '\\.')
    const listening = sb.onHost('h2', 'ss -ltnH')
    assert.match(listening, new RegExp(`${h2}:9000\\b`))
    assert.match(listening, new RegExp(`${h2}:9001\\b`))
    assert.doesNotMatch(listening, /(0\.0\.0\.0|\*|\[::\]):900[01]\b/)
    // Secrets stay in root-only files; MinIO runs without the CI/CD mode that would skip its drive checks.
    assert.equal(sb.onHost('h3', 'stat -c "%U:%G %a" /etc/default/imctl-minio').trim(), 'root:root 600')
    assert.equal(sb.onHost('h1', 'stat -c "%U:%G %a" /etc/imctl/minio-mc/config.json').trim(), 'root:root 600')
    for (const h of ['h1', 'h2', 'h3']) {
      const env = sb.onHost(h, 'runuser -u minio-user -- cat /proc/$(pidof minio)/environ | tr "\\0" "\\n" | cut -d= -f1')
      assert.doesNotMatch(env, /^(CI|MINIO_CI_CD)$/m, `${h}: ${env}`)
      assert.match(sb.onHost(h, 'ps -o args= -C minio'), /--address \S+:9000 --console-address \S+:9001 http:\/\//)
      assert.doesNotMatch(sb.onHost(h, 'ps -o args= -C minio,mc'), new RegExp(Object.values(keys).join('|')))
    }
  })

  it('health passes: every node live, write quorum, an object put, read back and deleted', async () => {
    const r = await imctl(['health', '-c', c, '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.status, 'healthy')
    const checks = minioChecks(r)
    assert.deepEqual(checks.filter((x) => /health\/live/.test(x.check)).map((x) => [x.host, x.ok]), [['h1', true], ['h2', true], ['h3', true]])
    assert.ok(checks.find((x) => /write quorum/.test(x.check) && x.clusterLevel)?.ok, JSON.stringify(checks))
    const trip = checks.find((x) => /put, get and delete/.test(x.check))!
    assert.ok(trip.ok && trip.clusterLevel, JSON.stringify(trip))
    assert.match(trip.detail, /1024 KiB put, read back \(sha256 matches\) and deleted through h1/)
  })

  it('a second install changes nothing', async () => {
    const r = await imctl(['install', '-c', c, '--json'])
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.deepEqual(r.json.result.steps.map((s: {host: string; what: string}) => `${s.host}: ${s.what}`), [])
    assert.equal(r.json.result.blockers.length, 0)
  })

  it('each key reaches its own bucket only, and objects are striped over the tmpfs drives of every host', async () => {
    const backup = s3('h2', 'imctl-backup')
    const body = randomBytes(2 * 1024 * 1024)
    await backup.send(new PutObjectCommand({Bucket: 'imctl-backups', Key: 'e2e/set.bin', Body: body}))
    const back = await backup.send(new GetObjectCommand({Bucket: 'imctl-backups', Key: 'e2e/set.bin'}))
    assert.equal(sha(await back.Body!.transformToByteArray()), sha(body))
    const listed = await backup.send(new ListObjectsV2Command({Bucket: 'imctl-backups', Prefix: 'e2e/'}))
    assert.deepEqual(listed.Contents?.map((o) => o.Key), ['e2e/set.bin'])
    // One shard per drive: 6 drives on 3 hosts.
    const shards = ['h1', 'h2', 'h3'].map((h) => Number(sb.onHost(h, `find ${DRIVES.join(' ')} -path '*imctl-backups/e2e/set.bin/*/part.1' | wc -l`).trim()))
    assert.deepEqual(shards, [2, 2, 2])

    // The backup key cannot read, list or write the archive, nor touch the other buckets.
    await denied(backup.send(new GetObjectCommand({Bucket: 'imctl-archive', Key: 'anything'})))
    await denied(backup.send(new ListObjectsV2Command({Bucket: 'imctl-archive'})))
    await denied(backup.send(new PutObjectCommand({Bucket: 'imctl-archive', Key: 'x', Body: 'x'})))
    await denied(backup.send(new PutObjectCommand({Bucket: 'chat-media', Key: 'x', Body: 'x'})))
    // The archive key cannot read the backups; the health key cannot write the archive.
    await denied(s3('h3', 'imctl-archive').send(new GetObjectCommand({Bucket: 'imctl-backups', Key: 'e2e/set.bin'})))
    await denied(s3('h1', 'imctl-health').send(new PutObjectCommand({Bucket: 'imctl-archive', Key: 'x', Body: 'x'})))
    await s3('h3', 'imctl-archive').send(new PutObjectCommand({Bucket: 'imctl-archive', Key: 'e2e/a', Body: 'a'}))
    await backup.send(new DeleteObjectCommand({Bucket: 'imctl-backups', Key: 'e2e/set.bin'}))
  })

  it('a stopped node leaves the cluster DEGRADED (exit 5) and still writable', async () => {
    // Given MinIO stopped on h3 behind imctl's back
    sb.onHost('h3', 'systemctl stop imctl-minio')
    // When health runs
    const r = await imctl(['health', '-c', c, '--json'])
    // Then the node's checks are degraded, the cluster's pass
    assert.equal(r.exitCode, 5, r.stdout + r.stderr)
    assert.equal(r.json.result.status, 'degraded')
    const checks = minioChecks(r)
    const degraded = checks.filter((x) => x.degraded).map((x) => `${x.host}: ${x.check}`)
    assert.deepEqual(degraded, ['h3: systemd unit imctl-minio', 'h3: MinIO answers on ' + sb.hosts[2]!.address + ':9000 (/minio/health/live)'])
    assert.ok(checks.filter((x) => x.clusterLevel).every((x) => x.ok), JSON.stringify(checks))
    // And S3 clients still write and read (4 of 6 drives: write quorum holds)
    const backup = s3('h1', 'imctl-backup')
    const body = randomBytes(512 * 1024)
    await backup.send(new PutObjectCommand({Bucket: 'imctl-backups', Key: 'e2e/while-degraded.bin', Body: body}))
    const back = await backup.send(new GetObjectCommand({Bucket: 'imctl-backups', Key: 'e2e/while-degraded.bin'}))
    assert.equal(sha(await back.Body!.transformToByteArray()), sha(body))
  })

  it('install starts it again, and health is green', async () => {
    const fix = await imctl(['install', '-c', c, '--json'])
    assert.equal(fix.exitCode, 0, fix.stdout + fix.stderr)
    assert.deepEqual(fix.json.result.steps.map((s: {host: string; what: string; why: string}) => `${s.host}: ${s.what} (${s.why})`), ['h3: start imctl-minio (not running)'])
    // install returned once the node served with the others again: health is green at once.
    const well = await imctl(['health', '-c', c, '--json'])
    assert.equal(well.exitCode, 0, well.stdout)
    assert.equal(well.json.result.status, 'healthy')
    // The object written while h3 was down reads back through h3. Right after rejoining, h3
    // once answered NoSuchKey for it (MinIO heals it onto h3's drives then): bounded retries.
    const fromH3 = s3('h3', 'imctl-backup')
    let size = -1
    for (let i = 0; i < 10 && size < 0; i++) {
      try {
        const got = await fromH3.send(new GetObjectCommand({Bucket: 'imctl-backups', Key: 'e2e/while-degraded.bin'}))
        size = (await got.Body!.transformToByteArray()).length
      } catch (e) {
        if ((e as {name?: string}).name !== 'NoSuchKey' || i === 9) throw e
        await new Promise((res) => setTimeout(res, 1000))
      }
    }
    assert.equal(size, 512 * 1024)
  })

  it('never prints a secret', () => {
    const all = transcript.join('\n') + readFileSync(c, 'utf8')
    for (const s of sb.secrets) assert.ok(!all.includes(s), 'a secret value appeared in imctl output or cluster.yaml')
  })
})
