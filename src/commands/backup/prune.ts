import {Flags} from '@oclif/core'
import {BaseCommand, backupKeyFlag, backupToFlag, configFlag, s3EndpointFlags, s3Options} from '../../cli/base.js'
import {pruneBackups} from '../../ops/backup/prune.js'

export default class BackupPrune extends BaseCommand<typeof BackupPrune> {
  static override summary = 'Delete backup sets the retention policy does not keep; never before the newest kept set verifies.'
  static override description = 'Keeps the newest set of each of the last N days, weeks and months that have sets, and always the newest set. Incomplete sets older than a day go too.'
  static override examples = ['<%= config.bin %> backup prune --keep daily=7,weekly=4,monthly=6', '<%= config.bin %> backup prune --keep daily=7 --dry-run --json']
  static override flags = {
    config: configFlag,
    keep: Flags.string({description: 'Retention: daily=N,weekly=N,monthly=N (any of them).', required: true}),
    to: backupToFlag,
    ...s3EndpointFlags,
    key: backupKeyFlag,
    'dry-run': Flags.boolean({description: 'Say what would be deleted; delete nothing.', default: false}),
  }

  async run(): Promise<void> {
    const r = await pruneBackups({configFile: this.flags.config, keep: this.flags.keep, dryRun: this.flags['dry-run'], ...(this.flags.to ? {to: this.flags.to} : {}), ...(s3Options(this.flags) ? {s3: s3Options(this.flags)!} : {}), ...(this.flags.key ? {keyFile: this.flags.key} : {})})
    this.output(r, (x) =>
      [
        `${x.dryRun ? 'Would keep' : 'Kept'} ${x.kept.length} sets (newest ${x.verified} verified): ${x.kept.join(', ')}`,
        `${x.dryRun ? 'Would remove' : 'Removed'} ${x.removed.length} sets${x.removed.length ? `: ${x.removed.join(', ')}` : ''}`,
        ...(x.removedIncomplete.length ? [`${x.dryRun ? 'Would remove' : 'Removed'} incomplete sets: ${x.removedIncomplete.join(', ')}`] : []),
      ].join('\n'),
    )
  }
}
