import type {IoHost} from '../io.js'
import {closeAll, connectHosts, loadCluster, usedHosts} from './cluster.js'
import {isStaleHere, parseLockInfo, readLockCommand, releaseLockCommand, type LockInfo} from './lock.js'

export interface LockStatus {
  cluster: string
  hosts: {host: string; lock: LockInfo | null; staleHere: boolean}[]
}

export async function lockStatusService(opts: {configFile: string; acceptNewHostKeys?: boolean; io: IoHost}): Promise<LockStatus> {
  const model = loadCluster(opts.configFile)
  const conns = await connectHosts(model.config, usedHosts(model), opts)
  try {
    const hosts = await Promise.all(
      [...conns.values()].map(async (c) => {
        const lock = parseLockInfo((await c.exec(readLockCommand())).stdout)
        return {host: c.host.name, lock, staleHere: lock ? isStaleHere(lock) : false}
      }),
    )
    return {cluster: model.config.name, hosts}
  } finally {
    await closeAll(conns)
  }
}

/** Removes the lock on every host. Without force, only locks whose process is known to be gone. */
export async function lockReleaseService(opts: {configFile: string; force: boolean; acceptNewHostKeys?: boolean; io: IoHost}): Promise<LockStatus & {released: string[]; kept: string[]}> {
  const model = loadCluster(opts.configFile)
  const conns = await connectHosts(model.config, usedHosts(model), opts)
  try {
    const released: string[] = []
    const kept: string[] = []
    const hosts = await Promise.all(
      [...conns.values()].map(async (c) => {
        const lock = parseLockInfo((await c.exec(readLockCommand())).stdout)
        const stale = lock ? isStaleHere(lock) : false
        if (lock && (opts.force || stale)) {
          await c.exec(releaseLockCommand(null))
          released.push(c.host.name)
        } else if (lock) kept.push(c.host.name)
        return {host: c.host.name, lock, staleHere: stale}
      }),
    )
    return {cluster: model.config.name, hosts, released, kept}
  } finally {
    await closeAll(conns)
  }
}
