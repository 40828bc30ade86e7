import {createReadStream} from 'node:fs'
import {readFileSync} from 'node:fs'
import {Agent} from 'node:http'
import {createServer, type AddressInfo, type Socket} from 'node:net'
import {PassThrough, type Duplex, type Readable} from 'node:stream'
import Docker from 'dockerode'
import * as tar from 'tar-stream'
import type {ComponentName, HostConfig} from '../config/model.js'
import {RemoteError, UserError, tail} from '../errors.js'
import type {ContainerSpec, FileResource} from '../plan/resources.js'
import {wrapArgv, type ExecResult, type RemoteCommand} from './command.js'
import {ExecDemux, logText} from './engine-stream.js'
import {buildImage, ensureBaseImage, followProgress, imageExists, type ExtraContextFile} from './engine-images.js'
import {connectSsh, type SshOptions} from './ssh.js'
import type {HostConnection, Tunnel} from './types.js'

export {engineNames, LABELS} from './engine-names.js'
import {engineNames, LABELS} from './engine-names.js'

export interface PutFile {
  path: string
  content: string
  mode: string
  uid: number
  gid: number
}

/** A container engine reached through its Docker-compatible API. */
export class EngineConnection implements HostConnection {
  readonly kind = 'engine' as const
  constructor(
    readonly host: HostConfig,
    readonly docker: Docker,
    readonly cluster: string,
    private readonly closeTransport: () => Promise<void> = async () => {},
  ) {}

  private container(component: ComponentName | undefined, what: string): Docker.Container {
    if (!component) throw new Error(`bug: ${what} on engine host ${this.host.name} names no component container`)
    return this.docker.getContainer(engineNames.container(this.cluster, component))
  }

  /**
   * imctl's own state on an engine (the cluster lock, the audit log) lives in a
   * small container with a volume, so the same commands as on SSH hosts work.
   */
  private async stateContainer(): Promise<Docker.Container> {
    const name = engineNames.state(this.cluster)
    const c = this.docker.getContainer(name)
    try {
      if (!(await c.inspect()).State.Running) await c.start()
      return c
    } catch (e) {
      if ((e as {statusCode?: number}).statusCode !== 404) throw e
    }
    const image = await ensureBaseImage(this.docker)
    const volume = engineNames.state(this.cluster)
    try {
      const made = await this.docker.createContainer({
        name,
        Image: image,
        Cmd: ['sleep', 'infinity'],
        Labels: {[LABELS.cluster]: this.cluster, [LABELS.role]: 'state'},
        HostConfig: {
          Mounts: [
            {Type: 'volume', Source: volume, Target: '/var/lib/imctl'},
            {Type: 'volume', Source: `${volume}-log`, Target: '/var/log/imctl'},
          ],
          RestartPolicy: {Name: 'unless-stopped'},
          NetworkMode: 'none',
        },
      })
      await made.start()
      return made
    } catch (e) {
      // Another run made it at the same moment: use theirs.
      if ((e as {statusCode?: number}).statusCode === 409) return this.stateContainer()
      throw e
    }
  }

  async exec(cmd: RemoteCommand): Promise<ExecResult> {
    const r = await this.execBuffer(cmd)
    return {exitCode: r.exitCode, stdout: r.stdout.toString('utf8'), stderr: r.stderr}
  }

  /** Starts a command in its container (or imctl's state container) with its streams attached. */
  private async startExec(cmd: RemoteCommand): Promise<{c: Docker.Container; where: string; exec: Docker.Exec; stream: Duplex}> {
    // Commands about the host itself (lock, audit) run in imctl's state container.
    const c = cmd.component ? this.container(cmd.component, cmd.description) : await this.stateContainer()
    const where = `${this.host.name}/${cmd.component ?? 'imctl-state'}`
    const stdin = cmd.stdin !== undefined || cmd.stdinStream !== undefined
    try {
      const exec = await c.exec({Cmd: wrapArgv(cmd, {isRoot: true}), AttachStdin: stdin, AttachStdout: true, AttachStderr: true})
      const stream = (await exec.start({hijack: true, stdin})) as Duplex
      return {c, where, exec, stream}
    } catch (e) {
      throw new RemoteError(where, cmd.description, null, (e as Error).message)
    }
  }

