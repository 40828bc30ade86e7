import {createInterface} from 'node:readline'
import {Readable, Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import type {S3Client} from '@aws-sdk/client-s3'
import * as tar from 'tar-stream'
import {ROOT_USER} from '../../components/minio/index.js'
import {copyObject, ensureBucket, getObjectStream, headObject, listBuckets, listObjects, ObjectWriter, openClusterS3, s3ErrorText, type MinioS3, type ObjectHeaders} from '../../components/minio/s3.js'
import type {HostConnection} from '../../transport/types.js'
import type {ClusterModel} from '../cluster.js'
import {HashTap} from './crypto.js'

export const MINIO_OBJECTS = 'minio-objects.tar.enc'
export const MINIO_INDEX = 'minio-index.jsonl.gz.enc'
/**
 * Not backed up: it holds the backup sets themselves. Each set would carry every
 * earlier one, growing without end, and restoring old sets over the sets is of no use.
 */
export const NOT_BACKED_UP = ['imctl-backups']
/** Where a restore keeps an object it would overwrite with other content: `<prefix><restore tag>/<key>` in the same bucket. */
export const KEPT_PREFIX = '.imctl-before-restore/'

export type MinioIndexLine = {type: 'bucket'; name: string} | MinioObjectRecord

/** One object in the index: where its bytes are in the tar, what it is, and their sha256. */
export interface MinioObjectRecord {
  type: 'object'
  entry: string
  bucket: string
  key: string
  size: number
  sha256: string
  etag: string
  headers: ObjectHeaders
}

/** imctl's root session on the cluster's MinIO (the root user sees every bucket). */
export function openMinioAsRoot(model: ClusterModel, conns: Map<string, HostConnection>): Promise<MinioS3> {
  return openClusterS3(model, conns, {accessKeyId: ROOT_USER, secretAccessKey: model.secrets.minio!.root_password}, 'imctl-health')
}

export async function bucketsToBackUp(client: S3Client): Promise<string[]> {
  return (await listBuckets(client)).filter((b) => !NOT_BACKED_UP.includes(b))
}

/** The object's name and headers in its tar entry's pax header, so the tar also says what each entry is. */
function paxOf(bucket: string, key: string, h: ObjectHeaders): Record<string, string> {
  const pax: Record<string, string> = {'IMCTL.bucket': bucket, 'IMCTL.key': key}
  if (h.contentType) pax['IMCTL.content-type'] = h.contentType
  for (const [k, v] of Object.entries(h.metadata)) pax[`IMCTL.meta.${k}`] = v
  return pax
}

export interface MinioDump {
  /** The tar: every object as an entry `objects/NNNNNNNN` with its bucket, key and headers in pax records. */
  stream: Readable
  /** Filled while the tar is read: complete once the stream has ended. */
  index: MinioIndexLine[]
  counts: Record<string, number>
}

/**
 * Every object of the given buckets as one tar stream, read with GET one after the
 * other (no temporary copy), each hashed on its way; an object deleted between the
 * listing and its GET is left out.
 */
export function dumpObjects(client: S3Client, buckets: string[]): MinioDump {
  const pack = tar.pack()
  const index: MinioIndexLine[] = buckets.map((name) => ({type: 'bucket', name}))
  const counts: Record<string, number> = {buckets: buckets.length, objects: 0, bytes: 0}
  const run = async () => {
    let seq = 0
    for (const bucket of buckets) {
      counts[`${bucket}.objects`] = 0
      counts[`${bucket}.bytes`] = 0
      for await (const o of listObjects(client, bucket)) {
        let got: Awaited<ReturnType<typeof getObjectStream>>
        try {
          got = await getObjectStream(client, bucket, o.key)
        } catch (e) {
          if ((e as {$metadata?: {httpStatusCode?: number}}).$metadata?.httpStatusCode === 404) continue
          throw new Error(`GET ${bucket}/${o.key}: ${s3ErrorText(e)}`)
        }
        const entry = `objects/${String(++seq).padStart(8, '0')}`
        const {body, size, etag, lastModified, ...headers} = got
        const tap = new HashTap()
        await pipeline(body, tap, pack.entry({name: entry, size, mode: 0o600, mtime: lastModified ?? new Date(0), pax: paxOf(bucket, o.key, headers)}) as unknown as Writable)
        index.push({type: 'object', entry, bucket, key: o.key, size, sha256: tap.hash.digest('hex'), etag, headers})
        counts.objects! += 1
        counts.bytes! += size
        counts[`${bucket}.objects`]! += 1
        counts[`${bucket}.bytes`]! += size
      }
    }
    pack.finalize()
  }
  run().catch((e) => pack.destroy(e as Error))
  return {stream: pack as unknown as Readable, index, counts}
}

export function indexText(index: MinioIndexLine[]): string {
  return index.map((l) => JSON.stringify(l)).join('\n') + '\n'
}

export async function readIndex(stream: NodeJS.ReadableStream): Promise<{buckets: string[]; objects: Map<string, MinioObjectRecord>}> {
  const buckets: string[] = []
  const objects = new Map<string, MinioObjectRecord>()
  for await (const line of createInterface({input: stream, crlfDelay: Infinity})) {
    if (!line) continue
    const l = JSON.parse(line) as MinioIndexLine
    if (l.type === 'bucket') buckets.push(l.name)
    else objects.set(l.entry, l)
  }
  return {buckets, objects}
}

const sameHeaders = (a: ObjectHeaders, b: ObjectHeaders) =>
  (a.contentType ?? '') === (b.contentType ?? '') && JSON.stringify(Object.entries(a.metadata).sort()) === JSON.stringify(Object.entries(b.metadata).sort())

async function sha256Of(client: S3Client, bucket: string, key: string): Promise<string> {
  const tap = new HashTap()
  await pipeline((await getObjectStream(client, bucket, key)).body, tap, new Writable({write: (_c, _e, cb) => cb()}))
  return tap.hash.digest('hex')
}

export interface MinioRestoreResult {
  bucketsCreated: string[]
  restored: number
  unchanged: number
  bytes: number
  /** Objects that held other content, copied aside before being overwritten: `bucket/key`. */
  keptAside: string[]
}

/**
 * Puts every object of the set back: buckets created when missing; an object already
 * there with the same bytes (sha256) and headers is left alone, one with other
 * content is first copied to `KEPT_PREFIX<tag>/<key>` in its bucket, so nothing is
 * lost. The sha256 of every byte put is compared with the index. Objects the set
 * does not have are left as they are. A re-run finds what is done already unchanged.
 */
export async function restoreObjects(client: S3Client, objectsTar: Readable, index: {buckets: string[]; objects: Map<string, MinioObjectRecord>}, tag: string): Promise<MinioRestoreResult> {
  const result: MinioRestoreResult = {bucketsCreated: [], restored: 0, unchanged: 0, bytes: 0, keptAside: []}
  for (const b of index.buckets) if (await ensureBucket(client, b)) result.bucketsCreated.push(b)
  const extract = tar.extract()
  const feeding = pipeline(objectsTar, extract as unknown as Writable)
  feeding.catch(() => undefined)
  const seen = new Set<string>()
  try {
    for await (const e of extract) {
      const body = e as unknown as Readable
      const rec = index.objects.get(e.header.name)
      if (e.header.type !== 'file' || !rec) {
        body.resume()
        if (e.header.type === 'file') throw new Error(`tar entry ${e.header.name} is not in the index`)
        continue
      }
      seen.add(rec.entry)
      const existing = await headObject(client, rec.bucket, rec.key)
      if (existing) {
        if (existing.size === rec.size && sameHeaders(existing, rec.headers) && (await sha256Of(client, rec.bucket, rec.key)) === rec.sha256) {
          body.resume()
          await new Promise((r) => body.once('end', r))
          result.unchanged++
          continue
        }
        const aside = `${KEPT_PREFIX}${tag}/${rec.key}`
        await copyObject(client, rec.bucket, rec.key, aside).catch((err) => Promise.reject(new Error(`copy ${rec.bucket}/${rec.key} aside to ${aside}: ${s3ErrorText(err)}`)))
        result.keptAside.push(`${rec.bucket}/${aside}`)
      }
      const tap = new HashTap()
      await pipeline(body, tap, new ObjectWriter(client, rec.bucket, rec.key, rec.headers)).catch((err) => Promise.reject(new Error(`put ${rec.bucket}/${rec.key}: ${s3ErrorText(err)}`)))
      const sha = tap.hash.digest('hex')
      if (sha !== rec.sha256 || tap.size !== rec.size) throw new Error(`${rec.bucket}/${rec.key}: ${tap.size} bytes with sha256 ${sha} were put, the index says ${rec.size} bytes, ${rec.sha256}`)
      result.restored++
      result.bytes += tap.size
    }
    await feeding
  } finally {
    if (!extract.destroyed) extract.destroy()
  }
  const missing = [...index.objects.values()].filter((r) => !seen.has(r.entry))
  if (missing.length) throw new Error(`${missing.length} objects of the index are not in the tar (first: ${missing[0]!.bucket}/${missing[0]!.key})`)
  return result
}
