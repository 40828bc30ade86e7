import {Flags} from '@oclif/core'
import {acceptKeysFlag, BaseCommand, configFlag} from '../../cli/base.js'
import {formatInstall} from '../../cli/format.js'
import {terminalIo} from '../../cli/io.js'
import {certRotateService, type CertRotateResult} from '../../ops/cert-rotate.js'

export default class CertRotate extends BaseCommand<typeof CertRotate> {
  static override summary = 'Issue every server certificate anew and put them in place without downtime (clusters with `tls:`).'
  static override description =
    'Certificates are issued on this machine from the cluster\'s CA, then written to the hosts as `imctl install` would; PostgreSQL, Redis, the Redis tunnel and ejabberd reload them without a restart. With --ca, imctl\'s own CA is replaced too: every host first trusts the new CA beside the old, then the servers switch; `--finish-ca` later drops the old CA.'
  static override examples = ['<%= config.bin %> cert rotate', '<%= config.bin %> cert rotate --ca', '<%= config.bin %> cert rotate --finish-ca']
  static override flags = {
    config: configFlag,
    'accept-new-host-keys': acceptKeysFlag,
    ca: Flags.boolean({description: 'Replace imctl\'s CA as well (two passes: trust both, then switch).', default: false, exclusive: ['finish-ca']}),
    'finish-ca': Flags.boolean({description: 'Stop trusting the CA that the last `--ca` rotation replaced.', default: false}),
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: !this.nonInteractive, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const result = await certRotateService({configFile: this.flags.config, ca: this.flags.ca, finishCa: this.flags['finish-ca'], acceptNewHostKeys: this.flags['accept-new-host-keys'], io})
    this.output(result, formatRotate)
  }
}

function formatRotate(r: CertRotateResult): string {
  const lines = [`Certificates of cluster ${r.cluster}:`]
  for (const c of r.certificates) lines.push(`  ${c.component.padEnd(11)} ${c.host.padEnd(10)} serial ${c.before} -> ${c.after}`)
  for (const p of r.passes) lines.push(`${p.why}: ${formatInstall(p.result)}`)
  return lines.join('\n')
}
