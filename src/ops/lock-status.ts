import type {IoHost} from '../io.js'
import type {HostConnection} from '../transport/types.js'
import {closeAll, connectHosts, loadCluster, usedHosts} from './cluster.js'
import {isStaleHere, parseLockInfo, readLockCommand, releaseLockCommand, type LockInfo} from './lock.js'

export interface LockStatus {
  cluster: string
  hosts: {host: string; lock: LockInfo | null; staleHere: boolean}[]
}

interface LockOptions {
  configFile: string
  acceptNewHostKeys?: boolean
  io: IoHost
}

/** Connects to every host of the cluster, reads its lock, and hands both to `then`. */
async function withLocks<T>(opts: LockOptions, then: (status: LockStatus, conns: Map<string, HostConnection>) => Promise<T>): Promise<T> {
  const model = loadCluster(opts.configFile)
  const conns = await connectHosts(model.config, usedHosts(model), opts)
  try {
    const hosts = await Promise.all(
      [...conns.values()].map(async (c) => {
        const lock = parseLockInfo((await c.exec(readLockCommand())).stdout)
        return {host: c.host.name, lock, staleHere: lock ? isStaleHere(lock) : false}
      }),
    )
    return await then({cluster: model.config.name, hosts}, conns)
  } finally {
    await closeAll(conns)
  }
}

export function lockStatusService(opts: LockOptions): Promise<LockStatus> {
  return withLocks(opts, async (status) => status)
}

/** Removes the lock on every host. Without force, only locks whose process is known to be gone. */
export function lockReleaseService(opts: LockOptions & {force: boolean}): Promise<LockStatus & {released: string[]; kept: string[]}> {
  return withLocks(opts, async (status, conns) => {
    const held = status.hosts.filter((h) => h.lock)
    const release = held.filter((h) => opts.force || h.staleHere)
    await Promise.all(release.map((h) => conns.get(h.host)!.exec(releaseLockCommand(null))))
    return {...status, released: release.map((h) => h.host), kept: held.filter((h) => !release.includes(h)).map((h) => h.host)}
  })
}
