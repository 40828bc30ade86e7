import {randomBytes} from 'node:crypto'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {IoHost} from '../../io.js'
import {createSandbox, destroySandbox} from '../../sandbox/sandbox.js'
import {closeAll, connectHosts, loadCluster, type ClusterModel} from '../cluster.js'
import {installService} from '../install.js'
import {defaultKeyFile, readManifest, verifyBackup, type VerifyResult} from './backup.js'
import {COUNT_ROWS_SQL, parseCounts, pgDatabaseArtifacts, pgQuery} from './postgres.js'
import {restoreBackup} from './restore.js'
import {openBackupStore, type BackupStore} from './store.js'

export interface DeepVerifyResult extends VerifyResult {
  /** storesNotRestored: the set's MinIO or Kafka data, which the one-host sandbox (PostgreSQL, Redis, ejabberd) does not take. */
  deep: {sandbox: string; healthy: boolean; tablesCompared: number; storesNotRestored?: string[]} | null
}

/**
 * `imctl backup verify ID --deep`: the checksums, then a real restore into a
 * throwaway one-host sandbox of the same release and domain, its health, and
 * every table's row count against the manifest. The sandbox is always removed.
 */
export async function deepVerifyBackup(opts: {configFile: string; id: string; to?: string; keyFile?: string; io: IoHost}): Promise<DeepVerifyResult> {
  const model = loadCluster(opts.configFile)
  const store = await openBackupStore(model, opts.to, {io: opts.io})
  try {
    return await deepVerifyFrom(model, store, opts)
  } finally {
    await store.close()
  }
}

async function deepVerifyFrom(model: ClusterModel, store: BackupStore, opts: {configFile: string; id: string; keyFile?: string; io: IoHost}): Promise<DeepVerifyResult> {
  const keyFile = opts.keyFile ?? defaultKeyFile(model.config.name)
  const shallow = await verifyBackup({configFile: opts.configFile, id: opts.id, store, keyFile})
  if (!shallow.ok) return {...shallow, deep: null}
  const manifest = (await readManifest(store, opts.id))!
  const name = `vfy-${randomBytes(3).toString('hex')}`
  const sbDir = mkdtempSync(join(tmpdir(), `imctl-${name}-`))
  const problems = [...shallow.problems]
  opts.io.notify({type: 'info', message: `restoring ${opts.id} into a throwaway sandbox ${name} (release ${manifest.release})`})
  try {
    const sb = await createSandbox({name, hosts: 1, dir: sbDir, domain: manifest.domain, release: manifest.release, io: opts.io})
    const installed = await installService({configFile: sb.configFile, io: opts.io, command: 'imctl backup verify --deep (sandbox install)'})
    if (installed.failed || installed.skipped) {
      problems.push({artifact: 'sandbox', problem: `the throwaway install failed: ${installed.applied.filter((a) => a.status === 'failed').map((a) => a.error).join('; ')}`})
      return {...shallow, ok: false, problems, deep: {sandbox: name, healthy: false, tablesCompared: 0}}
    }
    const restored = await restoreBackup({configFile: sb.configFile, id: opts.id, store, keyFile, skipAbsentStores: true, io: opts.io})
    if (!restored.healthy) problems.push({artifact: 'restore', problem: `health after the restore: ${restored.health.filter((h) => !h.ok).map((h) => `${h.component}: ${h.detail}`).join('; ')}`})
    const sbModel = loadCluster(sb.configFile)
    const conns = await connectHosts(sbModel.config, sbModel.config.hosts, {io: opts.io})
    let tablesCompared = 0
    try {
      // Every database of the set, each table's rows against the manifest.
      for (const a of pgDatabaseArtifacts(manifest)) {
        const db = a.postgresql.database
        const got = parseCounts((await conns.get('h1')!.exec(pgQuery(COUNT_ROWS_SQL, `count the rows of every table in ${db}`, db))).stdout)
        for (const [table, rows] of Object.entries(a.counts ?? {})) {
          tablesCompared++
          if (got[table] !== rows) problems.push({artifact: a.name, problem: `table ${table}: ${got[table] ?? 'missing'} rows restored, manifest says ${rows}`})
        }
      }
    } finally {
      await closeAll(conns)
    }
    return {...shallow, ok: problems.length === 0, problems, deep: {sandbox: name, healthy: restored.healthy, tablesCompared, storesNotRestored: restored.skipped}}
  } finally {
    await destroySandbox(name, sbDir).catch(() => undefined)
  }
}
