import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {UserError} from '../../src/errors.js'
import {silentIo} from '../../src/io.js'
import {backupUnits, onCalendar, parseShow, scheduleBackup, systemdQuote, type Systemd} from '../../src/ops/backup/schedule.js'
import {stringify} from 'yaml'
import {ONE_HOST_YAML, SECRETS} from './helpers.js'

describe('backup schedule: calendar, quoting and units', () => {
  it('turns --every and --at into a calendar event that falls at the same times every day', () => {
    assert.deepEqual(onCalendar('1d'), {calendar: '*-*-* 02:00:00', seconds: 86400})
    assert.deepEqual(onCalendar('1d', '23:15'), {calendar: '*-*-* 23:15:00', seconds: 86400})
    assert.deepEqual(onCalendar('6h'), {calendar: '*-*-* 00/6:00:00', seconds: 21600})
    assert.deepEqual(onCalendar('6h', '02:30'), {calendar: '*-*-* 02/6:30:00', seconds: 21600})
    assert.deepEqual(onCalendar('12h', '13:05'), {calendar: '*-*-* 01/12:05:00', seconds: 43200})
    assert.deepEqual(onCalendar('24h', '04:00'), {calendar: '*-*-* 04:00:00', seconds: 86400})
    assert.deepEqual(onCalendar('2d', '3:00'), {calendar: '*-*-1/2 03:00:00', seconds: 172800})
    assert.deepEqual(onCalendar('1w'), {calendar: 'Mon *-*-* 02:00:00', seconds: 604800})
    for (const [every, at] of [['5h', undefined], ['0d', undefined], ['1y', undefined], ['2w', undefined], ['1d', '24:00'], ['1d', '2am'], ['30d', undefined]] as const) {
      assert.throws(() => onCalendar(every, at), UserError, `${every} ${at}`)
    }
  })

  it('quotes ExecStart words the way systemd reads them', () => {
    assert.equal(systemdQuote('/usr/bin/node'), '/usr/bin/node')
    assert.equal(systemdQuote('s3://imctl-backups/nightly'), 's3://imctl-backups/nightly')
    assert.equal(systemdQuote('/srv/my backups'), '"/srv/my backups"')
    assert.equal(systemdQuote('/srv/100%/a"b\\c'), '"/srv/100%%/a\\"b\\\\c"')
    assert.equal(systemdQuote('/srv/$HOME'), '"/srv/$$HOME"')
  })

  it('writes a oneshot service with its output in the journal, and a persistent timer', () => {
    const u = backupUnits({
      unit: 'imctl-backup-chat',
      cluster: 'chat',
      argv: ['/usr/bin/node', '/opt/imctl/bin/run.js', 'backup', 'create', '--json', '-c', '/srv/chat/cluster.yaml', '--key', '/root/.config/imctl/chat.backup-key', '--to', '/srv/my backups'],
      user: 'root',
      every: '1d',
      at: '02:00',
    })
    assert.equal(
      u.service,
      `# Written by \`imctl backup schedule\`; change it with that command, not by hand.
[Unit]
Description=imctl backup of cluster chat
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
User=root
ExecStart=/usr/bin/node /opt/imctl/bin/run.js backup create --json -c /srv/chat/cluster.yaml --key /root/.config/imctl/chat.backup-key --to "/srv/my backups"
StandardOutput=journal
StandardError=journal
TimeoutStartSec=86400
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
`,
    )
    assert.equal(
      u.timer,
      `# Written by \`imctl backup schedule\`; change it with that command, not by hand.
[Unit]
Description=imctl backup of cluster chat, every 1d

[Timer]
OnCalendar=*-*-* 02:00:00
Persistent=true
Unit=imctl-backup-chat.service

[Install]
WantedBy=timers.target
`,
    )
  })

  it('reads systemctl show', () => {
    assert.deepEqual(parseShow('NextElapseUSecRealtime=Fri 2026-11-27 02:00:00 UTC\nLastTriggerUSec=n/a\nUnitFileState=enabled\n'), {NextElapseUSecRealtime: 'Fri 2026-11-27 02:00:00 UTC', LastTriggerUSec: 'n/a', UnitFileState: 'enabled'})
  })
})

