import {Flags} from '@oclif/core'
import {acceptKeysFlag, BaseCommand, configFlag} from '../cli/base.js'
import {formatHealth} from '../cli/format.js'
import {terminalIo} from '../cli/io.js'
import {healthService} from '../ops/health.js'

export default class Health extends BaseCommand<typeof Health> {
  static override summary = 'Check every component for real: database login, Redis PING, and a chat message delivered over WebSocket.'
  static override description = 'Checks run in parallel. Exits 1 when any check fails, naming the host, component and reason; exits 5 when the cluster is degraded (a node of a clustered component is down, but the component still serves).'
  static override examples = ['<%= config.bin %> health', '<%= config.bin %> health --json']
  static override flags = {
    config: configFlag,
    'accept-new-host-keys': acceptKeysFlag,
    'message-timeout': Flags.integer({description: 'Seconds to wait for the test message.', default: 20}),
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: !this.nonInteractive, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const report = await healthService({configFile: this.flags.config, acceptNewHostKeys: this.flags['accept-new-host-keys'], io, messageTimeout: this.flags['message-timeout']})
    this.output(report, formatHealth, report.status === 'healthy' ? 0 : report.status === 'degraded' ? 5 : 1)
  }
}
