import {Flags} from '@oclif/core'
import {acceptKeysFlag, BaseCommand, configFlag} from '../../cli/base.js'
import {terminalIo} from '../../cli/io.js'
import {searchArchive} from '../../ops/archive/archive.js'

export default class ArchiveSearch extends BaseCommand<typeof ArchiveSearch> {
  static override summary = "Search a user's archived messages in the objects (not the database), oldest first."
  static override examples = ['<%= config.bin %> archive search --user alice@chat.example.com --from 2026-01-01 --to 2026-01-31 --text invoice']
  static override flags = {
    config: configFlag,
    'accept-new-host-keys': acceptKeysFlag,
    user: Flags.string({description: 'The user: local part, or user@domain to read only that domain.', required: true}),
    from: Flags.string({description: 'First day (YYYY-MM-DD, UTC).'}),
    to: Flags.string({description: 'Last day (YYYY-MM-DD, UTC), included.'}),
    text: Flags.string({description: 'Only messages containing this (case-insensitive).'}),
    limit: Flags.integer({description: 'At most this many messages.', default: 100}),
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: !this.nonInteractive, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const f = this.flags
    const r = await searchArchive({configFile: f.config, user: f.user, ...(f.from ? {from: f.from} : {}), ...(f.to ? {to: f.to} : {}), ...(f.text ? {text: f.text} : {}), limit: f.limit, acceptNewHostKeys: f['accept-new-host-keys'], io})
    this.output(r, (x) => [...x.hits.map((h) => `${h.time}  ${h.user}@${h.domain}  ${h.kind ?? ''} ${h.peer}  ${h.text ?? ''}`), `${x.hits.length} messages${x.truncated ? ' (more: raise --limit)' : ''}, ${x.objectsRead} objects read.`].join('\n'))
  }
}
