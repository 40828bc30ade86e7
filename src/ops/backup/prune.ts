import {UserError} from '../../errors.js'
import {silentIo, type IoHost} from '../../io.js'
import {loadCluster} from '../cluster.js'
import {listBackups, verifyBackup} from './backup.js'
import {parseRetention, retained, type RetentionPolicy} from './retention.js'
import {openBackupStore, type BackupStore} from './store.js'
import type {S3EndpointOptions} from './s3-endpoint.js'

export interface PruneResult {
  kept: string[]
  removed: string[]
  /** Incomplete sets older than a day: never restorable, removed too. */
  removedIncomplete: string[]
  verified: string
  dryRun: boolean
}

/** `imctl backup prune`: keeps what the policy says, and never deletes before the newest kept set has verified. */
export async function pruneBackups(opts: {configFile: string; keep: string; to?: string; s3?: S3EndpointOptions; keyFile?: string; dryRun: boolean; now?: Date; io?: IoHost}): Promise<PruneResult> {
  const policy = parseRetention(opts.keep)
  const store = await openBackupStore(loadCluster(opts.configFile), opts.to, {io: opts.io ?? silentIo, s3: opts.s3})
  try {
    return await pruneIn(store, policy, opts)
  } finally {
    await store.close()
  }
}

async function pruneIn(store: BackupStore, policy: RetentionPolicy, opts: {configFile: string; keyFile?: string; dryRun: boolean; now?: Date}): Promise<PruneResult> {
  const {root, sets} = await listBackups({configFile: opts.configFile, store})
  const complete = sets.filter((s) => s.complete && s.createdAt).map((s) => ({id: s.id, createdAt: new Date(s.createdAt!)}))
  if (!complete.length) throw new UserError(`no complete backup set in ${root}: nothing may be pruned`, ['Run `imctl backup create` first.'])
  const {keep, remove} = retained(complete, policy)
  const newest = keep[0]!
  const check = await verifyBackup({configFile: opts.configFile, id: newest, store, ...(opts.keyFile ? {keyFile: opts.keyFile} : {})})
  if (!check.ok) {
    throw new UserError(`the newest set ${newest} does not verify (${check.problems.map((p) => p.artifact).join(', ')}): nothing was pruned`, [
      'Older sets may be the only good ones now. Run `imctl backup create`, verify it, then prune.',
    ])
  }
  const now = opts.now ?? new Date()
  const staleIncomplete = sets.filter((s) => !s.complete && now.getTime() - idTime(s.id) > 86_400_000).map((s) => s.id)
  if (!opts.dryRun) for (const id of [...remove, ...staleIncomplete]) await store.remove(id)
  return {kept: keep, removed: remove, removedIncomplete: staleIncomplete, verified: newest, dryRun: opts.dryRun}
}

/** A set id is its UTC start time (20261126T170510Z); unknown forms count as new (kept). */
function idTime(id: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(id)
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : Date.now()
}
