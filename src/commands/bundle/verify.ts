import {Args} from '@oclif/core'
import {BaseCommand} from '../../cli/base.js'
import {humanSize} from '../../ops/bundle/format.js'
import {terminalIo} from '../../cli/io.js'
import {verifyBundle} from '../../ops/bundle/verify.js'

export default class BundleVerify extends BaseCommand<typeof BundleVerify> {
  static override summary = 'Check an offline bundle: every file\'s sha256 and size against its bundle.json.'
  static override description = 'Streams the file once. Exits 1 naming each missing, extra or damaged file.'
  static override examples = ['<%= config.bin %> bundle verify chat.bundle', '<%= config.bin %> bundle verify /media/usb/chat.bundle --json']
  static override args = {file: Args.string({description: 'The bundle file.', required: true})}

  async run(): Promise<void> {
    const {args} = await this.parse(BundleVerify)
    const io = terminalIo({interactive: false, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r = await verifyBundle(args.file, io)
    this.output(r, (x) =>
      [
        `Bundle ${x.file} is intact: all ${x.files} files match bundle.json.`,
        `  release ${x.release} (${x.os}, ${x.arch}), made ${x.created} by imctl ${x.imctlVersion}`,
        `  sha256 ${x.sha256}, ${humanSize(x.size)}`,
        ...x.groups.map((g) => `  ${g.group}: ${g.files} files, ${humanSize(g.bytes)}`),
      ].join('\n'),
    )
  }
}
