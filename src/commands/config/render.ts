import {Flags} from '@oclif/core'
import {BaseCommand, configFlag} from '../../cli/base.js'
import {renderService} from '../../ops/render.js'

export default class ConfigRender extends BaseCommand<typeof ConfigRender> {
  static override summary = 'Write every file that install would put on each host into a directory, without contacting hosts.'
  static override description = 'Files land in OUT/<host>/<path>. Secret values are replaced by ******** unless --with-secrets is given (then secret files are mode 0600).'
  static override examples = ['<%= config.bin %> config render --out rendered/']
  static override flags = {
    config: configFlag,
    out: Flags.string({description: 'Directory to write into.', required: true}),
    'with-secrets': Flags.boolean({description: 'Write real secret values (files holding them get mode 0600).', default: false}),
  }

  async run(): Promise<void> {
    const r = renderService({configFile: this.flags.config, out: this.flags.out, withSecrets: this.flags['with-secrets']})
    this.output(r, (x) =>
      [
        `Release ${x.release}; files written under ${x.out}:`,
        ...x.files.map((f) => `  ${f.host}:${f.path}  (${f.owner}:${f.group} ${f.mode}, ${f.bytes} bytes${f.secret ? ', holds secrets' : ''})`),
        'Packages:',
        ...Object.entries(x.packages).map(([h, p]) => `  ${h}: ${p.join(', ')}`),
      ].join('\n'),
    )
  }
}
