import {Flags} from '@oclif/core'
import {acceptKeysFlag, BaseCommand, backupKeyFlag, configFlag} from '../../cli/base.js'
import {parseDuration} from '../../cli/duration.js'
import {formatUpgrade} from '../../cli/format-upgrade.js'
import {terminalIo} from '../../cli/io.js'
import {upgradeService} from '../../ops/upgrade/upgrade.js'

export default class Upgrade extends BaseCommand<typeof Upgrade> {
  static override summary = 'Upgrade the cluster to another release along its planned path, rolling back on failure.'
  static override description = [
    'Refuses before any change unless the cluster is converged and healthy, every host has disk space, and a verified backup of the current release',
    'is at most --backup-max-age old (else it takes one). Then, for each hop of the path (`imctl upgrade plan` shows it): apt sources and artifacts on every host,',
    'then one component on one host at a time (Kafka: one node, then every partition\'s ISR full again before the next), a health gate after each,',
    'the release\'s migrations, and Kafka\'s feature bump once every node runs the new jars. cluster.yaml\'s release: changes (comments kept) once a hop succeeded.',
    'On a failure the hop is rolled back: packages to the versions installed before, the old files and services, the backup restored when a store was touched; then health. Exit 1.',
  ].join(' ')
  static override examples = ['<%= config.bin %> upgrade --to ejabberd-24.12-debian12', '<%= config.bin %> upgrade --to ejabberd-24.12-debian12 --backup-max-age 1h --json']
  static override flags = {
    config: configFlag,
    'accept-new-host-keys': acceptKeysFlag,
    to: Flags.string({description: 'The release to reach (a file under manifests/).', required: true}),
    'backup-max-age': Flags.string({description: 'A verified backup of the current release at most this old will do (e.g. 6h, 30m); else one is taken.', default: '6h'}),
    backups: Flags.string({description: 'Directory that holds the backup sets (default: backups/ beside cluster.yaml).'}),
    key: backupKeyFlag,
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: !this.nonInteractive, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r = await upgradeService({
      configFile: this.flags.config,
      to: this.flags.to,
      backupMaxAgeMs: parseDuration(this.flags['backup-max-age'], '--backup-max-age'),
      ...(this.flags.backups ? {backupTo: this.flags.backups} : {}),
      ...(this.flags.key ? {keyFile: this.flags.key} : {}),
      acceptNewHostKeys: this.flags['accept-new-host-keys'],
      ...(process.env.IMCTL_TEST_UPGRADE_FAIL_AFTER ? {failAfter: process.env.IMCTL_TEST_UPGRADE_FAIL_AFTER} : {}),
      io,
    })
    this.output(r, formatUpgrade, r.status === 'upgraded' || r.status === 'unchanged' ? 0 : 1)
  }
}
