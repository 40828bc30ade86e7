import {BaseCommand} from '../../cli/base.js'
import {formatBytes, listArtifactsService} from '../../ops/artifacts.js'

export default class ArtifactsList extends BaseCommand<typeof ArtifactsList> {
  static override summary = 'List what is in the local artifact cache, checked against the release manifests.'
  static override description =
    'States: verified (matches the sha256 list of a release), damaged (a file is missing or differs: `imctl artifacts fetch` makes it again), not-in-any-release, incomplete (a fetch that was interrupted) and rejected (a result that did not match, kept for comparison).'
  static override examples = ['<%= config.bin %> artifacts list', '<%= config.bin %> artifacts list --json']

  async run(): Promise<void> {
    const r = await listArtifactsService()
    this.output(r, (x) =>
      [
        x.entries.length ? `Artifact cache ${x.cacheDir}:` : `Artifact cache ${x.cacheDir}: empty (run \`imctl artifacts fetch\`).`,
        ...x.entries.map(
          (e) =>
            `  ${e.name && e.version ? `${e.name} ${e.version}` : e.entry}  ${e.state}${e.problem ? ` (${e.problem})` : ''}  ${formatBytes(e.bytes)} on disk` +
            (e.releases.length ? `  [${e.releases.join(', ')}]` : ''),
        ),
        ...x.sharedCaches.map((d) => `  shared download cache: ${d}`),
      ].join('\n'),
    )
  }
}