  /** Feeds the command's input: bytes, or a stream with backpressure; its end closes the command's stdin. */
  private feed(cmd: RemoteCommand, stream: Duplex, fail: (e: Error) => void, where: string): void {
    if (cmd.stdinStream) {
      cmd.stdinStream.on('error', (e: Error) => {
        stream.destroy()
        fail(new RemoteError(where, cmd.description, null, `reading its input failed: ${e.message}`))
      })
      cmd.stdinStream.pipe(stream)
    } else if (cmd.stdin !== undefined) stream.end(cmd.stdin)
  }

  /** The exit code once the engine has it (it can lag the end of the stream by a moment); null if it still runs after 30 s. */
  private async exitCode(exec: Docker.Exec): Promise<number | null> {
    for (let i = 0; i < 600; i++) {
      const info = await exec.inspect()
      if (!info.Running) return info.ExitCode ?? null
      await new Promise((r) => setTimeout(r, 50))
    }
    return null
  }

  async execBuffer(cmd: RemoteCommand): Promise<{exitCode: number | null; stdout: Buffer; stderr: string}> {
    const {c, where, exec, stream} = await this.startExec(cmd)
    const out: Buffer[] = []
    const err: Buffer[] = []
    const stdout = new PassThrough().on('data', (b: Buffer) => out.push(b))
    const stderr = new PassThrough().on('data', (b: Buffer) => err.push(b))
    c.modem.demuxStream(stream, stdout, stderr)
    let failed: Error | undefined
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('end', resolve)
      stream.on('close', resolve)
      stream.on('error', reject)
    })
    this.feed(cmd, stream, (e) => (failed = e), where)
    await ended.catch((e: Error) => Promise.reject(failed ?? new RemoteError(where, cmd.description, null, e.message)))
    if (failed) throw failed
    const code = await this.exitCode(exec)
    const errText = Buffer.concat(err).toString('utf8')
    const outBuf = Buffer.concat(out)
    if (!(cmd.okExitCodes ?? [0]).includes(code ?? -1)) {
      throw new RemoteError(where, cmd.description, code, tail(errText || outBuf.toString('utf8')))
    }
    return {exitCode: code, stdout: outBuf, stderr: errText}
  }

  /**
   * A command's stdout as it is written, with backpressure down to the engine's socket
   * (nothing is held whole in memory); the end of its stderr is kept for the error a
   * non-zero exit becomes, raised before the stream would end.
   */
  async output(cmd: RemoteCommand): Promise<Readable> {
    const {where, exec, stream} = await this.startExec(cmd)
    const demux = new ExecDemux(async (stderr) => {
      const code = await this.exitCode(exec)
      if (!(cmd.okExitCodes ?? [0]).includes(code ?? -1)) throw new RemoteError(where, cmd.description, code, tail(stderr))
    })
    stream.on('error', (e: Error) => demux.destroy(new RemoteError(where, cmd.description, null, e.message)))
    demux.on('close', () => stream.destroy())
    stream.pipe(demux)
    this.feed(cmd, stream, (e) => demux.destroy(e), where)
    return demux
  }

  /**
   * Each connection to the local port runs `socat - TCP:dst:port` inside the component's container.
   * Without a component, a destination that is this host's address and a port that one of the
   * cluster's running containers publishes is reached inside that container, at its own port:
   * what a client elsewhere reaches at ADDRESS:PORT, without a route to the engine's host.
   */
  async tunnel(dstHost: string, dstPort: number, from?: ComponentName): Promise<Tunnel> {
    const published = from ? null : await this.publisher(dstHost, dstPort)
    const c = this.container(from ?? published?.component, `tunnel to ${dstHost}:${dstPort}`)
    const [toHost, toPort] = published ? ['127.0.0.1', published.containerPort] : [dstHost, dstPort]
    const sockets = new Set<Socket>()
    const server = createServer(async (local) => {
      sockets.add(local)
      local.on('close', () => sockets.delete(local))
      try {
        const exec = await c.exec({Cmd: ['socat', '-', `TCP:${toHost}:${toPort}`], AttachStdin: true, AttachStdout: true, AttachStderr: true})
        const remote = (await exec.start({hijack: true, stdin: true})) as Duplex
        const toLocal = new PassThrough()
        c.modem.demuxStream(remote, toLocal, new PassThrough())
        toLocal.pipe(local)
        local.pipe(remote)
        remote.on('end', () => local.end())
        remote.on('error', () => local.destroy())
        local.on('error', () => remote.destroy())
        local.on('close', () => remote.destroy())
      } catch {
        local.destroy()
      }
    })
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () =>
        resolve({
          port: (server.address() as AddressInfo).port,
          close: () =>
            new Promise<void>((res) => {
              for (const s of sockets) s.destroy()
              server.close(() => res())
            }),
        }),
      )
    })
  }

  /** The running container of this cluster that publishes `port` on this host's `address`, and the port inside it. */
  private async publisher(address: string, port: number): Promise<{component: ComponentName; containerPort: number} | null> {
    if (address !== this.host.address) return null
    const running = await this.docker.listContainers({filters: JSON.stringify({label: [`${LABELS.cluster}=${this.cluster}`]})})
    for (const c of running) {
      const component = c.Labels[LABELS.component] as ComponentName | undefined
      const p = (c.Ports ?? []).find((x) => x.PublicPort === port && x.Type === 'tcp' && x.IP === address)
      if (component && p) return {component, containerPort: p.PrivatePort}
    }
    return null
  }

  /** Reads a file from a component's container, running or not (the engine's archive API). */
  async readFile(component: ComponentName, path: string): Promise<Buffer | null> {
    let archive: NodeJS.ReadableStream
    try {
      archive = await this.container(component, `read ${path}`).getArchive({path})
    } catch (e) {
      if ((e as {statusCode?: number}).statusCode === 404) return null
      throw e
    }
    return new Promise((resolve, reject) => {
      const extract = tar.extract()
      let found: Buffer | null = null
      extract.on('entry', (header, stream, next) => {
        const chunks: Buffer[] = []
        stream.on('data', (b: unknown) => chunks.push(b as Buffer))
        stream.on('end', () => {
          if (header.type === 'file' && found === null) found = Buffer.concat(chunks)
          next()
        })
        stream.resume()
      })
      extract.on('finish', () => resolve(found))
      extract.on('error', reject)
      archive.pipe(extract)
    })
  }

  /** Puts files into a (created, not yet started) container with their owner and mode. */
  async putFiles(container: Docker.Container, files: PutFile[]): Promise<void> {
    const pack = tar.pack()
    // File entries only: parent directories exist in the images, and entries for them would reset their owner.
    for (const f of files) pack.entry({name: f.path.replace(/^\//, ''), mode: parseInt(f.mode, 8), uid: f.uid, gid: f.gid}, f.content)
    pack.finalize()
    await container.putArchive(pack as unknown as NodeJS.ReadableStream, {path: '/'})
  }

  // ---- changes, each safe to repeat after an interruption ----

  async ensureNetwork(name: string): Promise<void> {
    const existing = await this.docker.listNetworks({filters: JSON.stringify({name: [name]})})
    if (existing.some((n) => n.Name === name)) return
    await this.docker.createNetwork({Name: name, Labels: {[LABELS.cluster]: this.cluster}})
  }

  async buildImage(tag: string, contextDir: string, files: string[], notify?: (m: string) => void, extra: ExtraContextFile[] = []): Promise<void> {
    const base = await ensureBaseImage(this.docker, notify ? {notify} : {})
    await buildImage(this.docker, contextDir, files, tag, base, extra)
  }

  /** Loads saved images (a `docker save` tar) into the engine. */
  async loadImages(tarFile: string): Promise<void> {
    const stream = await this.docker.loadImage(createReadStream(tarFile))
    const events = await followProgress(this.docker, stream)
    const failed = events.find((e) => e.error)
    if (failed) throw new Error(`loading ${tarFile} failed: ${failed.error}`)
  }

  async requireImage(tag: string, from: string): Promise<void> {
    if (!(await imageExists(this.docker, tag))) throw new Error(`${from} was loaded but holds no image ${tag}`)
  }

  /** Creates the container (replacing one of the same name, volumes kept) and puts its files in before it first starts. */
  async createContainer(spec: ContainerSpec, files: FileResource[], replace: boolean): Promise<void> {
    const old = this.docker.getContainer(spec.name)
    if (replace || (await exists(old))) {
      await old.stop({t: 30}).catch(() => undefined)
      await old.remove({force: true}).catch((e: {statusCode?: number}) => {
        if (e.statusCode !== 404) throw e
      })
    }
    const {name, ...body} = spec
    const c = await this.docker.createContainer({name, ...body} as Docker.ContainerCreateOptions)
    const component = spec.Labels[LABELS.component] as ComponentName
    const ids = await this.userIds(component)
    await this.putFiles(
      c,
      files.map((f) => {
        const uid = ids.users.get(f.owner)
        const gid = ids.groups.get(f.group)
        if (uid === undefined || gid === undefined) throw new Error(`image of ${component} has no user ${f.owner} or group ${f.group}`)
        return {path: f.path, content: f.content, mode: f.mode, uid, gid}
      }),
    )
  }

  async startContainer(name: string, ready: RemoteCommand, timeoutMs = 180_000): Promise<void> {
    const c = this.docker.getContainer(name)
    const state = (await c.inspect()).State
    if (!state.Running) await c.start()
    const deadline = Date.now() + timeoutMs
    let last = ''
    for (;;) {
      try {
        await this.exec(ready)
        return
      } catch (e) {
        last = (e as Error).message
        const now = (await c.inspect()).State
        if (!now.Running && !now.Restarting) {
          throw new RemoteError(`${this.host.name}/${ready.component}`, `start container ${name}`, now.ExitCode ?? null, `the container exited; see \`imctl logs ${ready.component}\``)
        }
      }
      if (Date.now() > deadline) throw new RemoteError(`${this.host.name}/${ready.component}`, ready.description, null, `not ready after ${timeoutMs / 1000}s: ${last}`)
      await new Promise((r) => setTimeout(r, 1000))
    }
  }

  /** Stops a container (a clean stop: its stop signal, then 60 s before it is killed); a stopped one stays stopped. */
  async stopContainer(name: string): Promise<void> {
    await this.docker
      .getContainer(name)
      .stop({t: 60})
      .catch((e: {statusCode?: number}) => {
        // 304: it was not running.
        if (e.statusCode !== 304) throw e
      })
  }

  /**
   * Runs a command as root in a one-off container of the component's image with the
   * component's volumes mounted and no network: for changes to its data while its own
   * container is stopped (the engine cannot exec in a stopped container). Removed after.
   */
  async runOnVolumes(component: ComponentName, cmd: RemoteCommand): Promise<void> {
    const where = `${this.host.name}/${component}`
    const info = await this.container(component, cmd.description).inspect()
    if (info.State.Running) throw new Error(`bug: ${cmd.description} on the volumes of ${info.Name} while it runs`)
    const name = `${engineNames.container(this.cluster, component)}-volumes`
    // One left behind by a run that was killed.
    await this.docker
      .getContainer(name)
      .remove({force: true})
      .catch(() => undefined)
    const helper = await this.docker.createContainer({
      name,
      Image: info.Image,
      Entrypoint: [cmd.argv[0]!],
      Cmd: cmd.argv.slice(1),
      User: '0',
      Labels: {[LABELS.cluster]: this.cluster, [LABELS.role]: 'volumes'},
      HostConfig: {
        NetworkMode: 'none',
        Mounts: (info.Mounts ?? []).filter((m) => m.Type === 'volume' && m.Name).map((m) => ({Type: 'volume' as const, Source: m.Name!, Target: m.Destination})),
      },
    })
    try {
      await helper.start()
      const {StatusCode: code} = (await helper.wait()) as {StatusCode: number}
      if (code !== 0) {
        const log = (await helper.logs({stdout: true, stderr: true, follow: false})) as unknown as Buffer
        const text = logText(Buffer.isBuffer(log) ? log : Buffer.from(String(log)))
        throw new RemoteError(where, cmd.description, code, tail(text))
      }
    } finally {
      await helper.remove({force: true}).catch(() => undefined)
    }
  }

  /** running, exited, created…, or 'missing'. */
  async containerState(name: string): Promise<string> {
    try {
      return (await this.docker.getContainer(name).inspect()).State.Status
    } catch (e) {
      if ((e as {statusCode?: number}).statusCode === 404) return 'missing'
      throw e
    }
  }

  async removeContainer(name: string, purgeVolumes: boolean): Promise<void> {
    const c = this.docker.getContainer(name)
    let volumes: string[] = []
    try {
      volumes = ((await c.inspect()).Mounts ?? []).filter((m) => m.Type === 'volume' && m.Name).map((m) => m.Name!)
    } catch (e) {
      if ((e as {statusCode?: number}).statusCode === 404) return
      throw e
    }
    await c.stop({t: 30}).catch(() => undefined)
    await c.remove({force: true})
    if (purgeVolumes) for (const v of volumes) await this.docker.getVolume(v).remove()
  }

  /** user and group names → ids, as the component's image defines them. */
  private async userIds(component: ComponentName): Promise<{users: Map<string, number>; groups: Map<string, number>}> {
    const parse = (text: string) => new Map(text.split('\n').filter(Boolean).map((l) => l.split(':')).map((p) => [p[0]!, Number(p[2])] as const))
    const [passwd, group] = await Promise.all([this.readFile(component, '/etc/passwd'), this.readFile(component, '/etc/group')])
    return {users: parse(String(passwd ?? '')), groups: parse(String(group ?? ''))}
  }

  async close(): Promise<void> {
    await this.closeTransport()
  }
}

async function exists(c: Docker.Container): Promise<boolean> {
  try {
    await c.inspect()
    return true
  } catch {
    return false
  }
}

export interface EngineConnectOptions extends SshOptions {
  cluster: string
}

/** Opens an engine host: local socket, TCP (with TLS client certificates), or over SSH. */
export async function connectEngine(host: HostConfig, opts: EngineConnectOptions): Promise<EngineConnection> {
  const e = host.engine!
  let docker: Docker
  let closeTransport = async () => {}
  if (e.kind === 'socket') docker = new Docker({socketPath: e.socketPath})
  else if (e.kind === 'tcp') {
    docker = e.tls
      ? new Docker({protocol: 'https', host: e.host, port: e.port, ca: readFileSync(e.tls.ca), cert: readFileSync(e.tls.cert), key: readFileSync(e.tls.key)})
      : new Docker({protocol: 'http', host: e.host, port: e.port})
  } else {
    // One verified SSH connection; each API request is a `docker system dial-stdio` channel on it.
    const ssh = await connectSsh({name: `${host.name} (engine)`, address: e.address, port: e.port, user: e.user, sudo: false, auth: e.auth}, opts)
    const agent = new Agent({keepAlive: false})
    ;(agent as unknown as {createConnection: unknown}).createConnection = (_o: unknown, cb: (err: Error | null, s?: Duplex) => void) => {
      ssh.stream!({argv: ['docker', 'system', 'dial-stdio'], description: 'open the engine API'}).then((s) => cb(null, s), (err: Error) => cb(err))
    }
    docker = new Docker({protocol: 'http', host: 'engine', port: 80, agent} as Docker.DockerOptions)
    closeTransport = () => ssh.close()
  }
  try {
    await docker.version()
  } catch (err) {
    await closeTransport()
    throw new UserError(`${host.name}: the container engine does not answer: ${(err as Error).message}`, [
      e.kind === 'socket' ? `Check that the engine runs and ${e.socketPath} exists (podman: \`podman system service\`; Docker: \`systemctl start docker\`).` : 'Check the engine\'s address, port and TLS files in cluster.yaml.',
    ])
  }
  return new EngineConnection(host, docker, opts.cluster, closeTransport)
}
