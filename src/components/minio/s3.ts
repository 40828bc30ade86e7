import {DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client} from '@aws-sdk/client-s3'
import {createHash} from 'node:crypto'
import type {HostConnection} from '../../transport/types.js'
import {urlHost} from './index.js'

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
    // Checksums only where S3 demands them: health compares its own sha256 of the bytes.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
  const opts = () => ({abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)})
  return {
    client,
    target: `${urlHost(address)}:${port}`,
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
      await tunnel.close()
    },
  }
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
