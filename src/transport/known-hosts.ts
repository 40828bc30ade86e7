import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, appendFileSync} from 'node:fs'
import {dirname} from 'node:path'

/** A host key as sent by the server: its algorithm and raw blob. */
export interface HostKey {
  type: string
  blob: Buffer
}

export function parseHostKeyBlob(blob: Buffer): HostKey {
  const len = blob.readUInt32BE(0)
  return {type: blob.subarray(4, 4 + len).toString('ascii'), blob}
}

/** OpenSSH's fingerprint form: SHA256:base64-without-padding. */
export function fingerprint(key: HostKey): string {
  return 'SHA256:' + createHash('sha256').update(key.blob).digest('base64').replace(/=+$/, '')
}

/** How an endpoint is named in known_hosts, as OpenSSH does: `addr` on 22, `[addr]:port` otherwise. */
export function endpointName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`
}

export type HostKeyVerdict = {kind: 'known'} | {kind: 'unknown'} | {kind: 'changed'; pinned: string[]}

/** The host keys imctl has pinned, kept in a file in OpenSSH's known_hosts format. */
export class KnownHosts {
  constructor(readonly file: string) {}

  private entries(): {name: string; type: string; b64: string}[] {
    if (!existsSync(this.file)) return []
    return readFileSync(this.file, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => {
        const [names = '', type = '', b64 = ''] = l.split(/\s+/)
        return names.split(',').map((name) => ({name, type, b64}))
      })
      .flat()
  }

  /** Key types pinned for an endpoint (to ask the server for one of those first). */
  pinnedTypes(address: string, port: number): string[] {
    const name = endpointName(address, port)
    return this.entries().filter((e) => e.name === name).map((e) => e.type)
  }

  check(address: string, port: number, key: HostKey): HostKeyVerdict {
    const name = endpointName(address, port)
    const mine = this.entries().filter((e) => e.name === name)
    if (!mine.length) return {kind: 'unknown'}
    const b64 = key.blob.toString('base64')
    if (mine.some((e) => e.type === key.type && e.b64 === b64)) return {kind: 'known'}
    return {kind: 'changed', pinned: mine.map((e) => `${e.type} ${fingerprint({type: e.type, blob: Buffer.from(e.b64, 'base64')})}`)}
  }

  add(address: string, port: number, key: HostKey): void {
    mkdirSync(dirname(this.file), {recursive: true, mode: 0o700})
    appendFileSync(this.file, `${endpointName(address, port)} ${key.type} ${key.blob.toString('base64')}\n`, {mode: 0o600})
  }
}
