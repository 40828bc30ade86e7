import {randomBytes} from 'node:crypto'
import type {HealthCheck, HealthContext} from '../../ops/health.js'
import type {HostConnection} from '../../transport/types.js'
import {IMCTL_KEYS, MINIO_UNIT, minioNodes, urlHost} from './index.js'
import {openMinioS3, s3ErrorText, sha256} from './s3.js'

/** Big enough that MinIO stripes it over the drives instead of inlining it in its metadata (about 128 KiB). */
const PROBE_BYTES = 1024 * 1024

/** GET a path of MinIO's (health endpoints need no credentials) through an SSH tunnel to the node; returns the status. */
async function httpStatus(conn: HostConnection, address: string, port: number, path: string): Promise<number> {
  const t = await conn.tunnel(address, port)
  try {
    const res = await fetch(`http://127.0.0.1:${t.port}${path}`, {signal: AbortSignal.timeout(10_000)})
    await res.arrayBuffer()
    return res.status
  } catch (e) {
    // Through the tunnel a refused connection shows as the socket closing at once.
    const cause = (e as {cause?: {code?: string; message?: string}}).cause
    throw new Error(`no answer from ${urlHost(address)}:${port} (${cause?.message ?? (e as Error).message})`)
  } finally {
    await t.close()
  }
}

/**
 * MinIO's checks: per node, that its process answers (`/minio/health/live`); for
 * the cluster, through the first node that answers, write quorum on every erasure
 * set (`/minio/health/cluster`) and an object put, read back (sha256 compared) and
 * deleted with imctl-health's own key, which may do nothing else.
 */
export function minioHealthChecks(ctx: HealthContext): Promise<HealthCheck | HealthCheck[]>[] {
  const {model, conns} = ctx
  const placement = model.config.components.minio!
  const nodes = minioNodes(model.config)
  const key = IMCTL_KEYS.find((k) => k.user === 'imctl-health')!
  const secret = model.secrets.minio![key.secret]
  const conn = (host: string) => conns.get(host)!

  const live = nodes.map((n) =>
    ctx.timed(n.host, `MinIO answers on ${urlHost(n.address)}:${placement.port} (/minio/health/live)`, async () => {
      const onEngine = Boolean(model.config.hosts.find((h) => h.name === n.host)?.engine)
      const hint = `see ${onEngine ? '`imctl logs minio`' : `\`journalctl -u ${MINIO_UNIT}\` on ${n.host}`}, then run \`imctl install\``
      const status = await httpStatus(conn(n.host), n.address, placement.port, '/minio/health/live').catch((e: Error) => Promise.reject(new Error(`${e.message}; ${hint}`)))
      if (status !== 200) throw new Error(`/minio/health/live answered ${status}; ${hint}`)
      return 'live'
    }),
  )

  const cluster = (async (): Promise<HealthCheck[]> => {
    // The cluster serves through any of its nodes: ask them in order until one answers.
    let via: {host: string; address: string} | undefined
    const quorum = await ctx.timed(
      nodes[0]!.host,
      'MinIO write quorum on every erasure set (/minio/health/cluster)',
      async () => {
        const seen: string[] = []
        for (const n of nodes) {
          try {
            const status = await httpStatus(conn(n.host), n.address, placement.port, '/minio/health/cluster')
            if (status === 200) {
              via = n
              return `write quorum holds (asked ${n.host})`
            }
            seen.push(`${n.host} answered ${status}`)
          } catch (e) {
            seen.push(`${n.host}: ${(e as Error).message}`)
          }
        }
        throw new Error(`no write quorum: ${seen.join('; ')}; see \`imctl logs minio --host HOST\` for each MinIO host`)
      },
      {clusterLevel: true},
    )
    const roundTrip = await ctx.timed(
      (via ?? nodes[0]!).host,
      `put, get and delete an object in ${key.bucket} as ${key.user} (S3)`,
      async () => {
        if (!via) throw new Error('skipped: no node has write quorum')
        const s3 = await openMinioS3(conn(via.host), via.address, placement.port, {accessKeyId: key.user, secretAccessKey: secret})
        const objectKey = `probe/${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}`
        const body = randomBytes(PROBE_BYTES)
        const t0 = Date.now()
        let stored = false
        try {
          await s3.put(key.bucket, objectKey, body).catch((e) => Promise.reject(new Error(`put ${key.bucket}/${objectKey}: ${s3ErrorText(e)}`)))
          stored = true
          const back = await s3.get(key.bucket, objectKey).catch((e) => Promise.reject(new Error(`get ${key.bucket}/${objectKey}: ${s3ErrorText(e)}`)))
          if (sha256(back) !== sha256(body)) throw new Error(`get ${key.bucket}/${objectKey}: ${back.length} bytes came back with another sha256 than the ${body.length} put`)
          await s3.delete(key.bucket, objectKey).catch((e) => Promise.reject(new Error(`delete ${key.bucket}/${objectKey}: ${s3ErrorText(e)}`)))
          stored = false
          return `${PROBE_BYTES / 1024} KiB put, read back (sha256 matches) and deleted through ${via.host} in ${Date.now() - t0} ms`
        } finally {
          if (stored) await s3.delete(key.bucket, objectKey).catch(() => {})
          await s3.close()
        }
      },
      {clusterLevel: true},
    )
    return [quorum, roundTrip]
  })()

  return [...live, cluster]
}
