import {BaseCommand, configFlag} from '../cli/base.js'
import {validateService} from '../ops/validate.js'

export default class Validate extends BaseCommand<typeof Validate> {
  static override summary = 'Check cluster.yaml (schema and meaning) without contacting any host.'
  static override description = 'Reports every problem with file:line:column and what to write instead; exits non-zero when there is one.'
  static override examples = ['<%= config.bin %> validate', '<%= config.bin %> validate -c prod/cluster.yaml --json']
  static override flags = {config: configFlag}

  async run(): Promise<void> {
    const result = validateService(this.flags.config)
    this.output(result, (r) => `${r.file}: valid — ${r.hosts} hosts, release ${r.release}${r.secretsFile ? '' : ' (secrets file not created yet: run `imctl secrets generate`)'}`)
  }
}
