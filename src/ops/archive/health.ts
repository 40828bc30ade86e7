import {listObjects, openClusterS3} from '../../components/minio/s3.js'
import type {HealthCheck, HealthContext} from '../health.js'
import {ARCHIVE_BUCKET, ARCHIVE_USER, archiveHealth, RUNS_PREFIX, type RunManifest} from './model.js'
import {readSchedule} from './archive.js'

/** The archive's last run and schedule, read from the manifests in MinIO: a failed or overdue run fails the check. */
export function archiveHealthChecks(ctx: HealthContext): Promise<HealthCheck>[] {
  const secret = ctx.model.secrets.minio?.archive_secret
  const host = ctx.model.config.components.minio?.hosts[0]
  if (!secret || !host) return []
  return [
    ctx.timed(
      host,
      'message archive: last run and schedule',
      async () => {
        const s3 = await openClusterS3(ctx.model, ctx.conns, {accessKeyId: ARCHIVE_USER, secretAccessKey: secret}, ARCHIVE_BUCKET)
        try {
          let newest: string | undefined
          for await (const o of listObjects(s3.client, ARCHIVE_BUCKET, RUNS_PREFIX)) if (o.key.endsWith('.json') && (!newest || o.key > newest)) newest = o.key
          const last = newest ? (JSON.parse((await s3.get(ARCHIVE_BUCKET, newest)).toString('utf8')) as RunManifest) : undefined
          const h = archiveHealth(last, (await readSchedule(s3)) ?? undefined, new Date())
          if (!h.ok) throw new Error(h.detail)
          return h.detail
        } finally {
          await s3.close()
        }
      },
      {clusterLevel: true},
    ),
  ]
}
