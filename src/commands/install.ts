import {Flags} from '@oclif/core'
import {acceptKeysFlag, BaseCommand, configFlag} from '../cli/base.js'
import {formatInstall, formatPlan} from '../cli/format.js'
import {planProgress, terminalIo} from '../cli/io.js'
import {beginInstall} from '../ops/install.js'

export default class Install extends BaseCommand<typeof Install> {
  static override summary = 'Install or converge the cluster: apply exactly the plan that `imctl plan` shows.'
  static override description =
    'Hosts work in parallel (the database and Redis before the IM server). A lock stops two runs from overlapping; every host touched gets one audit line in /var/log/imctl/audit.log. On a converged cluster it changes nothing and says so.'
  static override examples = ['<%= config.bin %> install', '<%= config.bin %> install --json --accept-new-host-keys']
  static override flags = {
    config: configFlag,
    'accept-new-host-keys': acceptKeysFlag,
    bundle: Flags.string({description: 'Install from this offline bundle (`imctl bundle create`): hosts get every package and artifact from it and reach no network.'}),
    'purge-data': Flags.boolean({description: 'When a component has moved off an engine host, remove its volumes with its container (default: keep them).', default: false}),
    'show-plan': Flags.boolean({description: 'Print the plan (with diffs) before applying it.', default: false}),
  }

  async run(): Promise<void> {
    const base = terminalIo({interactive: !this.nonInteractive, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const session = await beginInstall({configFile: this.flags.config, bundle: this.flags.bundle, acceptNewHostKeys: this.flags['accept-new-host-keys'], purgeData: this.flags['purge-data'], io: base, command: 'imctl install'})
    try {
      if (this.flags['show-plan'] && !this.flags.json) process.stdout.write(formatPlan(session.plan, {diffs: true}) + '\n\n')
      const renderer = this.flags.json ? 'silent' : process.stdout.isTTY ? 'default' : 'simple'
      const {io, done} = planProgress(session.plan.steps, base, {renderer})
      const result = await session.apply(io)
      await done
      this.output(result, formatInstall, result.failed || result.skipped ? 1 : 0)
    } finally {
      await session.close()
    }
  }
}