/** A systemd that records what it is asked and answers show like a fresh timer. */
function recordingSystemd(unitDir: string, running = true): Systemd & {calls: string[]} {
  const calls: string[] = []
  return {
    calls,
    scope: 'system',
    unitDir,
    available: async () => running,
    systemctl: async (args) => {
      calls.push(args.join(' '))
      if (args[0] === 'show' && args[1]!.endsWith('.timer')) return {exitCode: 0, stdout: 'UnitFileState=enabled\nNextElapseUSecRealtime=Fri 2026-11-27 02:00:00 UTC\n', stderr: ''}
      if (args[0] === 'show') return {exitCode: 0, stdout: 'Result=success\nExecMainStatus=0\nExecMainStartTimestamp=\nExecMainExitTimestamp=\n', stderr: ''}
      return {exitCode: 0, stdout: '', stderr: ''}
    },
  }
}

describe('backup schedule: the service', () => {
  const dir = mkdtempSync(join(tmpdir(), 'imctl-schedule-'))
  const config = join(dir, 'cluster.yaml')
  writeFileSync(config, ONE_HOST_YAML)
  writeFileSync(join(dir, 'solo.secrets.yaml'), stringify(SECRETS), {mode: 0o600})
  const units = join(dir, 'units')
  const base = {configFile: config, keyFile: join(dir, 'key'), io: silentIo, imctl: ['/usr/bin/node', '/opt/imctl/bin/run.js']}

  it('writes both units, reloads, enables the timer, and a second run changes nothing', async () => {
    const sd = recordingSystemd(units)
    const r = await scheduleBackup({...base, every: '1d', at: '03:30', to: 's3://imctl-backups/nightly', systemd: sd})
    assert.equal(r.action, 'scheduled')
    assert.deepEqual(sd.calls.filter((c) => !c.startsWith('show')), ['daemon-reload', 'enable --now imctl-backup-solo.timer', 'restart imctl-backup-solo.timer'])
    assert.match(readFileSync(join(units, 'imctl-backup-solo.service'), 'utf8'), new RegExp(`^ExecStart=/usr/bin/node /opt/imctl/bin/run.js backup create --json -c ${config} --key ${join(dir, 'key')} --to s3://imctl-backups/nightly$`, 'm'))
    assert.deepEqual({schedule: r.schedule, next: r.nextRun, last: r.lastRun, enabled: r.enabled}, {schedule: '*-*-* 03:30:00', next: 'Fri 2026-11-27 02:00:00 UTC', last: null, enabled: true})
    assert.ok(existsSync(join(dir, 'key')), 'the key is made when the schedule is, not in a run nobody watches')
    const again = recordingSystemd(units)
    assert.equal((await scheduleBackup({...base, every: '1d', at: '03:30', to: 's3://imctl-backups/nightly', systemd: again})).action, 'unchanged')
    assert.deepEqual(again.calls.filter((c) => !c.startsWith('show')), ['enable --now imctl-backup-solo.timer'])
  })

  it('--pg-format custom goes onto the command line; directory, the default, does not', async () => {
    const sd = recordingSystemd(units)
    await scheduleBackup({...base, every: '1d', pgFormat: 'custom', systemd: sd})
    assert.match(readFileSync(join(units, 'imctl-backup-solo.service'), 'utf8'), new RegExp(`^ExecStart=/usr/bin/node /opt/imctl/bin/run.js backup create --json -c ${config} --key ${join(dir, 'key')} --pg-format custom$`, 'm'))
    await scheduleBackup({...base, every: '1d', pgFormat: 'directory', systemd: recordingSystemd(units)})
    assert.match(readFileSync(join(units, 'imctl-backup-solo.service'), 'utf8'), new RegExp(`^ExecStart=/usr/bin/node /opt/imctl/bin/run.js backup create --json -c ${config} --key ${join(dir, 'key')}$`, 'm'))
  })

  it('--disable stops the timer and removes the units; a second --disable is fine', async () => {
    const sd = recordingSystemd(units)
    const r = await scheduleBackup({...base, disable: true, systemd: sd})
    assert.deepEqual({action: r.action, installed: r.installed, files: r.files.length}, {action: 'disabled', installed: false, files: 2})
    assert.deepEqual(sd.calls, ['disable --now imctl-backup-solo.timer', 'daemon-reload'])
    assert.equal((await scheduleBackup({...base, disable: true, systemd: recordingSystemd(units)})).files.length, 0)
  })

  it('says so when this machine runs no systemd', async () => {
    await assert.rejects(scheduleBackup({...base, every: '1d', systemd: recordingSystemd(units, false)}), /does not run systemd/)
  })
})
