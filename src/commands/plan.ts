import {Flags} from '@oclif/core'
import {acceptKeysFlag, BaseCommand, configFlag} from '../cli/base.js'
import {terminalIo} from '../cli/io.js'
import {formatPlan} from '../cli/format.js'
import {planService} from '../ops/install.js'

export default class Plan extends BaseCommand<typeof Plan> {
  static override summary = 'Show what `imctl install` would change, host by host, without changing anything.'
  static override description = 'Connects read-only, observes packages, files and services on every host, and prints each step that would change (with a diff for files).'
  static override examples = ['<%= config.bin %> plan', '<%= config.bin %> plan --json']
  static override flags = {
    config: configFlag,
    'accept-new-host-keys': acceptKeysFlag,
    bundle: Flags.string({description: 'Install from this offline bundle (`imctl bundle create`): hosts get every package and artifact from it and reach no network.'}),
    'purge-data': Flags.boolean({description: 'Plan as `install --purge-data` would: volumes of removed containers go too.', default: false}),
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: !this.nonInteractive, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const result = await planService({configFile: this.flags.config, bundle: this.flags.bundle, acceptNewHostKeys: this.flags['accept-new-host-keys'], purgeData: this.flags['purge-data'], io})
    this.output(result, (r) => formatPlan(r, {diffs: true}))
  }
}
