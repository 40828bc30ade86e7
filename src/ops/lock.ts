import {randomUUID} from 'node:crypto'
import {hostname, userInfo} from 'node:os'
import {UserError} from '../errors.js'
import type {IoHost} from '../io.js'
import {shScript, type RemoteCommand} from '../transport/command.js'
import type {HostConnection} from '../transport/types.js'

export const LOCK_DIR = '/var/lib/imctl/lock'

export interface LockInfo {
  id: string
  who: string
  machine: string
  pid: number
  since: string
  command: string
}

export function newLockInfo(command: string): LockInfo {
  return {id: randomUUID(), who: userInfo().username, machine: hostname(), pid: process.pid, since: new Date().toISOString(), command}
}

/** mkdir is atomic: whoever creates the directory holds the lock. Exit 3 and the holder's info when taken. */
export function acquireLockCommand(info: LockInfo): RemoteCommand {
  return {
    argv: shScript('mkdir -p "${1%/*}" && if mkdir "$1" 2>/dev/null; then cat > "$1/info"; else cat "$1/info" 2>/dev/null; exit 3; fi', [LOCK_DIR]),
    stdin: JSON.stringify(info) + '\n',
    root: true,
    okExitCodes: [0, 3],
    description: 'take the cluster lock',
  }
}

/** Removes the lock only if this run holds it (or any holder, with force). */
export function releaseLockCommand(id: string | null): RemoteCommand {
  return id
    ? {argv: shScript('if grep -qF "$2" "$1/info" 2>/dev/null; then rm -rf "$1"; fi', [LOCK_DIR, id]), root: true, description: 'release the cluster lock'}
    : {argv: ['rm', '-rf', LOCK_DIR], root: true, description: 'remove the cluster lock'}
}

export function readLockCommand(): RemoteCommand {
  return {argv: shScript('cat "$1/info" 2>/dev/null || true', [LOCK_DIR]), description: 'read the cluster lock', root: true}
}

export function parseLockInfo(text: string): LockInfo | null {
  const t = text.trim()
  if (!t) return null
  try {
    return JSON.parse(t) as LockInfo
  } catch {
    return {id: '?', who: '?', machine: '?', pid: 0, since: '?', command: `unreadable lock: ${t.slice(0, 80)}`}
  }
}

/** A lock left by a process of this machine that no longer runs can be taken over safely. */
export function isStaleHere(info: LockInfo): boolean {
  if (info.machine !== hostname() || !info.pid) return false
  try {
    process.kill(info.pid, 0)
    return false
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

export interface ClusterLock {
  info: LockInfo
  release(): Promise<void>
}

/** Takes the lock on every host, in name order so two runs cannot each hold half. */
export async function lockCluster(conns: HostConnection[], command: string, io: IoHost): Promise<ClusterLock> {
  const info = newLockInfo(command)
  const held: HostConnection[] = []
  const sorted = [...conns].sort((a, b) => a.host.name.localeCompare(b.host.name))
  const release = async () => {
    await Promise.allSettled(held.map((c) => c.exec(releaseLockCommand(info.id))))
  }
  try {
    for (const c of sorted) {
      let r = await c.exec(acquireLockCommand(info))
      if (r.exitCode === 3) {
        const holder = parseLockInfo(r.stdout)
        if (holder && isStaleHere(holder)) {
          io.notify({type: 'warning', message: `${c.host.name}: taking over a stale lock of ${holder.command} (pid ${holder.pid} on this machine is gone, since ${holder.since})`})
          await c.exec(releaseLockCommand(null))
          r = await c.exec(acquireLockCommand(info))
        }
      }
      if (r.exitCode === 3) {
        const holder = parseLockInfo(r.stdout)
        throw new UserError(
          `the cluster is locked on ${c.host.name} by ${holder ? `${holder.who}@${holder.machine} (pid ${holder.pid}, \`${holder.command}\`) since ${holder.since}` : 'an unknown run'}`,
          ['Wait for that run to finish. If it died, run `imctl lock release --force` and then try again.'],
          3,
        )
      }
      held.push(c)
    }
  } catch (e) {
    await release()
    throw e
  }
  return {info, release}
}
