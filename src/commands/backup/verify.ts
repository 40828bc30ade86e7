import {Args} from '@oclif/core'
import {BaseCommand, backupKeyFlag, backupToFlag, configFlag} from '../../cli/base.js'
import {verifyBackup} from '../../ops/backup/backup.js'

export default class BackupVerify extends BaseCommand<typeof BackupVerify> {
  static override summary = "Check a backup set: the manifest's seal, then every artifact's size, sha256 and encryption tag."
  static override description = 'Exits 1 naming each damaged or missing artifact.'
  static override args = {id: Args.string({description: 'The set, as `imctl backup list` shows it.', required: true})}
  static override flags = {
    config: configFlag,
    to: backupToFlag,
    key: backupKeyFlag,
  }

  async run(): Promise<void> {
    const {args} = await this.parse(BackupVerify)
    const r = await verifyBackup({configFile: this.flags.config, id: args.id, ...(this.flags.to ? {to: this.flags.to} : {}), ...(this.flags.key ? {keyFile: this.flags.key} : {})})
    this.output(
      r,
      (x) => (x.ok ? `Backup set ${x.id}: all ${x.checked} artifacts and the manifest are intact.` : [`Backup set ${x.id} is DAMAGED:`, ...x.problems.map((p) => `  ${p.artifact}: ${p.problem}`)].join('\n')),
      r.ok ? 0 : 1,
    )
  }
}
