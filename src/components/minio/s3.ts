import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import {createHash} from 'node:crypto'
import {Agent as HttpsAgent} from 'node:https'
import {Readable, Writable} from 'node:stream'
import type {ClusterModel} from '../../ops/cluster.js'
import type {HostConnection} from '../../transport/types.js'
import {minioNodes, urlHost} from './index.js'

/** imctl's S3 client for MinIO (the one module that speaks S3), reached through an SSH tunnel to one node. */
export interface MinioS3 {
  client: S3Client
  /** Where it goes, for messages: the node's S3 address. */
  target: string
  put(bucket: string, key: string, body: Buffer): Promise<void>
  get(bucket: string, key: string): Promise<Buffer>
  delete(bucket: string, key: string): Promise<void>
  close(): Promise<void>
}

const REQUEST_TIMEOUT_MS = 20_000

export async function openMinioS3(conn: HostConnection, address: string, port: number, key: {accessKeyId: string; secretAccessKey: string}): Promise<MinioS3> {
  // The SDK warns on Node 20 about its own future releases; imctl pins the release it ships with.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  const tunnel = await conn.tunnel(address, port)
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${tunnel.port}`,
    // MinIO serves buckets as paths; the region is only part of the signature.
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: key,
    maxAttempts: 2,
    // A stalled tunnel fails a streamed GET or PUT instead of hanging it (per-request timeouts would cut long bodies).
    requestHandler: {connectionTimeout: 10_000, socketTimeout: 120_000},
    // Checksums only where S3 demands them: health compares its own sha256 of the bytes.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
  return s3Handle(client, `${urlHost(address)}:${port}`, () => tunnel.close())
}

/** An S3-compatible endpoint outside the cluster (a company's S3, another MinIO). */
export interface S3EndpointSpec {
  /** http(s)://host[:port], no credentials in it. */
  endpoint: string
  region: string
  credentials: {accessKeyId: string; secretAccessKey: string; sessionToken?: string}
  /** PEM CA bundle that TLS certificates must chain to, instead of Node's own CA list. */
  ca?: Buffer
  /** Buckets as paths (MinIO and most S3-compatible servers) rather than as host names. */
  pathStyle: boolean
}

/**
 * imctl's S3 client for an endpoint reached directly from this machine. TLS
 * certificates are always verified: against `ca` when given, else Node's CA list.
 */
export function openS3Endpoint(spec: S3EndpointSpec): MinioS3 {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  const client = new S3Client({
    endpoint: spec.endpoint,
    forcePathStyle: spec.pathStyle,
    region: spec.region,
    credentials: spec.credentials,
    maxAttempts: 3,
    requestHandler: {connectionTimeout: 10_000, socketTimeout: 120_000, ...(spec.ca ? {httpsAgent: new HttpsAgent({ca: spec.ca, keepAlive: true})} : {})},
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
  return s3Handle(client, spec.endpoint, async () => {})
}

/** The small-object calls every imctl S3 client offers, each bounded in time; `release` frees what the client rides on. */
function s3Handle(client: S3Client, target: string, release: () => Promise<void>): MinioS3 {
  const opts = () => ({abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)})
  return {
    client,
    target,
    async put(bucket, k, body) {
      await client.send(new PutObjectCommand({Bucket: bucket, Key: k, Body: body, ContentLength: body.length}), opts())
    },
    async get(bucket, k) {
      const res = await client.send(new GetObjectCommand({Bucket: bucket, Key: k}), opts())
      if (!res.Body) throw new Error(`GET ${bucket}/${k} returned no body`)
      return Buffer.from(await res.Body.transformToByteArray())
    },
    async delete(bucket, k) {
      await client.send(new DeleteObjectCommand({Bucket: bucket, Key: k}), opts())
    },
    async close() {
      client.destroy()
      await release()
    },
  }
}

/** HeadBucket: throws what S3 said when the bucket cannot be reached with the key. */
export async function probeBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new HeadBucketCommand({Bucket: bucket}), {abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)})
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** An S3 error's code (AccessDenied, NoSuchKey, ...) or the plain message. */
export function s3ErrorText(e: unknown): string {
  const err = e as {name?: string; Code?: string; message?: string; $metadata?: {httpStatusCode?: number}}
  const code = err.Code ?? err.name
  const status = err.$metadata?.httpStatusCode
  return [code && code !== 'Error' ? code : undefined, status ? `HTTP ${status}` : undefined, err.message].filter(Boolean).join(': ')
}

/**
 * An S3 session on the cluster's MinIO through the first node that answers:
 * `probeBucket` must be reachable with the key (HeadBucket).
 */
export async function openClusterS3(model: ClusterModel, conns: Map<string, HostConnection>, key: {accessKeyId: string; secretAccessKey: string}, probeBucket: string): Promise<MinioS3> {
  const placement = model.config.components.minio
  if (!placement) throw new Error('bug: MinIO asked for on a cluster without MinIO')
  const errors: string[] = []
  for (const n of minioNodes(model.config)) {
    const conn = conns.get(n.host)
    if (!conn) continue
    let s3: MinioS3 | undefined
    try {
      s3 = await openMinioS3(conn, n.address, placement.port, key)
      await s3.client.send(new HeadBucketCommand({Bucket: probeBucket}), {abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)})
      return s3
    } catch (e) {
      errors.push(`${n.host}: ${s3ErrorText(e)}`)
      await s3?.close().catch(() => {})
    }
  }
  throw new Error(`no MinIO node serves bucket ${probeBucket} as ${key.accessKeyId}: ${errors.join('; ') || 'no connection to a MinIO host'}`)
}

/** What S3 keeps with an object besides its bytes, as imctl backs it up and puts it back. */
export interface ObjectHeaders {
  contentType?: string
  cacheControl?: string
  contentDisposition?: string
  contentEncoding?: string
  contentLanguage?: string
  /** User metadata (x-amz-meta-*), names in lower case. */
  metadata: Record<string, string>
}

export interface ObjectInfo extends ObjectHeaders {
  size: number
  etag: string
  lastModified?: Date
}

export async function listBuckets(client: S3Client): Promise<string[]> {
  const res = await client.send(new ListBucketsCommand({}), {abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)})
  return (res.Buckets ?? []).map((b) => b.Name!).sort()
}

/** Creates a bucket unless it is there; true when it was created. */
export async function ensureBucket(client: S3Client, bucket: string): Promise<boolean> {
  try {
    await client.send(new HeadBucketCommand({Bucket: bucket}), {abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)})
    return false
  } catch (e) {
    if ((e as {$metadata?: {httpStatusCode?: number}}).$metadata?.httpStatusCode !== 404) throw e
  }
  await client.send(new CreateBucketCommand({Bucket: bucket}), {abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)})
  return true
}

/** Every object under a prefix (key, size, ETag), page by page; with a delimiter, the common prefixes too. */
export async function* listObjects(client: S3Client, bucket: string, prefix?: string): AsyncGenerator<{key: string; size: number; etag: string}> {
  let token: string | undefined
  do {
    const res = await client.send(new ListObjectsV2Command({Bucket: bucket, ...(prefix ? {Prefix: prefix} : {}), ...(token ? {ContinuationToken: token} : {})}), {abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)})
    for (const o of res.Contents ?? []) yield {key: o.Key!, size: o.Size ?? 0, etag: o.ETag ?? ''}
    token = res.IsTruncated ? res.NextContinuationToken : undefined
  } while (token)
}

/** The "folders" right under a prefix (ListObjectsV2 with delimiter `/`), without the prefix. */
export async function listPrefixes(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const out: string[] = []
  let token: string | undefined
  do {
    const res = await client.send(new ListObjectsV2Command({Bucket: bucket, Prefix: prefix, Delimiter: '/', ...(token ? {ContinuationToken: token} : {})}), {abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)})
    for (const p of res.CommonPrefixes ?? []) out.push(p.Prefix!.slice(prefix.length).replace(/\/$/, ''))
    token = res.IsTruncated ? res.NextContinuationToken : undefined
  } while (token)
  return out
}

function headersOf(res: {ContentType?: string; CacheControl?: string; ContentDisposition?: string; ContentEncoding?: string; ContentLanguage?: string; Metadata?: Record<string, string>}): ObjectHeaders {
  return {
    ...(res.ContentType ? {contentType: res.ContentType} : {}),
    ...(res.CacheControl ? {cacheControl: res.CacheControl} : {}),
    ...(res.ContentDisposition ? {contentDisposition: res.ContentDisposition} : {}),
    ...(res.ContentEncoding ? {contentEncoding: res.ContentEncoding} : {}),
    ...(res.ContentLanguage ? {contentLanguage: res.ContentLanguage} : {}),
    metadata: res.Metadata ?? {},
  }
}

/** HEAD: the object's size, ETag and headers, or null when there is none. */
export async function headObject(client: S3Client, bucket: string, key: string): Promise<ObjectInfo | null> {
  try {
    const res = await client.send(new HeadObjectCommand({Bucket: bucket, Key: key}), {abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)})
    return {...headersOf(res), size: res.ContentLength ?? 0, etag: res.ETag ?? '', ...(res.LastModified ? {lastModified: res.LastModified} : {})}
  } catch (e) {
    if ((e as {$metadata?: {httpStatusCode?: number}}).$metadata?.httpStatusCode === 404) return null
    throw e
  }
}

/** GET as a stream, with the object's size and headers. */
export async function getObjectStream(client: S3Client, bucket: string, key: string): Promise<ObjectInfo & {body: Readable}> {
  const res = await client.send(new GetObjectCommand({Bucket: bucket, Key: key}))
  if (!res.Body) throw new Error(`GET ${bucket}/${key} returned no body`)
  return {...headersOf(res), size: res.ContentLength ?? 0, etag: res.ETag ?? '', ...(res.LastModified ? {lastModified: res.LastModified} : {}), body: res.Body as Readable}
}

/** A server-side copy within a bucket, headers and metadata included (objects up to 5 GiB). */
export async function copyObject(client: S3Client, bucket: string, from: string, to: string): Promise<void> {
  await client.send(new CopyObjectCommand({Bucket: bucket, Key: to, CopySource: `${bucket}/${from.split('/').map(encodeURIComponent).join('/')}`, MetadataDirective: 'COPY'}))
}

export async function deleteKeys(client: S3Client, bucket: string, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const res = await client.send(new DeleteObjectsCommand({Bucket: bucket, Delete: {Objects: keys.slice(i, i + 1000).map((Key) => ({Key})), Quiet: true}}))
    if (res.Errors?.length) throw new Error(`delete in ${bucket}: ${res.Errors.map((e) => `${e.Key}: ${e.Code}`).join('; ')}`)
  }
}

/** Parts are this big: at most two are held in memory at once. S3 allows 10,000 parts, so up to 80 GiB per object. */
const PART_BYTES = 8 * 1024 * 1024

/**
 * A Writable that stores what is written to it as one object: a single PUT when it
 * ends below one part, a multipart upload otherwise (aborted when the stream is
 * destroyed), so a body of any length streams through bounded memory. The object
 * appears only once the stream has finished.
 */
export class ObjectWriter extends Writable {
  private chunks: Buffer[] = []
  private buffered = 0
  private uploadId: string | undefined
  private parts: {ETag: string; PartNumber: number}[] = []
  private inFlight: Promise<void> | undefined

  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    readonly key: string,
    private readonly headers: ObjectHeaders = {metadata: {}},
  ) {
    super({highWaterMark: PART_BYTES})
  }

  private get objectParams() {
    const h = this.headers
    return {
      Bucket: this.bucket,
      Key: this.key,
      ...(h.contentType ? {ContentType: h.contentType} : {}),
      ...(h.cacheControl ? {CacheControl: h.cacheControl} : {}),
      ...(h.contentDisposition ? {ContentDisposition: h.contentDisposition} : {}),
      ...(h.contentEncoding ? {ContentEncoding: h.contentEncoding} : {}),
      ...(h.contentLanguage ? {ContentLanguage: h.contentLanguage} : {}),
      ...(Object.keys(h.metadata).length ? {Metadata: h.metadata} : {}),
    }
  }

  /** The first `bytes` buffered (all of them by default). */
  private take(bytes = this.buffered): Buffer {
    const all = Buffer.concat(this.chunks)
    const rest = all.subarray(bytes)
    this.chunks = rest.length ? [rest] : []
    this.buffered = rest.length
    return all.subarray(0, bytes)
  }

  /** Uploads one part; the next is read while it travels, and waits for it before going itself. */
  private async sendPart(body: Buffer): Promise<void> {
    await this.inFlight
    if (!this.uploadId) {
      const res = await this.client.send(new CreateMultipartUploadCommand(this.objectParams))
      this.uploadId = res.UploadId!
    }
    const PartNumber = this.parts.length + 1
    this.parts.push({ETag: '', PartNumber})
    const uploadId = this.uploadId
    const sent = this.client.send(new UploadPartCommand({Bucket: this.bucket, Key: this.key, UploadId: uploadId, PartNumber, Body: body, ContentLength: body.length})).then((res) => {
      this.parts[PartNumber - 1]!.ETag = res.ETag!
    })
    // Its failure surfaces when the next part or the end waits for it.
    sent.catch(() => {})
    this.inFlight = sent
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    if (this.buffered < PART_BYTES) return cb()
    const send = async () => {
      while (this.buffered >= PART_BYTES) await this.sendPart(this.take(PART_BYTES))
    }
    send().then(() => cb(), cb)
  }

  override _final(cb: (e?: Error | null) => void): void {
    const done = async () => {
      const rest = this.take()
      if (!this.uploadId) {
        await this.client.send(new PutObjectCommand({...this.objectParams, Body: rest, ContentLength: rest.length}))
        return
      }
      if (rest.length) await this.sendPart(rest)
      await this.inFlight
      await this.client.send(new CompleteMultipartUploadCommand({Bucket: this.bucket, Key: this.key, UploadId: this.uploadId, MultipartUpload: {Parts: this.parts}}))
      this.uploadId = undefined
    }
    done().then(() => cb(), cb)
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    const id = this.uploadId
    this.uploadId = undefined
    if (!id) return cb(err)
    // Parts of an abandoned upload would stay on the server, invisible, until aborted.
    void (this.inFlight ?? Promise.resolve())
      .catch(() => {})
      .then(() => this.client.send(new AbortMultipartUploadCommand({Bucket: this.bucket, Key: this.key, UploadId: id})))
      .catch(() => {})
      .finally(() => cb(err))
  }
}
