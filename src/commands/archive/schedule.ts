import {Flags} from '@oclif/core'
import {acceptKeysFlag, BaseCommand, configFlag} from '../../cli/base.js'
import {terminalIo} from '../../cli/io.js'
import {scheduleArchive} from '../../ops/archive/schedule.js'

export default class ArchiveSchedule extends BaseCommand<typeof ArchiveSchedule> {
  static override summary = 'Run `archive run` on a systemd timer on this machine (it holds cluster.yaml and the secrets); health reports the last run.'
  static override examples = ['<%= config.bin %> archive schedule --every 1d --older-than 90d']
  static override flags = {
    config: configFlag,
    'accept-new-host-keys': acceptKeysFlag,
    every: Flags.string({description: 'How often (1d, 12h).', required: true}),
    'older-than': Flags.string({description: 'Archive messages older than this (90d).', required: true}),
    'unit-dir': Flags.string({description: 'Write the units here instead of /etc/systemd/system (they are then not enabled).'}),
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: !this.nonInteractive, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r = await scheduleArchive({configFile: this.flags.config, every: this.flags.every, olderThan: this.flags['older-than'], ...(this.flags['unit-dir'] ? {unitDir: this.flags['unit-dir']} : {}), acceptNewHostKeys: this.flags['accept-new-host-keys'], io})
    for (const n of r.notes) this.warn2(n)
    this.output(r, (x) => [`${x.unit}.timer ${x.enabled ? 'enabled' : 'written'}: every ${x.schedule.every}, archive run --older-than ${x.schedule.olderThan}. Its runs log to the journal (journalctl -u ${x.unit}).`, ...x.files.map((f) => `  ${f}`)].join('\n'))
  }
}
