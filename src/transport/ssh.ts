import {readFileSync} from 'node:fs'
import {createServer, type AddressInfo, type Socket} from 'node:net'
import type {Duplex} from 'node:stream'
import {Client, type ConnectConfig} from 'ssh2'
import type {HostConfig, SshAuth} from '../config/model.js'
import {RemoteError, UserError, tail} from '../errors.js'
import type {IoHost} from '../io.js'
import {commandLine, type ExecResult, type RemoteCommand} from './command.js'
import {endpointName, fingerprint, type KnownHosts, parseHostKeyBlob} from './known-hosts.js'
import type {HostConnection, Tunnel} from './types.js'

export interface SshOptions {
  knownHosts: KnownHosts
  /** Pin keys of hosts seen for the first time without asking (--accept-new-host-keys). */
  acceptNewHostKeys: boolean
  io: IoHost
  /** Seconds to wait for a TCP connection and the SSH handshake. */
  connectTimeout?: number
}

/** Opens the one SSH connection imctl uses for a host this run (through its jump host, if any). */
export async function connectSsh(host: HostConfig, opts: SshOptions): Promise<HostConnection> {
  let jump: Client | undefined
  let sock: Duplex | undefined
  if (host.jump) {
    const j = host.jump
    jump = await openClient(`${host.name} (jump ${j.address})`, j.address, j.port, j.user, j.auth, opts)
    sock = await new Promise<Duplex>((resolve, reject) =>
      jump!.forwardOut('127.0.0.1', 0, host.address, host.port, (err, stream) =>
        err ? reject(new UserError(`${host.name}: jump host ${j.address} could not reach ${host.address}:${host.port}: ${err.message}`, ['Check the host address and that the jump host may connect to it.'])) : resolve(stream),
      ),
    )
  }
  const client = await openClient(host.name, host.address, host.port, host.user, host.auth, opts, sock)
  return new SshConnection(host, client, jump)
}

function authConfig(auth: SshAuth, what: string): Partial<ConnectConfig> {
  if (auth.kind === 'agent') {
    const agent = process.env.SSH_AUTH_SOCK
    if (!agent) throw new UserError(`${what}: auth is \`agent: true\` but SSH_AUTH_SOCK is not set`, ['Start ssh-agent and add your key (ssh-add), or set `auth: {key: PATH}` in cluster.yaml.'])
    return {agent}
  }
  let privateKey: Buffer
  try {
    privateKey = readFileSync(auth.keyFile)
  } catch (e) {
    throw new UserError(`${what}: cannot read key file ${auth.keyFile}: ${(e as Error).message}`, ['Fix `auth.key` in cluster.yaml.'])
  }
  return {privateKey, ...(process.env.IMCTL_SSH_PASSPHRASE ? {passphrase: process.env.IMCTL_SSH_PASSPHRASE} : {})}
}

function openClient(what: string, address: string, port: number, user: string, auth: SshAuth, opts: SshOptions, sock?: Duplex): Promise<Client> {
  const endpoint = endpointName(address, port)
  let keyProblem: UserError | undefined
  const pinned = opts.knownHosts.pinnedTypes(address, port)
  const config: ConnectConfig = {
    host: address,
    port,
    username: user,
    readyTimeout: (opts.connectTimeout ?? 20) * 1000,
    keepaliveInterval: 15_000,
    ...(sock ? {sock} : {}),
    ...authConfig(auth, what),
    // Ask for the key type we pinned, so a server with several keys is checked against the right one.
    ...(pinned.length ? {algorithms: {serverHostKey: [...new Set([...pinned, 'ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256'])] as never}} : {}),
    hostVerifier: ((blob: Buffer, verify: (ok: boolean) => void) => {
      const key = parseHostKeyBlob(blob)
      const verdict = opts.knownHosts.check(address, port, key)
      if (verdict.kind === 'known') return verify(true)
      const fp = fingerprint(key)
      if (verdict.kind === 'changed') {
        keyProblem = new UserError(
          `${what}: the SSH host key of ${endpoint} CHANGED: it offers ${key.type} ${fp}, but ${verdict.pinned.join(', ')} is pinned in ${opts.knownHosts.file}`,
          ['This can mean someone is intercepting the connection. Check the key on the host\'s console (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub).', `Only if the host was really reinstalled, delete its line from ${opts.knownHosts.file} and run again.`],
        )
        return verify(false)
      }
      const accept = (ok: boolean) => {
        if (ok) {
          opts.knownHosts.add(address, port, key)
          opts.io.notify({type: 'warning', message: `pinned new host key of ${endpoint}: ${key.type} ${fp}`})
        } else {
          keyProblem = new UserError(`${what}: ${endpoint} is not a known host (its key is ${key.type} ${fp})`, [
            'Compare the fingerprint with the host\'s own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on its console),',
            'then run again with --accept-new-host-keys, or answer yes at the prompt.',
          ])
        }
        verify(ok)
      }
      if (opts.acceptNewHostKeys) return accept(true)
      opts.io.confirmHostKey(endpoint, key.type, fp).then(accept, () => accept(false))
    }) as never,
  }
  return new Promise((resolve, reject) => {
    const client = new Client()
    client.once('ready', () => resolve(client))
    client.once('error', (err: Error & {level?: string}) => {
      client.end()
      if (keyProblem) return reject(keyProblem)
      if (err.level === 'client-authentication') {
        return reject(new UserError(`${what}: ${user}@${endpoint} refused our key`, [`Check that the public key is in ~${user}/.ssh/authorized_keys on the host, and \`user:\`/\`auth:\` in cluster.yaml.`]))
      }
      if (/Timed out/i.test(err.message)) {
        return reject(new UserError(`${what}: no answer from ${endpoint} within ${opts.connectTimeout ?? 20}s`, ['Check the address and port in cluster.yaml, that the host is up, and that a firewall lets SSH through.']))
      }
      reject(new UserError(`${what}: cannot connect to ${endpoint}: ${err.message}`, ['Check the address and port in cluster.yaml and that sshd runs on the host.']))
    })
    client.connect(config)
  })
}

