import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base.js'
import {terminalIo} from '../../cli/io.js'
import {createSandbox} from '../../sandbox/sandbox.js'

export default class SandboxCreate extends BaseCommand<typeof SandboxCreate> {
  static override summary = 'Start N local "servers" (systemd + sshd containers) and write a cluster.yaml for them.'
  static override description =
    'Uses the local container engine\'s Docker-compatible API (podman or Docker). The base image is built from Debian\'s mirror with debootstrap, so no registry is needed. Host keys are read through the engine and pinned.'
  static override examples = ['<%= config.bin %> sandbox create --hosts 3', '<%= config.bin %> sandbox create --name ci1 --hosts 3 --dir /tmp/ci1 --json', '<%= config.bin %> sandbox create --hosts 3 --drives /srv/minio/d1,/srv/minio/d2']
  static override flags = {
    hosts: Flags.integer({description: 'How many hosts (1 to 9).', default: 3}),
    name: Flags.string({description: 'Sandbox name (prefix of containers and network).', default: 'demo'}),
    dir: Flags.string({description: 'Where to write cluster.yaml, secrets, SSH key and known_hosts (default: sandbox/<name>).'}),
    domain: Flags.string({description: 'XMPP domain of the sandbox cluster (default: <name>.imctl.test).'}),
    mirror: Flags.string({description: 'Debian mirror for the base image (default: the one apt uses here).'}),
    drives: Flags.string({description: 'Comma-separated paths that get a tmpfs of their own (256 MiB) in every host, as data drives for MinIO, e.g. /srv/minio/d1,/srv/minio/d2.'}),
    offline: Flags.boolean({description: 'Put the hosts on a network with no route out (this machine still reaches them), to prove offline installs.', default: false}),
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: false, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const result = await createSandbox({
      name: this.flags.name,
      hosts: this.flags.hosts,
      dir: this.flags.dir ?? `sandbox/${this.flags.name}`,
      ...(this.flags.domain ? {domain: this.flags.domain} : {}),
      ...(this.flags.mirror ? {mirror: this.flags.mirror} : {}),
      internal: this.flags.offline,
      ...(this.flags.drives ? {drives: this.flags.drives.split(',')} : {}),
      io,
    })
    this.output(result, (r) =>
      [
        `Sandbox ${r.name}: ${r.hosts.length} hosts on network ${r.network} (${r.engine})`,
        ...r.hosts.map((h) => `  ${h.name}  ${h.address}  (container ${h.container})`),
        ...(r.drives.length ? [`Drives in every host, a tmpfs each: ${r.drives.join(', ')}`] : []),
        `Cluster definition: ${r.configFile}`,
        `Next: imctl install -c ${r.configFile} && imctl health -c ${r.configFile}`,
      ].join('\n'),
    )
  }
}
