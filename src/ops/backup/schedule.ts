import {existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {homedir, userInfo} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {execa} from 'execa'
import {UserError} from '../../errors.js'
import type {IoHost} from '../../io.js'
import {packageRoot} from '../../paths.js'
import {loadCluster} from '../cluster.js'
import {defaultKeyFile} from './backup.js'
import {loadBackupKey} from './crypto.js'
import {isS3, parseS3Url} from './store.js'

/** `--every 6h|1d|2d|1w` and `--at HH:MM` as a systemd calendar event, and the interval in seconds. */
export function onCalendar(every: string, at?: string): {calendar: string; seconds: number} {
  const m = /^([1-9]\d{0,2})([hdw])$/.exec(every)
  if (!m) throw new UserError(`--every ${every}: write a number of hours, days or weeks, e.g. 6h, 1d, 1w`)
  const n = Number(m[1])
  const unit = m[2]!
  const t = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec(at ?? (unit === 'h' ? '00:00' : '02:00'))
  if (!t) throw new UserError(`--at ${at}: write a time of day as HH:MM, e.g. 02:00`)
  const [hh, mm] = [Number(t[1]), t[2]!]
  const pad = (x: number) => String(x).padStart(2, '0')
  if (unit === 'h') {
    if (24 % n) throw new UserError(`--every ${every}: the hours must divide a day (1, 2, 3, 4, 6, 8, 12 or 24h), so runs fall at the same times every day`)
    // Runs at --at and every n hours from there, around the clock.
    return {calendar: n === 24 ? `*-*-* ${pad(hh)}:${mm}:00` : `*-*-* ${pad(hh % n)}/${n}:${mm}:00`, seconds: n * 3600}
  }
  if (unit === 'd') {
    if (n > 28) throw new UserError(`--every ${every}: at most 28d; use 1w for weekly runs`)
    // Every n-th day of the month from the 1st: the count starts again each month.
    return {calendar: n === 1 ? `*-*-* ${pad(hh)}:${mm}:00` : `*-*-1/${n} ${pad(hh)}:${mm}:00`, seconds: n * 86400}
  }
  if (n !== 1) throw new UserError(`--every ${every}: weeks go only as 1w (on Mondays); use days for other intervals`)
  return {calendar: `Mon *-*-* ${pad(hh)}:${mm}:00`, seconds: 7 * 86400}
}

/** One word of an ExecStart line, quoted as systemd reads it (its own rules, not a shell's): `%` and `$` are doubled. */
export function systemdQuote(word: string): string {
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$')
  if (/^[A-Za-z0-9_@+=:,./-]+$/.test(escaped)) return escaped
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

export interface BackupUnitSpec {
  /** The unit's name without suffix: imctl-backup-<cluster>. */
  unit: string
  cluster: string
  argv: string[]
  /** System units run as this user; a user's own units run as that user anyway. */
  user?: string
  every: string
  at?: string
}

/** The service (one `imctl backup create --json` run, its output in the journal) and its timer. Pure. */
export function backupUnits(spec: BackupUnitSpec): {service: string; timer: string; calendar: string} {
  const {calendar, seconds} = onCalendar(spec.every, spec.at)
  const service = [
    '# Written by `imctl backup schedule`; change it with that command, not by hand.',
    '[Unit]',
    `Description=imctl backup of cluster ${spec.cluster}`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    ...(spec.user ? [`User=${spec.user}`] : []),
    `ExecStart=${spec.argv.map(systemdQuote).join(' ')}`,
    // Its JSON result and progress lines stay in the journal: journalctl -u <unit>.
    'StandardOutput=journal',
    'StandardError=journal',
    // A run that hangs is stopped before the next one is due.
    `TimeoutStartSec=${seconds}`,
    'Nice=10',
    'IOSchedulingClass=best-effort',
    'IOSchedulingPriority=7',
    '',
  ].join('\n')
  const timer = [
    '# Written by `imctl backup schedule`; change it with that command, not by hand.',
    '[Unit]',
    `Description=imctl backup of cluster ${spec.cluster}, every ${spec.every}`,
    '',
    '[Timer]',
    `OnCalendar=${calendar}`,
    // A run missed while this machine was off happens once it is back.
    'Persistent=true',
    `Unit=${spec.unit}.service`,
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n')
  return {service, timer, calendar}
}

/** `systemctl show` output (Key=value lines) as a record. */
export function parseShow(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  )
}

/** The systemd that runs the timer: this machine's (system units as root, the user's own otherwise). */
export interface Systemd {
  scope: 'system' | 'user'
  unitDir: string
  /** Whether systemd runs here at all. */
  available(): Promise<boolean>
  systemctl(args: string[]): Promise<{exitCode: number; stdout: string; stderr: string}>
}

export function localSystemd(): Systemd {
  const root = process.getuid?.() === 0
  const scope = root ? 'system' : 'user'
  return {
    scope,
    unitDir: root ? '/etc/systemd/system' : join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'systemd', 'user'),
    available: async () => existsSync('/run/systemd/system'),
    async systemctl(args) {
      const r = await execa('systemctl', [...(root ? [] : ['--user']), ...args], {reject: false, stdin: 'ignore'})
      return {exitCode: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr}
    },
  }
}

export interface ScheduleStatus {
  unit: string
  scope: 'system' | 'user'
  installed: boolean
  enabled: boolean
  schedule: string | null
  command: string | null
  nextRun: string | null
  lastRun: {started: string | null; finished: string | null; result: string | null; exitStatus: number | null} | null
  logs: string
}

export interface ScheduleResult extends ScheduleStatus {
  action: 'scheduled' | 'unchanged' | 'disabled' | 'status'
  files: string[]
}

export interface ScheduleOptions {
  configFile: string
  every?: string
  at?: string
  to?: string
  keyFile?: string
  kafkaData?: boolean
  /** PostgreSQL's dump format for the runs; `directory`, the default, is left off the command line. */
  pgFormat?: 'custom' | 'directory'
  disable?: boolean
  status?: boolean
  systemd?: Systemd
  io: IoHost
  /** The imctl to run: node and bin/run.js of this checkout or install (tests pin them). */
  imctl?: string[]
}

export function unitName(cluster: string): string {
  return `imctl-backup-${cluster}`
}

/** Writes a file only when its content differs, atomically (temp file, rename); true when it changed. */
function writeUnit(file: string, content: string): boolean {
  if (existsSync(file) && readFileSync(file, 'utf8') === content) return false
  mkdirSync(dirname(file), {recursive: true})
  const tmp = `${file}.imctl-tmp-${process.pid}`
  writeFileSync(tmp, content, {mode: 0o644})
  renameSync(tmp, file)
  return true
}

/**
 * `imctl backup schedule`: a systemd timer on this machine (the one with
 * cluster.yaml, the secrets and the backup key) that runs `imctl backup create
 * --json`; `--status` shows its next and last runs; `--disable` removes it.
 */
export async function scheduleBackup(opts: ScheduleOptions): Promise<ScheduleResult> {
  const model = loadCluster(opts.configFile)
  const systemd = opts.systemd ?? localSystemd()
  const unit = unitName(model.config.name)
  const files = [join(systemd.unitDir, `${unit}.service`), join(systemd.unitDir, `${unit}.timer`)]
  const ctl = async (args: string[], what: string, ok = [0]) => {
    const r = await systemd.systemctl(args)
    if (!ok.includes(r.exitCode)) throw new UserError(`systemctl ${args.join(' ')} (${what}) failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`, [systemd.scope === 'user' ? 'Is there a systemd user instance (`systemctl --user status`)? Run as root to use system units instead.' : 'See `journalctl -xe`.'])
    return r
  }
  if (!(await systemd.available())) {
    throw new UserError('this machine does not run systemd, which runs the schedule', ['Run `imctl backup create --json -c <cluster.yaml>` from another scheduler (cron) instead, or schedule from a machine with systemd.'])
  }

  if (opts.disable) {
    await ctl(['disable', '--now', `${unit}.timer`], 'stop and disable the timer', [0, 1, 5])
    const removed = files.filter((f) => existsSync(f))
    for (const f of removed) rmSync(f)
    await ctl(['daemon-reload'], 're-read the units')
    return {...(await status(systemd, unit, files)), action: 'disabled', files: removed}
  }
  if (opts.status || !opts.every) {
    if (!opts.status) throw new UserError('say how often: --every 1d (with --at 02:00), or --status, or --disable')
    return {...(await status(systemd, unit, files)), action: 'status', files}
  }

  if (opts.to && isS3(opts.to) && !parseS3Url(opts.to)) throw new UserError(`--to ${opts.to}: write s3://BUCKET or s3://BUCKET/PREFIX`)
  const configFile = resolve(opts.configFile)
  const keyFile = resolve(opts.keyFile ?? defaultKeyFile(model.config.name))
  // Made now, with the warning where someone reads it, not later in a journal.
  const key = loadBackupKey(keyFile, true)
  if (key.created) opts.io.notify({type: 'warning', message: `created the backup key ${keyFile}: keep a copy apart from the backups and the cluster; without it no set can be restored`})
  const imctl = opts.imctl ?? [process.execPath, join(packageRoot, 'bin', 'run.js')]
  const argv = [...imctl, 'backup', 'create', '--json', '-c', configFile, '--key', keyFile, ...(opts.to ? ['--to', isS3(opts.to) ? opts.to : resolve(opts.to)] : []), ...(opts.kafkaData ? ['--kafka-data'] : []), ...(opts.pgFormat === 'custom' ? ['--pg-format', 'custom'] : [])]
  const units = backupUnits({unit, cluster: model.config.name, argv, ...(systemd.scope === 'system' ? {user: userInfo().username} : {}), every: opts.every, ...(opts.at ? {at: opts.at} : {})})
  const changed = [writeUnit(files[0]!, units.service), writeUnit(files[1]!, units.timer)].some(Boolean)
  if (changed) await ctl(['daemon-reload'], 're-read the units')
  await ctl(['enable', '--now', `${unit}.timer`], 'enable and start the timer')
  // A changed schedule takes effect at once: restart recomputes the next run.
  if (changed) await ctl(['restart', `${unit}.timer`], 'restart the timer')
  if (systemd.scope === 'user') opts.io.notify({type: 'warning', message: `the timer is one of your own user units: it runs while you are logged in, or always after \`loginctl enable-linger ${userInfo().username}\``})
  return {...(await status(systemd, unit, files)), action: changed ? 'scheduled' : 'unchanged', files}
}

const never = (v: string | undefined) => (!v || v === 'n/a' || v === '0' ? null : v)

async function status(systemd: Systemd, unit: string, files: string[]): Promise<ScheduleStatus> {
  const installed = existsSync(files[1]!)
  const base = {unit, scope: systemd.scope, logs: `journalctl ${systemd.scope === 'user' ? '--user ' : ''}-u ${unit}.service`}
  if (!installed) return {...base, installed: false, enabled: false, schedule: null, command: null, nextRun: null, lastRun: null}
  const timer = parseShow((await systemd.systemctl(['show', `${unit}.timer`, '-p', 'UnitFileState', '-p', 'NextElapseUSecRealtime'])).stdout)
  const service = parseShow((await systemd.systemctl(['show', `${unit}.service`, '-p', 'Result', '-p', 'ExecMainStatus', '-p', 'ExecMainStartTimestamp', '-p', 'ExecMainExitTimestamp'])).stdout)
  const unitText = (f: string, key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(readFileSync(f, 'utf8'))?.[1] ?? null
  const started = never(service.ExecMainStartTimestamp)
  return {
    ...base,
    installed: true,
    enabled: timer.UnitFileState === 'enabled',
    schedule: unitText(files[1]!, 'OnCalendar'),
    command: unitText(files[0]!, 'ExecStart'),
    nextRun: never(timer.NextElapseUSecRealtime),
    // The timer's own LastTriggerUSec is set when a persistent timer first starts, before any run: the service's times are what happened.
    lastRun: started ? {started, finished: never(service.ExecMainExitTimestamp), result: service.Result ?? null, exitStatus: service.ExecMainStatus === undefined ? null : Number(service.ExecMainStatus)} : null,
  }
}
