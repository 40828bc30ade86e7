import {acceptKeysFlag, BaseCommand, configFlag} from '../../cli/base.js'
import {terminalIo} from '../../cli/io.js'
import {lockStatusService} from '../../ops/lock-status.js'

export default class LockStatus extends BaseCommand<typeof LockStatus> {
  static override summary = 'Show who holds the cluster lock, on which host, and since when.'
  static override flags = {config: configFlag, 'accept-new-host-keys': acceptKeysFlag}

  async run(): Promise<void> {
    const io = terminalIo({interactive: !this.nonInteractive, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r = await lockStatusService({configFile: this.flags.config, acceptNewHostKeys: this.flags['accept-new-host-keys'], io})
    this.output(r, (x) =>
      x.hosts
        .map((h) => `${h.host}: ${h.lock ? `locked by ${h.lock.who}@${h.lock.machine} pid ${h.lock.pid} (\`${h.lock.command}\`) since ${h.lock.since}${h.staleHere ? ' — STALE: that process is gone' : ''}` : 'free'}`)
        .join('\n'),
    )
  }
}
