import {Flags} from '@oclif/core'
import {BaseCommand, backupKeyFlag, backupToFlag, configFlag} from '../../cli/base.js'
import {terminalIo} from '../../cli/io.js'
import {scheduleBackup} from '../../ops/backup/schedule.js'

export default class BackupSchedule extends BaseCommand<typeof BackupSchedule> {
  static override summary = 'Run `imctl backup create` on a schedule: a systemd timer on this machine, its output in the journal.'
  static override description = [
    'The timer lives on the machine that runs imctl, which holds cluster.yaml, the secrets and the backup key, not on a cluster host:',
    'there imctl and the key would have to live beside the data they protect. As root the units go to /etc/systemd/system and run as root;',
    'otherwise they are your own user units (~/.config/systemd/user). Runs missed while the machine was off happen when it is back.',
  ].join(' ')
  static override examples = [
    '<%= config.bin %> backup schedule --every 1d --at 02:00',
    '<%= config.bin %> backup schedule --every 6h --to s3://imctl-backups/hourly',
    '<%= config.bin %> backup schedule --status',
    '<%= config.bin %> backup schedule --disable',
  ]
  static override flags = {
    config: configFlag,
    every: Flags.string({description: 'How often: Nh (N divides 24), Nd (up to 28) or 1w (Mondays).', exclusive: ['status', 'disable']}),
    at: Flags.string({description: 'Time of day of the runs, HH:MM in this machine\'s time zone (default 02:00; for Nh, 00:00).', dependsOn: ['every']}),
    to: backupToFlag,
    key: backupKeyFlag,
    'kafka-data': Flags.boolean({description: 'Back up every Kafka record too.', default: false}),
    'pg-format': Flags.string({description: 'PostgreSQL dump format of the runs (see `backup create --pg-format`): directory (parallel, staged on the database host) or custom (streamed, no copy on the host, for a host short of disk).', options: ['directory', 'custom'], default: 'directory'}),
    status: Flags.boolean({description: 'Show the schedule, its next run and how the last one went.', default: false, exclusive: ['disable']}),
    disable: Flags.boolean({description: 'Stop the schedule and remove its units (the sets stay).', default: false}),
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: false, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r = await scheduleBackup({
      configFile: this.flags.config,
      ...(this.flags.every ? {every: this.flags.every} : {}),
      ...(this.flags.at ? {at: this.flags.at} : {}),
      ...(this.flags.to ? {to: this.flags.to} : {}),
      ...(this.flags.key ? {keyFile: this.flags.key} : {}),
      kafkaData: this.flags['kafka-data'],
      pgFormat: this.flags['pg-format'] as 'custom' | 'directory',
      status: this.flags.status,
      disable: this.flags.disable,
      io,
    })
    this.output(r, (x) => {
      if (x.action === 'disabled') return `The backup schedule ${x.unit} is off${x.files.length ? `; removed ${x.files.join(', ')}` : ' (it was not there)'}.`
      if (!x.installed) return `No backup schedule (${x.unit}) on this machine. Make one with \`imctl backup schedule --every 1d\`.`
      return [
        `${x.action === 'scheduled' ? 'Scheduled' : x.action === 'unchanged' ? 'Scheduled already' : 'Schedule'} ${x.unit} (${x.scope} units): ${x.schedule}${x.enabled ? '' : ' (NOT enabled)'}`,
        `  runs:     ${x.command}`,
        `  next run: ${x.nextRun ?? 'none'}`,
        `  last run: ${x.lastRun ? `${x.lastRun.started ?? '?'}: ${x.lastRun.finished ? `${x.lastRun.result}, exit ${x.lastRun.exitStatus}` : 'running'}` : 'never'}`,
        `  logs:     ${x.logs}`,
      ].join('\n')
    })
  }
}
