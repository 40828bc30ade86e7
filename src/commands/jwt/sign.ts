import {Flags} from '@oclif/core'
import {BaseCommand, configFlag} from '../../cli/base.js'
import {parseDuration} from '../../cli/duration.js'
import {jwtSignService} from '../../ops/jwt.js'

export default class JwtSign extends BaseCommand<typeof JwtSign> {
  static override summary = 'Print a login token for a user, signed with the cluster\'s JWT key (clusters with `ejabberd.jwt` enabled).'
  static override description = 'The key is read from the secrets file. The client logs in with its JID and the token as its password. For testing and integration: an application that hands out tokens signs them with the same key.'
  static override examples = ['<%= config.bin %> jwt sign --user alice', '<%= config.bin %> jwt sign --user alice@chat.example.com --ttl 15m']
  static override flags = {
    config: configFlag,
    user: Flags.string({description: 'The user: a name, or a full JID of the cluster\'s domain.', required: true}),
    ttl: Flags.string({description: 'How long the token is valid (s, m, h or d).', default: '1h'}),
  }

  async run(): Promise<void> {
    const result = jwtSignService({configFile: this.flags.config, user: this.flags.user, ttlMs: parseDuration(this.flags.ttl, '--ttl')})
    this.output(result, (r) => r.token)
  }
}
