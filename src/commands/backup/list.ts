import {BaseCommand, backupToFlag, configFlag, s3EndpointFlags, s3Options} from '../../cli/base.js'
import {listBackups} from '../../ops/backup/backup.js'

export default class BackupList extends BaseCommand<typeof BackupList> {
  static override summary = 'List backup sets; a set without its manifest is shown as incomplete and is never used.'
  static override flags = {
    config: configFlag,
    to: backupToFlag,
    ...s3EndpointFlags,
  }

  async run(): Promise<void> {
    const r = await listBackups({configFile: this.flags.config, ...(this.flags.to ? {to: this.flags.to} : {}), ...(s3Options(this.flags) ? {s3: s3Options(this.flags)!} : {})})
    this.output(r, (x) =>
      x.sets.length
        ? [`Backup sets in ${x.root}:`, ...x.sets.map((s) => `  ${s.id}  ${s.complete ? 'complete  ' : 'INCOMPLETE'}  ${s.artifacts} artifacts, ${s.bytes} bytes${s.release ? `, release ${s.release}` : ''}`)].join('\n')
        : `No backup sets in ${x.root}.`,
    )
  }
}
