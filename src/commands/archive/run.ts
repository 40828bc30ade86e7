import {Flags} from '@oclif/core'
import {acceptKeysFlag, BaseCommand, configFlag} from '../../cli/base.js'
import {terminalIo} from '../../cli/io.js'
import {runArchive} from '../../ops/archive/archive.js'

export default class ArchiveRun extends BaseCommand<typeof ArchiveRun> {
  static override summary = "Move ejabberd's archived messages older than a cutoff to MinIO: export, read back, then delete."
  static override description = [
    'Rows of the table `archive` below the cutoff go to the bucket imctl-archive as gzipped JSON-lines objects (consecutive days of one domain, at least 8 MiB each where there is that much),',
    'with a manifest per run (rows, id ranges, sha256 of every object and of every day in it). Each object is read back and compared before its rows are deleted, in batches of',
    '10,000 ids, each in its own transaction. Safe to interrupt: the next run resumes the unfinished one from its manifest.',
  ].join(' ')
  static override examples = ['<%= config.bin %> archive run --older-than 90d --dry-run', '<%= config.bin %> archive run --older-than 90d --json']
  static override flags = {
    config: configFlag,
    'accept-new-host-keys': acceptKeysFlag,
    'older-than': Flags.string({description: 'Archive messages older than this (90d, 12w, 36h).', required: true}),
    'dry-run': Flags.boolean({description: 'Only say how many rows and bytes would move.', default: false}),
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: !this.nonInteractive, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r = await runArchive({configFile: this.flags.config, olderThan: this.flags['older-than'], dryRun: this.flags['dry-run'], acceptNewHostKeys: this.flags['accept-new-host-keys'], io})
    this.output(r, (x) =>
      x.dryRun
        ? [`Would archive ${x.rows} rows (${x.bytes} bytes of JSON before compression) older than ${x.cutoff}:`, ...x.domains.map((d) => `  ${d.domain}: ${d.rows} rows, ${d.bytes} bytes`), ...x.notes].join('\n')
        : [`Run ${x.run} ${x.state}: ${x.rows} rows older than ${x.cutoff} in ${x.objects} objects (${x.bytes} bytes), verified and deleted from the database, in ${x.seconds.toFixed(1)} s.`, ...x.notes].join('\n'),
    )
  }
}
