import {Flags} from '@oclif/core'
import {acceptKeysFlag, BaseCommand, configFlag} from '../../cli/base.js'
import {terminalIo} from '../../cli/io.js'
import {restoreArchive} from '../../ops/archive/archive.js'

export default class ArchiveRestore extends BaseCommand<typeof ArchiveRestore> {
  static override summary = 'Put archived messages of some days back into the database, exactly as they were; rows already there are skipped.'
  static override examples = ['<%= config.bin %> archive restore --from 2026-03-01 --to 2026-03-31']
  static override flags = {
    config: configFlag,
    'accept-new-host-keys': acceptKeysFlag,
    from: Flags.string({description: 'First day (YYYY-MM-DD, UTC).', required: true}),
    to: Flags.string({description: 'Last day (YYYY-MM-DD, UTC), included.', required: true}),
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: !this.nonInteractive, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r = await restoreArchive({configFile: this.flags.config, from: this.flags.from, to: this.flags.to, acceptNewHostKeys: this.flags['accept-new-host-keys'], io})
    this.output(r, (x) => `Restored ${x.from}..${x.to}: ${x.inserted} rows inserted, ${x.alreadyPresent} were there already, from ${x.objects} objects in ${x.seconds.toFixed(1)} s.`)
  }
}
