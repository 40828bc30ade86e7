import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import type Docker from 'dockerode'
import {execa} from 'execa'
import {writeClusterFiles, schemaPathFrom, type HostAnswer} from '../config/init.js'
import {UserError} from '../errors.js'
import type {IoHost} from '../io.js'
import {schemaFile, templatesDir} from '../paths.js'
import {endpointName} from '../transport/known-hosts.js'
import {buildImage, ensureBaseImage, imageExists} from '../transport/engine-images.js'
import {containerExec, reachableLocalEngine} from './engine.js'

export const SANDBOX_PREFIX = 'imctl-sbx'
const LABEL = 'io.imctl.sandbox'

export interface SandboxHost {
  name: string
  container: string
  address: string
}

export interface SandboxResult {
  name: string
  dir: string
  configFile: string
  secretsFile: string
  network: string
  hosts: SandboxHost[]
  /** Paths mounted as a tmpfs of their own in every host. */
  drives: string[]
  engine: string
}

export interface SandboxCreateOptions {
  name: string
  hosts: number
  dir: string
  domain?: string
  release?: string
  /** Debian mirror for the base image; default: the one this machine's apt uses. */
  mirror?: string
  /** Make the network internal: hosts can reach each other and this machine, nothing else. */
  internal?: boolean
  /** Paths that get a tmpfs of their own in every host: data drives (MinIO refuses several drives on one filesystem). */
  drives?: string[]
  io: IoHost
}

/** Each sandbox drive is a small tmpfs: room for tests, not for data. */
export const SANDBOX_DRIVE_SIZE = '256m'

export function sandboxNames(name: string) {
  return {network: `${SANDBOX_PREFIX}-${name}`, container: (i: number) => `${SANDBOX_PREFIX}-${name}-h${i}`}
}

/** Creates N systemd+sshd "servers" on the local engine and a cluster.yaml that uses them. */
export async function createSandbox(opts: SandboxCreateOptions): Promise<SandboxResult> {
  if (!/^[a-z][a-z0-9-]{0,20}$/.test(opts.name)) throw new UserError(`bad sandbox name ${JSON.stringify(opts.name)}`, ['Use lower-case letters, digits and dashes.'])
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > 9) throw new UserError('--hosts must be 1 to 9')
  const drives = checkDrives(opts.drives ?? [])
  const {docker, where} = await reachableLocalEngine()
  const names = sandboxNames(opts.name)
  const existing = await docker.listContainers({all: true, filters: JSON.stringify({label: [`${LABEL}=${opts.name}`]})})
  if (existing.length) {
    throw new UserError(`sandbox ${opts.name} already exists (${existing.length} containers)`, [`Run \`imctl sandbox destroy --name ${opts.name}\` first, or pick another --name.`])
  }
  const image = await ensureHostImage(docker, opts)

  const dir = resolve(opts.dir)
  mkdirSync(dir, {recursive: true, mode: 0o700})
  const keyFile = join(dir, 'id_ed25519')
  if (!existsSync(keyFile)) await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `imctl-sandbox-${opts.name}`, '-f', keyFile])

  const nets = await docker.listNetworks({filters: JSON.stringify({name: [names.network]})})
  if (!nets.some((n) => n.Name === names.network)) {
    // The sandbox stands for a LAN of servers: containers of other networks on this engine (Docker
    // mode) must reach it as they would reach a LAN. podman's Docker-compatible API always isolates
    // networks from each other, so on podman the network is made through its own API, unisolated.
    const podman = /podman/i.test(JSON.stringify((await docker.version()).Components ?? []))
    if (podman) {
      await new Promise((resolve, reject) =>
        docker.modem.dial(
          {
            path: '/v4.0.0/libpod/networks/create',
            method: 'POST',
            options: {name: names.network, internal: opts.internal ?? false, dns_enabled: true, labels: {[LABEL]: opts.name}, options: {isolate: 'false'}},
            statusCodes: {200: true, 201: true, 409: 'network already exists', 500: 'server error'},
          },
          (err: Error | null, data: unknown) => (err ? reject(err) : resolve(data)),
        ),
      )
    } else {
      await docker.createNetwork({Name: names.network, Internal: opts.internal ?? false, Labels: {[LABEL]: opts.name}})
    }
  }

  opts.io.notify({type: 'info', message: `starting ${opts.hosts} hosts on ${names.network}`})
  const hosts = await Promise.all(
    Array.from({length: opts.hosts}, async (_, k) => {
      const i = k + 1
      const c = await docker.createContainer({
        name: names.container(i),
        Hostname: `h${i}`,
        Image: image,
        Labels: {[LABEL]: opts.name},
        HostConfig: {
          NetworkMode: names.network,
          // Like a real server's root, nft may set this host's own packet filter (the firewall), and keepalived
          // add a virtual IP and send VRRP and gratuitous ARP (raw sockets); both act on the container's network namespace only.
          CapAdd: ['NET_ADMIN', 'NET_RAW'],
          Binds: [`${keyFile}.pub:/root/.ssh/authorized_keys:ro`, `${keyFile}.pub:/home/imctl/.ssh/authorized_keys:ro`],
          ...(drives.length ? {Tmpfs: Object.fromEntries(drives.map((d) => [d, `size=${SANDBOX_DRIVE_SIZE},mode=0755`]))} : {}),
        },
      })
      await c.start()
      await waitBooted(c, names.container(i))
      const info = await c.inspect()
      const address = info.NetworkSettings.Networks[names.network]?.IPAddress
      if (!address) throw new Error(`bug: ${names.container(i)} has no address on ${names.network}`)
      // The host key read through the engine (a trusted channel) is pinned: no blind acceptance.
      const pub = (await containerExec(c, ['cat', '/etc/ssh/ssh_host_ed25519_key.pub'])).trim().split(/\s+/)
      return {name: `h${i}`, container: names.container(i), address, hostKey: `${pub[0]} ${pub[1]}`}
    }),
  )
  const knownHosts = join(dir, 'known_hosts')
  writeFileSync(knownHosts, hosts.map((h) => `${endpointName(h.address, 22)} ${h.hostKey}\n`).join(''), {mode: 0o600})

  const n = hosts.length
  const placement = {
    postgresql: 'h1',
    redis: n >= 3 ? 'h2' : 'h1',
    ejabberd: n >= 3 ? 'h3' : n === 2 ? 'h2' : 'h1',
  }
  const configFile = join(dir, 'cluster.yaml')
  const answers: HostAnswer[] = hosts.map((h) => ({name: h.name, address: h.address, key: './id_ed25519'}))
  const init = writeClusterFiles(
    configFile,
    {
      name: opts.name,
      domain: opts.domain ?? `${opts.name}.imctl.test`,
      release: opts.release ?? 'ejabberd-23.01-debian12',
      hosts: answers,
      placement,
      knownHostsFile: 'known_hosts',
    },
    {force: true, schemaPath: schemaPathFrom(configFile, schemaFile)},
  )
  return {
    name: opts.name,
    dir,
    configFile,
    secretsFile: init.secretsFile,
    network: names.network,
    hosts: hosts.map(({hostKey: _k, ...h}) => h),
    drives,
    engine: where,
  }
}

