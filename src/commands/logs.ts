import {Writable} from 'node:stream'
import {Args, Flags} from '@oclif/core'
import {acceptKeysFlag, BaseCommand, configFlag} from '../cli/base.js'
import {terminalIo} from '../cli/io.js'
import {logsService} from '../ops/logs.js'

export default class Logs extends BaseCommand<typeof Logs> {
  static override summary = "Show a component's log: journald on SSH hosts, the container's log on engine hosts."
  static override examples = ['<%= config.bin %> logs ejabberd', '<%= config.bin %> logs postgresql -f', '<%= config.bin %> logs redis -n 50']
  static override args = {component: Args.string({description: 'postgresql, redis or ejabberd', required: true})}
  static override flags = {
    config: configFlag,
    'accept-new-host-keys': acceptKeysFlag,
    host: Flags.string({description: 'The host the component runs on (checked against cluster.yaml).'}),
    follow: Flags.boolean({char: 'f', description: 'Keep printing new lines until interrupted.', default: false}),
    lines: Flags.integer({char: 'n', description: 'How many recent lines to show first.', default: 200}),
  }

  async run(): Promise<void> {
    const {args} = await this.parse(Logs)
    const io = terminalIo({interactive: !this.nonInteractive, quiet: false, warn: (m) => this.warn2(m)})
    const stop = new AbortController()
    process.once('SIGINT', () => stop.abort())
    if (this.flags.json && this.flags.follow) this.error('--follow and --json do not go together: --json prints one document', {exit: 2})
    // With --json the lines are collected and printed as one document.
    const collected: string[] = []
    const collector = new Writable({
      write(chunk: Buffer, _enc, cb) {
        collected.push(chunk.toString('utf8'))
        cb()
      },
    })
    const out = this.flags.json ? collector : process.stdout
    const err = this.flags.json ? collector : process.stderr
    await logsService({
      configFile: this.flags.config,
      component: args.component,
      ...(this.flags.host ? {host: this.flags.host} : {}),
      follow: this.flags.follow,
      lines: this.flags.lines,
      acceptNewHostKeys: this.flags['accept-new-host-keys'],
      io,
      out,
      err,
      signal: stop.signal,
    })
    if (this.flags.json) this.output({component: args.component, lines: collected.join('').split('\n').filter(Boolean)}, () => '')
  }
}
