import {Flags} from '@oclif/core'
import {acceptKeysFlag, BaseCommand, configFlag} from '../../cli/base.js'
import {parseDuration} from '../../cli/duration.js'
import {formatUpgradePlan} from '../../cli/format-upgrade.js'
import {terminalIo} from '../../cli/io.js'
import {upgradePlanService} from '../../ops/upgrade/plan-service.js'

export default class UpgradePlan extends BaseCommand<typeof UpgradePlan> {
  static override summary = 'Show how `imctl upgrade --to R` would go, without changing anything.'
  static override description =
    'The path of releases (each lists the one before it in upgradeFrom), and for each hop: what changes on every host, which services restart and in which order, migrations, and the expected downtime per component with how it is estimated.'
  static override examples = ['<%= config.bin %> upgrade plan --to ejabberd-24.12-debian12', '<%= config.bin %> upgrade plan --to ejabberd-24.12-debian12 --json']
  static override flags = {
    config: configFlag,
    'accept-new-host-keys': acceptKeysFlag,
    to: Flags.string({description: 'The release to reach (a file under manifests/).', required: true}),
    'backup-max-age': Flags.string({description: 'As for `imctl upgrade` (shown in the preflight list).', default: '6h'}),
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: !this.nonInteractive, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r = await upgradePlanService({configFile: this.flags.config, to: this.flags.to, backupMaxAgeMs: parseDuration(this.flags['backup-max-age'], '--backup-max-age'), acceptNewHostKeys: this.flags['accept-new-host-keys'], io})
    this.output(r, formatUpgradePlan, r.blockers.length ? 1 : 0)
  }
}
