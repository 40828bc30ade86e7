import {Flags} from '@oclif/core'
import {acceptKeysFlag, BaseCommand, configFlag} from '../../cli/base.js'
import {terminalIo} from '../../cli/io.js'
import {lockReleaseService} from '../../ops/lock-status.js'

export default class LockRelease extends BaseCommand<typeof LockRelease> {
  static override summary = 'Release a stale cluster lock.'
  static override description = 'Without --force only locks left by a process of this machine that no longer runs are removed. With --force any lock is removed: first make sure its run is really dead.'
  static override flags = {
    config: configFlag,
    'accept-new-host-keys': acceptKeysFlag,
    force: Flags.boolean({description: 'Remove the lock whoever holds it.', default: false}),
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: !this.nonInteractive, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r = await lockReleaseService({configFile: this.flags.config, force: this.flags.force, acceptNewHostKeys: this.flags['accept-new-host-keys'], io})
    this.output(
      r,
      (x) =>
        [
          x.released.length ? `released on ${x.released.join(', ')}` : 'no lock released',
          ...(x.kept.length ? [`still locked on ${x.kept.join(', ')} (holder may be alive; use --force if you are sure it is not)`] : []),
        ].join('\n'),
      r.kept.length ? 3 : 0,
    )
  }
}
