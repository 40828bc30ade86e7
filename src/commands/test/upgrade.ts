import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base.js'
import {terminalIo} from '../../cli/io.js'
import {testUpgradeService} from '../../ops/upgrade/test-upgrade.js'

export default class TestUpgrade extends BaseCommand<typeof TestUpgrade> {
  static override summary = 'Prove an upgrade in a throwaway sandbox: install A, seed data, upgrade to B, check data and health, remove the sandbox.'
  static override description = [
    'For CI pipelines. Uses the local container engine as `imctl sandbox create` does. Seeds two XMPP users and a conversation kept in ejabberd\'s SQL archive,',
    'Redis keys, and Kafka records when Kafka is placed (on 3 hosts, when the two releases\' Kafka differ, or with --kafka). Then `imctl upgrade --to B`,',
    'and every seeded thing is read back: the users log in, the archive is fetched over XMPP, the Redis values and Kafka records compared; health must be green.',
    'The sandbox is removed whatever happened (unless --keep). Exit 0 only when the upgrade reached B and every check passed; --json has each phase\'s time.',
  ].join(' ')
  static override examples = ['<%= config.bin %> test upgrade --from ejabberd-23.01-debian12 --to ejabberd-24.12-debian12 --json']
  static override flags = {
    from: Flags.string({description: 'The release to install first.', required: true}),
    to: Flags.string({description: 'The release to upgrade to.', required: true}),
    kafka: Flags.boolean({description: 'Place Kafka on 3 hosts even when both releases have the same Kafka.', default: false}),
    keep: Flags.boolean({description: 'Leave the sandbox running afterwards (its directory is in the result).', default: false}),
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: false, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r = await testUpgradeService({
      from: this.flags.from,
      to: this.flags.to,
      kafka: this.flags.kafka,
      keep: this.flags.keep,
      ...(process.env.IMCTL_TEST_UPGRADE_FAIL_AFTER ? {failAfter: process.env.IMCTL_TEST_UPGRADE_FAIL_AFTER} : {}),
      io,
    })
    this.output(
      r,
      (x) =>
        [
          `Upgrade test ${x.from} -> ${x.to}: ${x.passed ? 'PASSED' : 'FAILED'} in ${(x.ms / 1000).toFixed(0)} s (sandbox ${x.sandbox}${x.kafka ? ', with Kafka' : ''})`,
          ...x.phases.map((p) => `  ${p.ok ? 'ok  ' : 'FAIL'} ${p.phase.padEnd(8)} ${(p.ms / 1000).toFixed(1).padStart(6)} s  ${p.detail}`),
          ...(x.upgrade?.downtime.length ? ['  measured interruption:', ...x.upgrade.downtime.map((d) => `    ${d.component}: ${(d.totalMs / 1000).toFixed(1)} s${d.rolling ? ' (rolling: the others served)' : ''}`)] : []),
          ...x.data.map((d) => `  ${d.ok ? 'ok  ' : 'FAIL'} ${d.what}: ${d.detail}`),
          ...(x.kept ? [`  sandbox kept: ${x.kept}/cluster.yaml (remove it with \`imctl sandbox destroy --name ${x.sandbox} --dir ${x.kept}\`)`] : []),
        ].join('\n'),
      r.passed ? 0 : 1,
    )
  }
}
