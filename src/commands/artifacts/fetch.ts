import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base.js'
import {terminalIo} from '../../cli/io.js'
import {fetchArtifactsService, formatBytes} from '../../ops/artifacts.js'

export default class ArtifactsFetch extends BaseCommand<typeof ArtifactsFetch> {
  static override summary = 'Make the artifacts that have no Debian package (Kafka jars, MinIO binaries) and keep them, verified, in the local cache.'
  static override description = [
    'Each artifact is checked against the sha256 list its release manifest names; one already in the cache is only re-hashed when its files changed.',
    'A missing one is made by its recipe under artifacts/ (Maven for Kafka, Go >= 1.24 for MinIO), checked, then moved into the cache.',
    'Without --release or --config: every artifact of every release.',
  ].join(' ')
  static override examples = ['<%= config.bin %> artifacts fetch', '<%= config.bin %> artifacts fetch -c cluster.yaml', '<%= config.bin %> artifacts fetch --release ejabberd-23.01-debian12 --json']
  static override flags = {
    release: Flags.string({description: 'Only the artifacts of this release (a file under manifests/).'}),
    // No default here: without it, every release's artifacts are fetched.
    config: Flags.string({char: 'c', description: 'Only the artifacts of the release this cluster definition names.', env: 'IMCTL_CONFIG'}),
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: false, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r = await fetchArtifactsService({
      ...(this.flags.release ? {release: this.flags.release} : {}),
      ...(this.flags.config ? {configFile: this.flags.config} : {}),
      io,
    })
    const how = {cached: 'in the cache', 're-hashed': 'in the cache (re-hashed)', made: 'made now'} as const
    this.output(r, (x) =>
      x.artifacts.length
        ? [
            ...x.artifacts.map((a) => `${a.name} ${a.version}: ${how[a.action]}, ${a.files.length} file(s), ${formatBytes(a.bytes)}, verified: ${a.dir}`),
            `Cache: ${x.cacheDir}`,
          ].join('\n')
        : `Release${x.releases.length === 1 ? '' : 's'} ${x.releases.join(', ')}: no artifacts needed (everything comes from Debian packages).`,
    )
  }
}
