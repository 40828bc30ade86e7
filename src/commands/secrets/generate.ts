import {BaseCommand, configFlag} from '../../cli/base.js'
import {loadClusterConfig} from '../../config/load.js'
import {ensureSecrets} from '../../config/secrets.js'
import {secretSections} from '../../config/model.js'

export default class SecretsGenerate extends BaseCommand<typeof SecretsGenerate> {
  static override summary = 'Create the secrets file (mode 0600) or add the values it lacks; existing values are kept.'
  static override flags = {config: configFlag}

  async run(): Promise<void> {
    const config = loadClusterConfig(this.flags.config)
    const {created} = ensureSecrets(config.secretsFile, secretSections(config))
    this.output({secretsFile: config.secretsFile, created}, (r) => (r.created.length ? `${r.secretsFile}: generated ${r.created.join(', ')}` : `${r.secretsFile}: complete, nothing generated`))
  }
}
