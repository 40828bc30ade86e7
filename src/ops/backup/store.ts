import {createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'
import type {Readable, Writable} from 'node:stream'
import {IMCTL_KEYS} from '../../components/minio/index.js'
import {deleteKeys, getObjectStream, listObjects, listPrefixes, ObjectWriter, openClusterS3, openS3Endpoint, probeBucket, s3ErrorText, type MinioS3} from '../../components/minio/s3.js'
import {UserError} from '../../errors.js'
import type {IoHost} from '../../io.js'
import type {HostConnection} from '../../transport/types.js'
import {closeAll, connectHosts, type ClusterModel} from '../cluster.js'
import {resolveS3Endpoint, tlsHint, type S3EndpointOptions} from './s3-endpoint.js'

/** One artifact being stored: write into `sink`, then `commit`; `abort` when anything failed. */
export interface ArtifactWriter {
  sink: Writable
  commit(): Promise<void>
  abort(): Promise<void>
}

/**
 * Where a cluster's backup sets live: a directory, or a prefix in an S3 bucket.
 * A set is `<root>/<id>/` with its artifacts and, once complete, manifest.json.
 */
export interface BackupStore {
  /** For messages: the directory, or s3://bucket/prefix/cluster. */
  readonly root: string
  /** Begins a set (a directory appears at once, so a cut backup is listed as incomplete). */
  begin(id: string): Promise<void>
  has(id: string): Promise<boolean>
  writer(id: string, name: string): Promise<ArtifactWriter>
  /** An artifact's bytes, or null when it is not there. */
  read(id: string, name: string): Promise<Readable | null>
  /** Every set with its files and their sizes. */
  list(): Promise<{id: string; files: {name: string; size: number}[]}[]>
  remove(id: string): Promise<void>
  close(): Promise<void>
}

/** `--to s3://bucket/prefix`: the bucket and the key prefix (no leading or trailing slash). */
export function parseS3Url(to: string): {bucket: string; prefix: string} | null {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(to)
  if (!m) return null
  return {bucket: m[1]!, prefix: m[2]!.replace(/\/+$/, '').replace(/^\/+/, '')}
}

export function isS3(to: string | undefined): boolean {
  return Boolean(to?.startsWith('s3://'))
}

/** backups/<cluster> beside cluster.yaml, or <to>/<cluster>. */
export function backupRoot(model: ClusterModel, to?: string): string {
  return resolve(to ?? join(dirname(model.config.file), 'backups'), model.config.name)
}

export function dirStore(root: string): BackupStore {
  return {
    root,
    async begin(id) {
      mkdirSync(join(root, id), {recursive: true, mode: 0o700})
    },
    async has(id) {
      return existsSync(join(root, id))
    },
    async writer(id, name) {
      const file = join(root, id, name)
      const sink = createWriteStream(`${file}.partial`, {mode: 0o600})
      return {
        sink,
        commit: async () => renameSync(`${file}.partial`, file),
        abort: async () => rmSync(`${file}.partial`, {force: true}),
      }
    },
    async read(id, name) {
      const file = join(root, id, name)
      return existsSync(file) ? createReadStream(file) : null
    },
    async list() {
      if (!existsSync(root)) return []
      return readdirSync(root, {withFileTypes: true})
        .filter((d) => d.isDirectory())
        .map((d) => ({id: d.name, files: readdirSync(join(root, d.name)).map((name) => ({name, size: statSync(join(root, d.name, name)).size}))}))
    },
    async remove(id) {
      rmSync(join(root, id), {recursive: true, force: true})
    },
    async close() {},
  }
}

/** A store in an S3 bucket; the session's lifetime is the store's. */
export function s3Store(s3: MinioS3, bucket: string, prefix: string, onClose: () => Promise<void> = async () => {}): BackupStore {
  const base = prefix ? `${prefix}/` : ''
  const key = (id: string, name: string) => `${base}${id}/${name}`
  return {
    root: `s3://${bucket}/${base.replace(/\/$/, '')}`,
    async begin() {},
    async has(id) {
      for await (const _ of listObjects(s3.client, bucket, `${base}${id}/`)) return true
      return false
    },
    async writer(id, name) {
      const sink = new ObjectWriter(s3.client, bucket, key(id, name))
      // The object appears only when the sink has finished; a destroyed sink aborts its upload.
      return {sink, commit: async () => {}, abort: async () => void sink.destroy()}
    },
    async read(id, name) {
      try {
        return (await getObjectStream(s3.client, bucket, key(id, name))).body
      } catch (e) {
        if ((e as {$metadata?: {httpStatusCode?: number}}).$metadata?.httpStatusCode === 404) return null
        throw e
      }
    },
    async list() {
      const ids = await listPrefixes(s3.client, bucket, base)
      const sets = []
      for (const id of ids) {
        const files = []
        for await (const o of listObjects(s3.client, bucket, `${base}${id}/`)) files.push({name: o.key.slice(`${base}${id}/`.length), size: o.size})
        sets.push({id, files})
      }
      return sets
    },
    async remove(id) {
      const keys = []
      for await (const o of listObjects(s3.client, bucket, `${base}${id}/`)) keys.push(o.key)
      await deleteKeys(s3.client, bucket, keys)
    },
    async close() {
      await s3.close()
      await onClose()
    },
  }
}

/** The key imctl writes backups with: it may use its own bucket and nothing else. */
const BACKUP_KEY = IMCTL_KEYS.find((k) => k.user === 'imctl-backup')!

/** Where the sets are, as every backup command takes it: `--to` and, for an S3 outside the cluster, the endpoint. */
export interface BackupTarget {
  to?: string
  s3?: S3EndpointOptions
}

/**
 * Opens where the cluster's sets are: `--to DIR` (default backups/ beside
 * cluster.yaml); `--to s3://BUCKET/PREFIX` with `s3` set: that bucket on an
 * S3-compatible endpoint outside the cluster; `--to s3://imctl-backups/PREFIX`
 * alone: the cluster's own MinIO with the imctl-backup key, through the
 * connections given or its own to the MinIO hosts.
 */
export async function openBackupStore(model: ClusterModel, to: string | undefined, opts: {conns?: Map<string, HostConnection>; io: IoHost; acceptNewHostKeys?: boolean; s3?: S3EndpointOptions | undefined}): Promise<BackupStore> {
  if (opts.s3 && !isS3(to)) throw new UserError(`--s3-endpoint ${opts.s3.endpoint} needs --to s3://BUCKET[/PREFIX]: the bucket to keep the sets in`)
  if (!isS3(to)) return dirStore(backupRoot(model, to))
  const url = parseS3Url(to!)
  if (!url) throw new UserError(`--to ${to}: write s3://BUCKET or s3://BUCKET/PREFIX`)
  const under = [url.prefix, model.config.name].filter(Boolean).join('/')
  if (opts.s3) return openExternalStore(opts.s3, url.bucket, under, to!)
  const placement = model.config.components.minio
  if (!placement) throw new UserError(`--to ${to}: this cluster has no MinIO to keep backups in`, ['Give a directory with --to, or an S3 endpoint outside the cluster with --s3-endpoint, or add MinIO to the cluster (components.minio) and install it.'])
  if (url.bucket !== BACKUP_KEY.bucket) {
    throw new UserError(`--to ${to}: backups go to bucket ${BACKUP_KEY.bucket}, the only one imctl's backup key (${BACKUP_KEY.user}) may use`, [`Write --to s3://${BACKUP_KEY.bucket}${url.prefix ? `/${url.prefix}` : ''}, or add --s3-endpoint URL for a bucket outside the cluster.`])
  }
  const hosts = model.config.hosts.filter((h) => placement.hosts.includes(h.name))
  const own = opts.conns && hosts.every((h) => opts.conns!.has(h.name)) ? null : await connectHosts(model.config, hosts, {io: opts.io, acceptNewHostKeys: opts.acceptNewHostKeys ?? false})
  const conns = own ?? opts.conns!
  let s3: MinioS3
  try {
    s3 = await openClusterS3(model, conns, {accessKeyId: BACKUP_KEY.user, secretAccessKey: model.secrets.minio![BACKUP_KEY.secret]}, url.bucket)
  } catch (e) {
    if (own) await closeAll(own)
    throw new UserError(`--to ${to}: ${s3ErrorText(e)}`, ['Check MinIO with `imctl health`; `imctl install` puts the bucket and the key back.'])
  }
  return s3Store(s3, url.bucket, under, async () => {
    if (own) await closeAll(own)
  })
}

/** A bucket on an S3-compatible endpoint outside the cluster: it must exist and take the key (imctl creates no bucket there). */
async function openExternalStore(opts: S3EndpointOptions, bucket: string, under: string, to: string): Promise<BackupStore> {
  const s3 = openS3Endpoint(resolveS3Endpoint(opts))
  try {
    await probeBucket(s3.client, bucket)
  } catch (e) {
    await s3.close()
    const text = s3ErrorText(e)
    const status = (e as {$metadata?: {httpStatusCode?: number}}).$metadata?.httpStatusCode
    const hint = tlsHint(text)
    throw new UserError(`--to ${to} on ${opts.endpoint}: ${status === 404 ? `bucket ${bucket} does not exist` : text}`, [
      ...(status === 404 ? [`Create bucket ${bucket} on that endpoint (imctl makes none outside the cluster), with a key that may read, write, list and delete in it.`] : []),
      ...(status === 403 ? ['Check the keys (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or --s3-credentials) and that they may use that bucket; and --s3-region.'] : []),
      ...(hint ? [hint] : []),
    ])
  }
  return s3Store(s3, bucket, under)
}
