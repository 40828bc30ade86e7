import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base.js'
import {destroySandbox} from '../../sandbox/sandbox.js'

export default class SandboxDestroy extends BaseCommand<typeof SandboxDestroy> {
  static override summary = 'Remove a sandbox: its containers, network and files. Already gone counts as done.'
  static override examples = ['<%= config.bin %> sandbox destroy', '<%= config.bin %> sandbox destroy --name ci1 --dir /tmp/ci1']
  static override flags = {
    name: Flags.string({description: 'Sandbox name.', default: 'demo'}),
    dir: Flags.string({description: 'Its directory (default: sandbox/<name>).'}),
  }

  async run(): Promise<void> {
    const r = await destroySandbox(this.flags.name, this.flags.dir ?? `sandbox/${this.flags.name}`)
    this.output(r, (x) => `Sandbox ${x.name}: removed ${x.removedContainers.length} containers${x.removedNetwork ? ', its network' : ''}${x.removedDir ? ' and its directory' : ''}.`)
  }
}
