/**
 * `imctl archive schedule`: a systemd timer on the machine that runs imctl (it holds
 * cluster.yaml and the secrets file; no cluster host has them, and none should).
 */
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, writeFileSync} from 'node:fs'
import {hostname} from 'node:os'
import {join, resolve} from 'node:path'
import {UserError} from '../../errors.js'
import {ARCHIVE_BUCKET, parseDuration, SCHEDULE_KEY, type ArchiveSchedule} from './model.js'
import {closeArchiveSession, openArchiveSession, type ArchiveSessionOptions} from './archive.js'

export const DEFAULT_UNIT_DIR = '/etc/systemd/system'

export function unitName(cluster: string): string {
  return `imctl-archive-${cluster}`
}

/** systemd's own time span syntax for a duration of ours. */
function systemdSpan(text: string): string {
  const m = /^(\d+)([smhdw])$/.exec(text)!
  return `${m[1]}${{s: 's', m: 'min', h: 'h', d: 'd', w: 'w'}[m[2]!]}`
}

function unitQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `"${word.replace(/(["\\])/g, '\\$1')}"`
}

/** The service (one archive run, logged to the journal) and the timer that starts it. */
export function archiveUnits(o: {cluster: string; every: string; olderThan: string; node: string; bin: string; configFile: string}): {service: string; timer: string} {
  const exec = [o.node, o.bin, 'archive', 'run', '--older-than', o.olderThan, '-c', o.configFile].map(unitQuote).join(' ')
  const service = [
    '# Written by imctl archive schedule.',
    '[Unit]',
    `Description=imctl: archive old messages of cluster ${o.cluster} to MinIO`,
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${exec}`,
    // A run is resumable: a stop or a kill loses nothing, the next run goes on.
    'TimeoutStartSec=infinity',
    'Nice=10',
    '',
  ].join('\n')
  const timer = [
    '# Written by imctl archive schedule.',
    '[Unit]',
    `Description=imctl: archive old messages of cluster ${o.cluster} every ${o.every}`,
    '',
    '[Timer]',
    'OnBootSec=15min',
    `OnUnitInactiveSec=${systemdSpan(o.every)}`,
    'RandomizedDelaySec=5min',
    `Unit=${unitName(o.cluster)}.service`,
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n')
  return {service, timer}
}

export interface ScheduleOptions extends ArchiveSessionOptions {
  every: string
  olderThan: string
  unitDir?: string
}

export interface ScheduleResult {
  unit: string
  files: string[]
  enabled: boolean
  schedule: ArchiveSchedule
  notes: string[]
}

export async function scheduleArchive(opts: ScheduleOptions): Promise<ScheduleResult> {
  for (const [flag, v] of [['--every', opts.every], ['--older-than', opts.olderThan]] as const) {
    if (!parseDuration(v)) throw new UserError(`${flag} ${JSON.stringify(v)} is not a duration`, ['Write a number and a unit: 1d, 12h, 90d.'])
  }
  if (parseDuration(opts.every)! < 60_000) throw new UserError('--every must be at least 1m')
  const s = await openArchiveSession(opts)
  try {
    const cluster = s.model.config.name
    const unit = unitName(cluster)
    const dir = opts.unitDir ?? DEFAULT_UNIT_DIR
    const units = archiveUnits({cluster, every: opts.every, olderThan: opts.olderThan, node: process.execPath, bin: resolve(process.argv[1] ?? 'bin/run.js'), configFile: resolve(opts.configFile)})
    mkdirSync(dir, {recursive: true})
    const files = [join(dir, `${unit}.service`), join(dir, `${unit}.timer`)]
    writeFileSync(files[0]!, units.service, {mode: 0o644})
    writeFileSync(files[1]!, units.timer, {mode: 0o644})
    const notes: string[] = []
    let enabled = false
    if (dir === DEFAULT_UNIT_DIR && existsSync('/run/systemd/system')) {
      execFileSync('systemctl', ['daemon-reload'])
      execFileSync('systemctl', ['enable', '--now', `${unit}.timer`])
      enabled = true
    } else notes.push(dir === DEFAULT_UNIT_DIR ? 'systemd is not running on this machine: the units are written but not enabled' : `units written to ${dir}: install them into ${DEFAULT_UNIT_DIR} and enable ${unit}.timer`)
    const schedule: ArchiveSchedule = {every: opts.every, olderThan: opts.olderThan, unit, machine: hostname(), installedAt: new Date().toISOString()}
    // Health reads the schedule from the bucket, so it can tell an overdue run from any machine.
    await s.s3.put(ARCHIVE_BUCKET, SCHEDULE_KEY, Buffer.from(JSON.stringify(schedule, null, 1) + '\n'))
    return {unit, files, enabled, schedule, notes}
  } finally {
    await closeArchiveSession(s)
  }
}