/** Drive paths: absolute, plain (they go into a mount option list), distinct, never a system directory. */
export function checkDrives(drives: string[]): string[] {
  const out = drives.map((d) => d.trim().replace(/\/+$/, '')).filter(Boolean)
  for (const d of out) {
    if (!/^(\/[A-Za-z0-9._-]+)+$/.test(d) || d.split('/').some((p) => p === '.' || p === '..')) throw new UserError(`bad drive path ${JSON.stringify(d)}`, ['Use absolute paths of letters, digits, dots, dashes and underscores, e.g. --drives /srv/minio/d1,/srv/minio/d2.'])
    if (/^\/(bin|boot|dev|etc|lib|lib64|proc|root|run|sbin|sys|tmp|usr)(\/|$)/.test(d) || d === '/var' || d === '/home') throw new UserError(`drive path ${d} would hide a system directory of the host`, ['Use a path of its own, e.g. /srv/minio/d1.'])
  }
  const dup = out.find((d, i) => out.indexOf(d) !== i)
  if (dup) throw new UserError(`drive path ${dup} is given twice`)
  return out
}

export interface SandboxDestroyResult {
  name: string
  removedContainers: string[]
  removedNetwork: boolean
  removedDir: boolean
}

/** Removes the sandbox's containers, network and files. Removing what is already gone is success. */
export async function destroySandbox(name: string, dir: string | undefined): Promise<SandboxDestroyResult> {
  const {docker} = await reachableLocalEngine()
  const names = sandboxNames(name)
  const list = await docker.listContainers({all: true, filters: JSON.stringify({label: [`${LABEL}=${name}`]})})
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({force: true, v: true})))
  let removedNetwork = false
  const nets = await docker.listNetworks({filters: JSON.stringify({name: [names.network]})})
  for (const n of nets.filter((x) => x.Name === names.network)) {
    await docker.getNetwork(n.Id).remove()
    removedNetwork = true
  }
  let removedDir = false
  if (dir && existsSync(join(dir, 'cluster.yaml')) && existsSync(join(dir, 'id_ed25519'))) {
    rmSync(dir, {recursive: true, force: true})
    removedDir = true
  }
  return {name, removedContainers: list.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, '')), removedNetwork, removedDir}
}

async function waitBooted(c: Docker.Container, name: string): Promise<void> {
  const deadline = Date.now() + 60_000
  let state = ''
  while (Date.now() < deadline) {
    try {
      state = (await containerExec(c, ['sh', '-c', 'systemctl is-system-running || true; systemctl is-active ssh || true'])).trim()
      if (/^(running|degraded)\s+active$/m.test(state)) return
    } catch {
      // not ready to exec yet
    }
    await new Promise((r) => setTimeout(r, 300))
  }
  throw new Error(`${name} did not boot within 60s (systemd/ssh: ${state.replace(/\s+/g, ' ')})`)
}

/** The base image from Debian's mirror (no registry needed), then the host image built on it. */
async function ensureHostImage(docker: Docker, opts: SandboxCreateOptions): Promise<string> {
  const ctxDir = join(templatesDir, 'sandbox')
  const files = ['Containerfile', 'ssh-hostkeys.service']
  const hash = createHash('sha256')
  for (const f of files) hash.update(readFileSync(join(ctxDir, f)))
  const hostImage = `localhost/imctl-sbx-host:${hash.digest('hex').slice(0, 12)}`
  if (await imageExists(docker, hostImage)) return hostImage
  const base = await ensureBaseImage(docker, {...(opts.mirror ? {mirror: opts.mirror} : {}), notify: (message) => opts.io.notify({type: 'info', message})})
  opts.io.notify({type: 'info', message: `building the sandbox host image ${hostImage}`})
  await buildImage(docker, ctxDir, files, hostImage, base)
  return hostImage
}
