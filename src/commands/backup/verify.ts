import {Args, Flags} from '@oclif/core'
import {BaseCommand, backupKeyFlag, backupToFlag, configFlag} from '../../cli/base.js'
import {verifyBackup} from '../../ops/backup/backup.js'
import {deepVerifyBackup, type DeepVerifyResult} from '../../ops/backup/deep-verify.js'
import {terminalIo} from '../../cli/io.js'

export default class BackupVerify extends BaseCommand<typeof BackupVerify> {
  static override summary = "Check a backup set: the manifest's seal, then every artifact's size, sha256 and encryption tag."
  static override description = 'Exits 1 naming each damaged or missing artifact.'
  static override args = {id: Args.string({description: 'The set, as `imctl backup list` shows it.', required: true})}
  static override flags = {
    config: configFlag,
    to: backupToFlag,
    key: backupKeyFlag,
    deep: Flags.boolean({description: 'Also restore the set into a throwaway local sandbox (same release and domain), run health there and compare every table\'s row count.', default: false}),
  }

  async run(): Promise<void> {
    const {args} = await this.parse(BackupVerify)
    const where = {configFile: this.flags.config, id: args.id, ...(this.flags.to ? {to: this.flags.to} : {}), ...(this.flags.key ? {keyFile: this.flags.key} : {})}
    const io = terminalIo({interactive: false, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r: DeepVerifyResult = this.flags.deep ? await deepVerifyBackup({...where, io}) : {...(await verifyBackup(where)), deep: null}
    this.output(
      r,
      (x) =>
        x.ok
          ? `Backup set ${x.id}: all ${x.checked} artifacts and the manifest are intact.${x.deep ? ` Restored into sandbox ${x.deep.sandbox}: healthy, ${x.deep.tablesCompared} tables' row counts equal.` : ''}`
          : [`Backup set ${x.id} is DAMAGED:`, ...x.problems.map((p) => `  ${p.artifact}: ${p.problem}`)].join('\n'),
      r.ok ? 0 : 1,
    )
  }
}
