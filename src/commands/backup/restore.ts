import {Args, Flags} from '@oclif/core'
import {acceptKeysFlag, BaseCommand, backupKeyFlag, backupToFlag, configFlag, s3EndpointFlags, s3Options} from '../../cli/base.js'
import {terminalIo} from '../../cli/io.js'
import {restoreBackup} from '../../ops/backup/restore.js'

export default class BackupRestore extends BaseCommand<typeof BackupRestore> {
  static override summary = 'Restore a verified backup set onto the cluster, then run health.'
  static override description = [
    'Verifies the set first and refuses a damaged one, or one made on another release (unless --allow-other-release).',
    'Stops ejabberd, restores PostgreSQL into a new database and swaps it in, puts the Redis RDB in place and rebuilds its AOF,',
    "starts ejabberd and loads its internal database; puts MinIO's buckets and objects back; creates Kafka's missing topics, writes their records",
    "back when the set has them and sets the consumer groups' offsets (refused up front while a group has members); then runs health.",
    'Nothing is dropped: the current database and Redis files are kept aside under names carrying the set id and the time, and a MinIO',
    'object with other content is copied under .imctl-before-restore/ in its bucket first. If a restore is interrupted, run it again: it completes.',
  ].join(' ')
  static override examples = ['<%= config.bin %> backup restore 20261126T170510Z']
  static override args = {id: Args.string({description: 'The set, as `imctl backup list` shows it.', required: true})}
  static override flags = {
    config: configFlag,
    'accept-new-host-keys': acceptKeysFlag,
    to: backupToFlag,
    ...s3EndpointFlags,
    key: backupKeyFlag,
    'allow-other-release': Flags.boolean({description: 'Restore a set made on another release: its data may not fit this release\'s schema.', default: false}),
  }

  async run(): Promise<void> {
    const {args} = await this.parse(BackupRestore)
    const io = terminalIo({interactive: !this.nonInteractive, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r = await restoreBackup({
      configFile: this.flags.config,
      id: args.id,
      ...(this.flags.to ? {to: this.flags.to} : {}),
      ...(s3Options(this.flags) ? {s3: s3Options(this.flags)!} : {}),
      ...(this.flags.key ? {keyFile: this.flags.key} : {}),
      allowOtherRelease: this.flags['allow-other-release'],
      acceptNewHostKeys: this.flags['accept-new-host-keys'],
      io,
    })
    this.output(
      r,
      (x) =>
        [
          `Restored backup set ${x.id} onto cluster ${x.cluster}; health: ${x.healthy ? 'HEALTHY' : 'UNHEALTHY'}`,
          'Kept aside (drop them once you are sure):',
          ...x.keptAside.map((k) => `  ${k}`),
          ...x.health.filter((h) => !h.ok).map((h) => `  FAIL ${h.host} ${h.component} ${h.check}: ${h.detail}`),
        ].join('\n'),
      r.healthy ? 0 : 1,
    )
  }
}
