import {acceptKeysFlag, BaseCommand, configFlag} from '../../cli/base.js'
import {terminalIo} from '../../cli/io.js'
import {listArchive} from '../../ops/archive/archive.js'

export default class ArchiveList extends BaseCommand<typeof ArchiveList> {
  static override summary = 'List archive runs and what the archive holds (objects, rows, days), from the manifests in MinIO.'
  static override flags = {config: configFlag, 'accept-new-host-keys': acceptKeysFlag}

  async run(): Promise<void> {
    const io = terminalIo({interactive: !this.nonInteractive, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r = await listArchive({configFile: this.flags.config, acceptNewHostKeys: this.flags['accept-new-host-keys'], io})
    this.output(r, (x) =>
      [
        x.runs.length ? `${x.rows} rows in ${x.objects} objects (${x.bytes} bytes), days ${x.firstDay}..${x.lastDay}:` : 'No archive runs yet.',
        ...x.runs.map((m) => `  ${m.id}  ${m.state.padEnd(7)}  cutoff ${m.cutoff}  ${m.rows} rows (${m.deletedRows} deleted from the database) in ${m.objects} objects, ${m.bytes} bytes${m.error ? `  error: ${m.error}` : ''}`),
        x.schedule ? `Scheduled every ${x.schedule.every} (older than ${x.schedule.olderThan}) by ${x.schedule.unit} on ${x.schedule.machine}.` : 'Not scheduled.',
      ].join('\n'),
    )
  }
}
