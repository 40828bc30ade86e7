import {Args, Flags} from '@oclif/core'
import {BaseCommand, backupKeyFlag, backupToFlag, configFlag, s3EndpointFlags, s3Options} from '../../cli/base.js'
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
    ...s3EndpointFlags,
    key: backupKeyFlag,
    deep: Flags.boolean({description: "Also restore every store of the set into a throwaway local sandbox (same release and domain; with MinIO and Kafka when the set has them), run health there and compare: every table's row count, Redis's key count, every object's sha256, Kafka's topic settings, group offsets and record counts.", default: false}),
  }

  async run(): Promise<void> {
    const {args} = await this.parse(BackupVerify)
    const where = {configFile: this.flags.config, id: args.id, ...(this.flags.to ? {to: this.flags.to} : {}), ...(s3Options(this.flags) ? {s3: s3Options(this.flags)!} : {}), ...(this.flags.key ? {keyFile: this.flags.key} : {})}
    const io = terminalIo({interactive: false, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r: DeepVerifyResult = this.flags.deep ? await deepVerifyBackup({...where, io}) : {...(await verifyBackup(where)), deep: null}
    this.output(
      r,
      (x) =>
        x.ok
          ? [
              `Backup set ${x.id}: all ${x.checked} artifacts and the manifest are intact.`,
              ...(x.deep
                ? [
                    `Restored into sandbox ${x.deep.sandbox}: healthy; equal to the set: ${x.deep.tablesCompared} tables' row counts${x.deep.redisKeysCompared ? ', the Redis key count' : ''}` +
                      `${x.deep.objectsCompared ? `, ${x.deep.objectsCompared} objects' sha256` : ''}${x.deep.topicsCompared ? `, ${x.deep.topicsCompared} Kafka topics and ${x.deep.groupsCompared} groups' offsets` : ''}${x.deep.recordsCompared ? `, ${x.deep.recordsCompared} records by count` : ''}.`,
                    ...x.deep.notes.map((n) => `  NOTE ${n}`),
                  ]
                : []),
            ].join('\n')
          : [`Backup set ${x.id} is DAMAGED:`, ...x.problems.map((p) => `  ${p.artifact}: ${p.problem}`)].join('\n'),
      r.ok ? 0 : 1,
    )
  }
}