class SshConnection implements HostConnection {
  readonly kind = 'ssh' as const
  private readonly priv: {isRoot: boolean}
  constructor(
    readonly host: HostConfig,
    private readonly client: Client,
    private readonly jump?: Client,
  ) {
    this.priv = {isRoot: host.user === 'root'}
  }

  async exec(cmd: RemoteCommand): Promise<ExecResult> {
    const r = await this.execBuffer(cmd)
    return {exitCode: r.exitCode, stdout: r.stdout.toString('utf8'), stderr: r.stderr}
  }

  execBuffer(cmd: RemoteCommand): Promise<{exitCode: number | null; stdout: Buffer; stderr: string}> {
    const line = commandLine(cmd, this.priv)
    return new Promise((resolve, reject) => {
      this.client.exec(line, (err, channel) => {
        if (err) return reject(new RemoteError(this.host.name, cmd.description, null, err.message))
        const out: Buffer[] = []
        const errOut: Buffer[] = []
        let code: number | null = null
        channel.on('data', (b: Buffer) => out.push(b))
        channel.stderr.on('data', (b: Buffer) => errOut.push(b))
        channel.on('exit', (c: number | null) => (code = c))
        channel.on('close', () => {
          const stdout = Buffer.concat(out)
          const stderr = Buffer.concat(errOut).toString('utf8')
          if (!(cmd.okExitCodes ?? [0]).includes(code ?? -1)) {
            return reject(new RemoteError(this.host.name, cmd.description, code, tail(stderr || stdout.toString('utf8'))))
          }
          resolve({exitCode: code, stdout, stderr})
        })
        if (cmd.stdinStream) {
          cmd.stdinStream.on('error', (e: Error) => {
            channel.destroy()
            reject(new RemoteError(this.host.name, cmd.description, null, `reading its input failed: ${e.message}`))
          })
          cmd.stdinStream.pipe(channel)
        } else if (cmd.stdin !== undefined) channel.end(cmd.stdin)
        else channel.end()
      })
    })
  }

  tunnel(dstHost: string, dstPort: number): Promise<Tunnel> {
    const sockets = new Set<Socket>()
    const server = createServer((local) => {
      sockets.add(local)
      local.on('close', () => sockets.delete(local))
      this.client.forwardOut('127.0.0.1', 0, dstHost, dstPort, (err, remote) => {
        if (err) return local.destroy()
        local.pipe(remote).pipe(local)
        local.on('error', () => remote.destroy())
        remote.on('error', () => local.destroy())
      })
    })
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        const port = (server.address() as AddressInfo).port
        resolve({
          port,
          close: () =>
            new Promise<void>((res) => {
              for (const s of sockets) s.destroy()
              server.close(() => res())
            }),
        })
      })
    })
  }

  stream(cmd: RemoteCommand): Promise<Duplex & {stderr?: NodeJS.ReadableStream; exited?: Promise<number | null>}> {
    return new Promise((resolve, reject) =>
      this.client.exec(commandLine(cmd, this.priv), (err, channel) => {
        if (err) return reject(err)
        // Listen now: a fast command's exit can arrive in the same packet batch as the channel's opening.
        const exited = new Promise<number | null>((res) => {
          channel.on('exit', (code: number | null) => res(code))
          channel.on('close', () => res(null))
        })
        Object.assign(channel, {exited})
        // Ending stdin does not end stdout: the command's output keeps streaming.
        if (cmd.stdin !== undefined) channel.end(cmd.stdin)
        resolve(channel)
      }),
    )
  }

  async close(): Promise<void> {
    this.client.end()
    this.jump?.end()
  }
}
