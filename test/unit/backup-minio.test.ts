import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {describe, it} from 'node:test'
import type {S3Client} from '@aws-sdk/client-s3'
import {ObjectWriter} from '../../src/components/minio/s3.js'
import type {MinioS3} from '../../src/components/minio/s3.js'
import {dumpObjects, indexText, readIndex, restoreObjects, KEPT_PREFIX} from '../../src/ops/backup/minio.js'
import {parseS3Url, s3Store} from '../../src/ops/backup/store.js'

interface Stored {
  body: Buffer
  contentType?: string
  metadata: Record<string, string>
}

/** An S3 server in memory that records every call: enough of S3 for imctl's backups. */
class FakeS3 {
  buckets = new Map<string, Map<string, Stored>>()
  calls: string[] = []
  uploads = new Map<string, {bucket: string; key: string; parts: Buffer[]; meta: Omit<Stored, 'body'>}>()

  get client(): S3Client {
    return this as unknown as S3Client
  }

  private bucket(name: string) {
    const b = this.buckets.get(name)
    if (!b) throw Object.assign(new Error('NoSuchBucket'), {$metadata: {httpStatusCode: 404}})
    return b
  }

  async send(cmd: {constructor: {name: string}; input: any}): Promise<any> {
    const name = cmd.constructor.name.replace(/Command$/, '')
    const i = cmd.input
    this.calls.push(`${name} ${i.Bucket ?? ''}${i.Key ? `/${i.Key}` : ''}${i.PartNumber ? ` #${i.PartNumber}` : ''}`)
    const notFound = () => Object.assign(new Error('NotFound'), {$metadata: {httpStatusCode: 404}})
    switch (name) {
      case 'ListBuckets':
        return {Buckets: [...this.buckets.keys()].map((Name) => ({Name}))}
      case 'HeadBucket':
        return this.bucket(i.Bucket), {}
      case 'CreateBucket':
        this.buckets.set(i.Bucket, new Map())
        return {}
      case 'ListObjectsV2': {
        const prefix: string = i.Prefix ?? ''
        const keys = [...this.bucket(i.Bucket).keys()].filter((k) => k.startsWith(prefix)).sort()
        if (i.Delimiter) {
          const prefixes = [...new Set(keys.filter((k) => k.slice(prefix.length).includes('/')).map((k) => prefix + k.slice(prefix.length).split('/')[0] + '/'))]
          return {CommonPrefixes: prefixes.map((Prefix) => ({Prefix})), Contents: keys.filter((k) => !k.slice(prefix.length).includes('/')).map((Key) => ({Key, Size: 0}))}
        }
        const start = i.ContinuationToken ? Number(i.ContinuationToken) : 0
        const page = keys.slice(start, start + 2)
        const more = start + 2 < keys.length
        return {Contents: page.map((Key) => ({Key, Size: this.bucket(i.Bucket).get(Key)!.body.length})), IsTruncated: more, NextContinuationToken: more ? String(start + 2) : undefined}
      }
      case 'DeleteObjects':
        for (const o of i.Delete.Objects) this.bucket(i.Bucket).delete(o.Key)
        return {}
      case 'HeadObject':
      case 'GetObject': {
        const o = this.bucket(i.Bucket).get(i.Key)
        if (!o) throw notFound()
        return {ContentLength: o.body.length, ETag: `"${createHash('md5').update(o.body).digest('hex')}"`, ContentType: o.contentType, Metadata: o.metadata, ...(name === 'GetObject' ? {Body: Readable.from([o.body])} : {})}
      }
      case 'PutObject':
        this.bucket(i.Bucket).set(i.Key, {body: Buffer.from(i.Body), ...(i.ContentType ? {contentType: i.ContentType} : {}), metadata: i.Metadata ?? {}})
        return {}
      case 'CopyObject': {
        const [b, ...k] = (i.CopySource as string).split('/')
        const o = this.bucket(b!).get(k.map(decodeURIComponent).join('/'))!
        this.bucket(i.Bucket).set(i.Key, {...o})
        return {}
      }
      case 'CreateMultipartUpload': {
        const id = `u${this.uploads.size + 1}`
        this.uploads.set(id, {bucket: i.Bucket, key: i.Key, parts: [], meta: {...(i.ContentType ? {contentType: i.ContentType} : {}), metadata: i.Metadata ?? {}}})
        return {UploadId: id}
      }
      case 'UploadPart':
        this.uploads.get(i.UploadId)!.parts[i.PartNumber - 1] = Buffer.from(i.Body)
        return {ETag: `"p${i.PartNumber}"`}
      case 'CompleteMultipartUpload': {
        const u = this.uploads.get(i.UploadId)!
        assert.deepEqual(i.MultipartUpload.Parts.map((p: {ETag: string}) => p.ETag), u.parts.map((_, n) => `"p${n + 1}"`))
        this.bucket(u.bucket).set(u.key, {body: Buffer.concat(u.parts), ...u.meta})
        this.uploads.delete(i.UploadId)
        return {}
      }
      case 'AbortMultipartUpload':
        this.uploads.delete(i.UploadId)
        return {}
      default:
        throw new Error(`FakeS3: ${name} not handled`)
    }
  }
}

const MiB = 1024 * 1024
/** n bytes that differ from part to part, so a part out of order would show. */
const bytes = (n: number, seed: number) => {
  const b = Buffer.alloc(n, seed)
  for (let i = 0; i < n; i += 4096) b.writeUInt32BE(i ^ seed, i)
  return b
}
/** A bucket map as text: key, sha256, content type, metadata; easy to compare and to read. */
const listing = (s3: FakeS3) =>
  [...s3.buckets].map(([b, objects]) => `${b}: ${[...objects].sort().map(([k, o]) => `${k} ${createHash('sha256').update(o.body).digest('hex').slice(0, 12)} ${o.contentType ?? '-'} ${JSON.stringify(o.metadata)}`).join(', ')}`)

describe('ObjectWriter: a stream stored as one object', () => {
  it('puts a body below one part with a single PUT, headers included', async () => {
    const s3 = new FakeS3()
    s3.buckets.set('b', new Map())
    await pipeline(Readable.from([Buffer.from('small')]), new ObjectWriter(s3.client, 'b', 'k', {contentType: 'text/plain', metadata: {owner: 'alice'}}))
    assert.deepEqual(s3.calls, ['PutObject b/k'])
    assert.deepEqual(s3.buckets.get('b')!.get('k'), {body: Buffer.from('small'), contentType: 'text/plain', metadata: {owner: 'alice'}})
  })

  it('streams a larger body as a multipart upload of 8 MiB parts, in order', async () => {
    const s3 = new FakeS3()
    s3.buckets.set('b', new Map())
    const body = bytes(17 * MiB + 5, 1)
    await pipeline(Readable.from([body.subarray(0, 3 * MiB), body.subarray(3 * MiB, 16 * MiB + 1), body.subarray(16 * MiB + 1)]), new ObjectWriter(s3.client, 'b', 'big'))
    assert.deepEqual(s3.calls, ['CreateMultipartUpload b/big', 'UploadPart b/big #1', 'UploadPart b/big #2', 'UploadPart b/big #3', 'CompleteMultipartUpload b/big'])
    assert.ok(s3.buckets.get('b')!.get('big')!.body.equals(body))
  })

  it('aborts the upload when its source fails, and no object appears', async () => {
    const s3 = new FakeS3()
    s3.buckets.set('b', new Map())
    async function* failing() {
      yield bytes(9 * MiB, 2)
      throw new Error('source broke')
    }
    await assert.rejects(pipeline(Readable.from(failing()), new ObjectWriter(s3.client, 'b', 'cut')), /source broke/)
    await new Promise((r) => setTimeout(r, 10))
    assert.equal(s3.calls.at(-1), 'AbortMultipartUpload b/cut')
    assert.equal(s3.buckets.get('b')!.has('cut'), false)
    assert.equal(s3.uploads.size, 0)
  })
})

describe('MinIO objects: dump to a tar with an index, restore without losing anything', () => {
  const seed = () => {
    const s3 = new FakeS3()
    s3.buckets.set('chat-media', new Map<string, Stored>([
      ['a/hello.txt', {body: Buffer.from('hello\n'), contentType: 'text/plain', metadata: {owner: 'alice'}}],
      ['big.bin', {body: bytes(9 * MiB, 3), metadata: {}}],
      ['folder/', {body: Buffer.alloc(0), metadata: {}}],
      [`ü/${'x'.repeat(200)}`, {body: Buffer.from('long key'), contentType: 'image/jpeg', metadata: {}}],
    ]))
    s3.buckets.set('empty', new Map())
    return s3
  }
  const dump = async (s3: FakeS3) => {
    const d = dumpObjects(s3.client, ['chat-media', 'empty'])
    const chunks: Buffer[] = []
    for await (const c of d.stream) chunks.push(c as Buffer)
    return {tar: Buffer.concat(chunks), index: await readIndex(Readable.from([indexText(d.index)])), counts: d.counts}
  }

  it('puts every object of every bucket in the tar and counts objects and bytes per bucket', async () => {
    const {index, counts} = await dump(seed())
    assert.deepEqual(index.buckets, ['chat-media', 'empty'])
    assert.deepEqual(counts, {buckets: 2, objects: 4, bytes: 9 * MiB + 14, 'chat-media.objects': 4, 'chat-media.bytes': 9 * MiB + 14, 'empty.objects': 0, 'empty.bytes': 0})
    const hello = [...index.objects.values()].find((o) => o.key === 'a/hello.txt')!
    assert.deepEqual({entry: hello.entry, sha256: hello.sha256, headers: hello.headers}, {entry: 'objects/00000001', sha256: createHash('sha256').update('hello\n').digest('hex'), headers: {contentType: 'text/plain', metadata: {owner: 'alice'}}})
  })

  it('restores into an empty MinIO: buckets made, every object back with its headers', async () => {
    const {tar, index} = await dump(seed())
    const target = new FakeS3()
    const r = await restoreObjects(target.client, Readable.from([tar]), index, 'tag1')
    assert.deepEqual(r, {bucketsCreated: ['chat-media', 'empty'], restored: 4, unchanged: 0, bytes: 9 * MiB + 14, keptAside: []})
    assert.deepEqual(listing(target), listing(seed()))
  })

  it('leaves equal objects alone and copies an object with other content aside before putting it back', async () => {
    const {tar, index} = await dump(seed())
    const target = seed()
    target.buckets.get('chat-media')!.set('a/hello.txt', {body: Buffer.from('changed'), contentType: 'text/plain', metadata: {}})
    target.buckets.get('chat-media')!.delete('big.bin')
    target.buckets.get('chat-media')!.set('only-here', {body: Buffer.from('kept'), metadata: {}})
    const r = await restoreObjects(target.client, Readable.from([tar]), index, 'tag2')
    assert.deepEqual(r.keptAside, [`chat-media/${KEPT_PREFIX}tag2/a/hello.txt`])
    assert.deepEqual({restored: r.restored, unchanged: r.unchanged}, {restored: 2, unchanged: 2})
    const media = target.buckets.get('chat-media')!
    assert.equal(media.get(`${KEPT_PREFIX}tag2/a/hello.txt`)!.body.toString(), 'changed')
    assert.equal(media.get('a/hello.txt')!.body.toString(), 'hello\n')
    assert.equal(media.get('only-here')!.body.toString(), 'kept')
    // A second run finds everything in place
    const again = await restoreObjects(target.client, Readable.from([tar]), index, 'tag3')
    assert.deepEqual({restored: again.restored, unchanged: again.unchanged, kept: again.keptAside}, {restored: 0, unchanged: 4, kept: []})
  })
})

describe('backup sets in S3', () => {
  it('reads s3://bucket/prefix', () => {
    assert.deepEqual(parseS3Url('s3://imctl-backups'), {bucket: 'imctl-backups', prefix: ''})
    assert.deepEqual(parseS3Url('s3://imctl-backups/nightly/eu/'), {bucket: 'imctl-backups', prefix: 'nightly/eu'})
    assert.equal(parseS3Url('/srv/backups'), null)
  })

  it('stores artifacts under prefix/cluster/id, lists sets with their sizes, reads and removes them', async () => {
    const fake = new FakeS3()
    fake.buckets.set('imctl-backups', new Map())
    let closed = 0
    const session = {client: fake.client, target: 'h1:9000', close: async () => void closed++} as unknown as MinioS3
    const store = s3Store(session, 'imctl-backups', 'nightly/chat')
    assert.equal(store.root, 's3://imctl-backups/nightly/chat')
    assert.equal(await store.has('20261126T170510Z'), false)
    for (const [name, body] of [['a.enc', 'aaaa'], ['manifest.json', '{}']] as const) {
      const w = await store.writer('20261126T170510Z', name)
      await pipeline(Readable.from([Buffer.from(body)]), w.sink)
      await w.commit()
    }
    assert.deepEqual([...fake.buckets.get('imctl-backups')!.keys()].sort(), ['nightly/chat/20261126T170510Z/a.enc', 'nightly/chat/20261126T170510Z/manifest.json'])
    assert.equal(await store.has('20261126T170510Z'), true)
    assert.deepEqual(await store.list(), [{id: '20261126T170510Z', files: [{name: 'a.enc', size: 4}, {name: 'manifest.json', size: 2}]}])
    const chunks: Buffer[] = []
    for await (const c of (await store.read('20261126T170510Z', 'a.enc'))!) chunks.push(c as Buffer)
    assert.equal(Buffer.concat(chunks).toString(), 'aaaa')
    assert.equal(await store.read('20261126T170510Z', 'missing.enc'), null)
    await store.remove('20261126T170510Z')
    assert.deepEqual(await store.list(), [])
    await store.close()
    assert.equal(closed, 1)
  })
})
