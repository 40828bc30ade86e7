import {hostname, userInfo} from 'node:os'
import {shScript, type RemoteCommand} from '../transport/command.js'

export const AUDIT_LOG = '/var/log/imctl/audit.log'

export interface AuditEntry {
  at: string
  who: string
  machine: string
  command: string
  release: string
  result: 'ok' | 'failed' | 'interrupted'
  changed: number
  failed: number
  steps: string[]
}

export function auditEntry(command: string, release: string, result: AuditEntry['result'], changed: number, failed: number, steps: string[]): AuditEntry {
  return {at: new Date().toISOString(), who: userInfo().username, machine: hostname(), command, release, result, changed, failed, steps}
}

/** Appends one JSON line; entries carry step descriptions only, never file contents or secrets. */
export function appendAuditCommand(entry: AuditEntry): RemoteCommand {
  return {
    argv: shScript('mkdir -p "${1%/*}" && chmod 750 "${1%/*}" && cat >> "$1" && chmod 640 "$1"', [AUDIT_LOG]),
    stdin: JSON.stringify(entry) + '\n',
    root: true,
    description: 'append to the audit log',
  }
}
