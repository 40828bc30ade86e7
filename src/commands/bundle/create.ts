import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base.js'
import {humanSize} from '../../ops/bundle/format.js'
import {terminalIo} from '../../cli/io.js'
import {createBundle} from '../../ops/bundle/create.js'

export default class BundleCreate extends BaseCommand<typeof BundleCreate> {
  static override summary = 'Make an offline bundle: every Debian package (with all dependencies) and artifact a release puts on hosts, in one file.'
  static override description = [
    'The packages are resolved and downloaded in a throwaway container on the local engine (FROM the Debian 12 base image, no registry needed),',
    'against an empty dpkg status so that any Debian 12 host can install them with no network; they form a flat apt repository.',
    'Artifacts without a Debian package (Kafka, MinIO) come from the artifact cache. The release\'s container images (for engine hosts) are built on the local engine when missing and saved into the bundle.',
    'The file is one uncompressed tar, bundle.json first; it is written as FILE.partial and renamed when complete.',
  ].join(' ')
  static override examples = ['<%= config.bin %> bundle create --release ejabberd-23.01-debian12 --out chat.bundle', '<%= config.bin %> bundle create --release ejabberd-23.01-debian12 --out /srv/chat.bundle --json']
  static override flags = {
    release: Flags.string({description: 'The release (a file under manifests/).', required: true}),
    os: Flags.string({description: 'The hosts\' operating system.', default: 'debian-12'}),
    out: Flags.string({char: 'o', description: 'The bundle file to write.', required: true}),
    mirror: Flags.string({description: 'Debian mirror (default: the one apt uses here).'}),
    'security-mirror': Flags.string({description: 'Debian security mirror, or `none` (default: the one apt uses here, else MIRROR-security).'}),
    images: Flags.boolean({description: 'Save the release\'s container images for engine hosts (--no-images: SSH hosts only, a smaller file).', default: true, allowNo: true}),
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: false, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const security = this.flags['security-mirror']
    const r = await createBundle({
      release: this.flags.release,
      os: this.flags.os,
      out: this.flags.out,
      ...(this.flags.mirror ? {mirror: this.flags.mirror} : {}),
      ...(security ? {securityMirror: security === 'none' ? null : security} : {}),
      images: this.flags.images,
      io,
    })
    this.output(r, (x) =>
      [
        `Bundle ${x.file}`,
        `  release ${x.release} (${x.os}, ${x.arch}), ${x.files} files, ${humanSize(x.size)}, made in ${x.seconds.total} s`,
        `  sha256 ${x.sha256}`,
        ...x.groups.map((g) => `  ${g.group}: ${g.files} files, ${humanSize(g.bytes)}`),
        `  packages: ${x.packages.map((p) => `${p.name} ${p.version}`).join(', ')}`,
        `  images: ${x.images.length ? x.images.map((i) => `${i.component} ${i.tag}`).join(', ') : 'none (--no-images: engine hosts cannot install from it)'}`,
        `Check a copy with: imctl bundle verify ${x.file}`,
      ].join('\n'),
    )
  }
}
