import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {askInitAnswers} from '../cli/init-prompts.js'
import {parseHostFlag} from '../config/init-flags.js'
import {schemaPathFrom, writeClusterFiles, type InitAnswers} from '../config/init.js'
import {listReleases} from '../config/manifest.js'
import {UserError} from '../errors.js'
import {schemaFile} from '../paths.js'

export default class Init extends BaseCommand<typeof Init> {
  static override summary = 'Describe a cluster: write cluster.yaml and its secrets file (generated passwords, mode 0600).'
  static override description =
    'Asks a few questions, or takes everything from flags with --non-interactive (as CI does). cluster.yaml never holds a secret.'
  static override examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init --non-interactive --name chat --domain chat.example.com --host name=db1,address=10.0.0.11,key=~/.ssh/id_ed25519 --host name=im1,address=10.0.0.12,user=admin,sudo,agent --postgresql db1 --redis db1 --ejabberd im1',
  ]
  static override flags = {
    config: Flags.string({char: 'c', description: 'Where to write the cluster definition.', default: 'cluster.yaml', env: 'IMCTL_CONFIG'}),
    'non-interactive': Flags.boolean({description: 'Never prompt; every answer comes from flags.', default: false}),
    name: Flags.string({description: 'Cluster name.'}),
    domain: Flags.string({description: 'XMPP domain (user@domain).'}),
    release: Flags.string({description: 'Release manifest.', default: 'ejabberd-23.01-debian12'}),
    host: Flags.string({
      description: 'A host, repeatable: name=N,address=A[,port=P][,user=U][,sudo][,key=PATH|agent][,jump=[user@]addr[:port]]',
      multiple: true,
    }),
    postgresql: Flags.string({description: 'Host that runs PostgreSQL.'}),
    redis: Flags.string({description: 'Host that runs Redis.'}),
    ejabberd: Flags.string({description: 'Host that runs ejabberd.'}),
    force: Flags.boolean({description: 'Overwrite an existing cluster.yaml (its secrets are kept).', default: false}),
  }

  async run(): Promise<void> {
    const f = this.flags
    let answers: InitAnswers
    if (f['non-interactive'] || this.nonInteractive) {
      const missing: string[] = (['name', 'domain', 'postgresql', 'redis', 'ejabberd'] as const).filter((k) => !f[k])
      if (!f.host?.length) missing.push('host')
      if (missing.length) throw new UserError(`--non-interactive needs ${missing.map((m) => `--${m}`).join(', ')}`, ['See `imctl init --help` for an example.'])
      answers = {
        name: f.name!,
        domain: f.domain!,
        release: f.release,
        hosts: f.host!.map(parseHostFlag),
        placement: {postgresql: f.postgresql!, redis: f.redis!, ejabberd: f.ejabberd!},
      }
    } else {
      answers = await askInitAnswers({releases: listReleases(), defaults: {name: f.name, domain: f.domain, release: f.release}})
    }
    const r = writeClusterFiles(f.config, answers, {force: f.force, schemaPath: schemaPathFrom(f.config, schemaFile)})
    this.output(r, (x) =>
      [
        `Wrote ${x.configFile}`,
        x.secretsCreated.length ? `Generated ${x.secretsCreated.join(', ')} in ${x.secretsFile} (mode 0600; keep it private and backed up)` : `Kept the existing secrets in ${x.secretsFile}`,
        `Next: imctl plan -c ${f.config}`,
      ].join('\n'),
    )
  }
}
