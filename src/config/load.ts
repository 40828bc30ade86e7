import {existsSync, readFileSync, statSync} from 'node:fs'
import {createHash} from 'node:crypto'
import {BlockList, isIP} from 'node:net'
import {homedir} from 'node:os'
import {dirname, relative, resolve} from 'node:path'
import {Ajv, type ErrorObject} from 'ajv'
import {isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node} from 'yaml'
import {type ConfigProblem, UserError, ValidationError} from '../errors.js'
import {schemaFile} from '../paths.js'
import {listReleases} from './manifest.js'
import type {ClusterConfig, EngineEndpoint, HostConfig, JumpHost, PostgresPlacement, SshAuth, TlsConfig, VirtualIp} from './model.js'

type Path = (string | number)[]

const DEFAULT_PORTS = {postgresql: 5432, pgProxy: 6432, redis: 6379, ejabberd: {c2s: 5222, http: 5280, mqtt: 1883, api: 5281}, kafka: {port: 9092, controllerPort: 9093}, minio: {port: 9000, consolePort: 9001}}
const DEFAULT_HAPROXY_PORTS = {c2s: 5222, http: 5280, mqtt: 1883, stats: 8404}
/** Erlang distribution between ejabberd nodes: epmd, then the nodes' own listeners in this range. */
export const ERLANG_DIST_PORTS = {epmd: 4369, min: 4370, max: 4379}
const DEFAULT_MINIO_DRIVES = ['/var/lib/minio/data']
/** Bucket names imctl keeps for its own uses. */
export const IMCTL_BUCKETS = ['imctl-backups', 'imctl-archive', 'imctl-health']

let compiled: ReturnType<Ajv['compile']> | undefined
function schemaValidator(): ReturnType<Ajv['compile']> {
  compiled ??= new Ajv({allErrors: true, strict: false, verbose: true}).compile(JSON.parse(readFileSync(schemaFile, 'utf8')))
  return compiled
}

export interface LoadOptions {
  /** Environment used to expand `~` in key paths (defaults to this process's). */
  home?: string
  /** Check that key files exist (off for pure validation of someone else's file). */
  checkKeyFiles?: boolean
}

/** Reads and validates cluster.yaml; throws ValidationError listing every problem with file:line:column. */
export function loadClusterConfig(file: string, opts: LoadOptions = {}): ClusterConfig {
  const abs = resolve(file)
  if (!existsSync(abs)) {
    throw new UserError(`${file}: no such file`, ['Run `imctl init` to write one, or pass --config PATH.'])
  }
  return parseClusterConfig(readFileSync(abs, 'utf8'), abs, opts)
}

export function parseClusterConfig(text: string, abs: string, opts: LoadOptions = {}): ClusterConfig {
  const shown = relative(process.cwd(), abs) || abs
  const lc = new LineCounter()
  const doc = parseDocument(text, {lineCounter: lc, prettyErrors: false, uniqueKeys: true})
  const problems: ConfigProblem[] = []
  const at = (offset: number) => lc.linePos(offset)

  // Report the first syntax error only: the ones after it mostly follow from it.
  const syntax = doc.errors[0]
  if (syntax) {
    const pos = at(syntax.pos[0])
    const more = doc.errors.length - 1
    problems.push({file: shown, line: pos.line, column: pos.col, path: '', message: `YAML syntax: ${firstLine(syntax.message)}`, ...(more ? {hint: `${more} more syntax error${more === 1 ? '' : 's'} may follow from this one`} : {})})
  }
  if (problems.length) throw new ValidationError(problems, shown)

  const data = doc.toJS() as unknown
  const locate = (path: Path, key?: string): {line: number; column: number} => {
    const off = offsetOf(doc, path, key)
    const pos = at(off)
    return {line: pos.line, column: pos.col}
  }
  const problem = (path: Path, message: string, hint?: string, key?: string) => {
    problems.push({file: shown, ...locate(path, key), path: formatPath(key ? [...path, key] : path), message, hint})
  }

  const validate = schemaValidator()
  if (!validate(data)) {
    for (const e of simplifyAjvErrors(validate.errors ?? [])) {
      const path = pointerToPath(e.instancePath)
      if (e.keyword === 'additionalProperties') {
        const extra = (e.params as {additionalProperty: string}).additionalProperty
        const allowed = allowedKeys(e)
        problem(path, `unknown key ${JSON.stringify(extra)}`, allowed ? `allowed here: ${allowed}` : undefined, extra)
      } else if (e.keyword === 'required') {
        const missing = (e.params as {missingProperty: string}).missingProperty
        problem(path, `missing required key ${JSON.stringify(missing)}`, hintForMissing(missing))
      } else if (e.keyword === 'oneOf' && e.instancePath.endsWith('/auth')) {
        problem(path, 'auth needs exactly one of `key` or `agent`', 'write `auth: {key: ~/.ssh/id_ed25519}` or `auth: {agent: true}`')
      } else if (e.keyword === 'oneOf' && e.instancePath.endsWith('/engine')) {
        problem(path, 'engine needs exactly one of `socket`, `tcp` or `ssh`', 'e.g. `engine: {socket: /run/podman/podman.sock}`')
      } else if (e.keyword === 'oneOf' && e.instancePath.endsWith('/ejabberd')) {
        problem(path, 'ejabberd needs exactly one of `host` or `hosts`', 'write `host: im1` for one node, or `hosts: [im1, im2]` for a cluster')
      } else if (e.keyword === 'uniqueItems') {
        problem(path, 'names the same host twice', 'list each host once')
      } else if (e.keyword === 'oneOf' && e.instancePath === '/tls/ca') {
        problem(path, 'ca is `imctl` or your own CA as `{cert: FILE, key: FILE}`', 'e.g. `tls: {ca: imctl}`')
      } else if (e.keyword === 'pattern') {
        problem(path, `${JSON.stringify(getIn(data, path))} is not valid here`, hintForPattern(path))
      } else if (e.keyword === 'const') {
        problem(path, `must be ${JSON.stringify((e.params as {allowedValue: unknown}).allowedValue)}`)
      } else if (e.keyword === 'type') {
        problem(path, `must be ${(e.params as {type: string}).type}, not ${describeType(getIn(data, path))}`)
      } else if (e.keyword === 'minimum' || e.keyword === 'maximum') {
        problem(path, `${String(getIn(data, path))} is out of range`, 'a port is 1 to 65535')
      } else {
        problem(path, e.message ?? e.keyword)
      }
    }
    throw new ValidationError(dedupe(problems), shown)
  }

  const raw = data as RawConfig
  checkMeaning(raw, problem, abs, opts)
  if (problems.length) throw new ValidationError(dedupe(problems), shown)
  return toModel(raw, abs, opts)
}

interface RawAuth {
  key?: string
  agent?: boolean
}
interface RawHost {
  name: string
  address: string
  port?: number
  user?: string
  sudo?: boolean
  auth?: RawAuth
  jump?: {address: string; port?: number; user?: string; auth?: RawAuth}
  engine?: RawEngine
}
interface RawEngine {
  socket?: string
  tcp?: {host: string; port?: number; ca?: string; cert?: string; key?: string}
  ssh?: {address: string; port?: number; user?: string; auth?: RawAuth}
}
interface RawConfig {
  apiVersion: string
  name: string
  domain: string
  release: string
  secretsFile?: string
  knownHostsFile?: string
  tls?: {ca: 'imctl' | {cert: string; key: string}; days?: number}
  hosts: RawHost[]
  components: {
    postgresql: {host?: string; hosts?: string[]; port?: number; etcd?: string[]; proxyPort?: number}
    redis: {host: string; port?: number}
    ejabberd: {host?: string; hosts?: string[]; ports?: {c2s?: number; c2sTls?: number; http?: number; mqtt?: number; api?: number}; jwt?: {enabled: boolean; jidField?: string}}
    kafka?: {hosts: string[]; port?: number; controllerPort?: number}
    minio?: {hosts: string[]; drives?: string[]; port?: number; consolePort?: number; buckets?: string[]}
    haproxy?: {hosts: string[]; ports?: {c2s?: number; http?: number; mqtt?: number; stats?: number}; virtualIp?: {address: string; interface: string; routerId?: number}}
  }
  firewall?: {enabled: boolean; adminSources?: string[]}
}

type ProblemFn = (path: Path, message: string, hint?: string, key?: string) => void

function checkMeaning(raw: RawConfig, problem: ProblemFn, abs: string, opts: LoadOptions): void {
  const names = new Map<string, number>()
  const endpoints = new Map<string, number>()
  raw.hosts.forEach((h, i) => {
    const seen = names.get(h.name)
    if (seen !== undefined) problem(['hosts', i, 'name'], `duplicate host name ${JSON.stringify(h.name)} (also hosts[${seen}])`, 'give every host its own name')
    else names.set(h.name, i)

    if (isIP(h.address) === 0) {
      problem(['hosts', i, 'address'], `${JSON.stringify(h.address)} is not an IP address`, 'write the host\'s IPv4 or IPv6 address on the cluster network, e.g. 10.0.0.11')
    } else if (isUnusableAddress(h.address)) {
      problem(['hosts', i, 'address'], `${h.address} cannot be a cluster address`, 'services bind to this address; use the host\'s own address on the cluster network')
    }
    const ep = `${h.address}:${h.port ?? 22}`
    const other = endpoints.get(ep)
    if (other !== undefined) problem(['hosts', i, 'address'], `same address and SSH port as hosts[${other}] (${ep})`, 'each host needs its own address')
    else endpoints.set(ep, i)

    if (h.engine) {
      for (const key of ['port', 'user', 'sudo', 'auth', 'jump'] as const) {
        if (h[key] !== undefined) problem(['hosts', i], `\`${key}\` is for SSH hosts; this host is a container engine`, key === 'auth' || key === 'user' || key === 'port' ? `move it into \`engine: {ssh: {...}}\` to reach the engine over SSH, or remove it` : 'remove it', key)
      }
      const tcp = h.engine.tcp
      if (tcp && [tcp.ca, tcp.cert, tcp.key].filter(Boolean).length % 3 !== 0) {
        problem(['hosts', i, 'engine', 'tcp'], 'TLS needs all three of ca, cert and key', 'give ca, cert and key together, or none for plain TCP')
      }
      if (tcp && !tcp.ca && isIP(tcp.host) !== 0 && !isLoopback(tcp.host)) {
        problem(['hosts', i, 'engine', 'tcp'], 'a TCP engine without TLS is open to anyone on the network', 'give ca, cert and key (the engine\'s TLS client certificates)')
      }
      const key = h.engine.ssh?.auth?.key
      if (opts.checkKeyFiles && key && !existsSync(expandHome(key, opts, abs))) {
        problem(['hosts', i, 'engine', 'ssh', 'auth', 'key'], `key file ${key} does not exist`, 'point `key:` at a private key file, or use `agent: true`')
      }
      return
    }
    const user = h.user ?? 'root'
    if (h.sudo && user === 'root') problem(['hosts', i, 'sudo'], '`sudo: true` with user root', 'set `user:` to the non-root login that has sudo, or remove `sudo`')
    if (!h.sudo && user !== 'root') problem(['hosts', i, 'user'], `user ${user} is not root and sudo is off`, 'add `sudo: true` (passwordless sudo is needed) or log in as root')
    if (h.jump && isIP(h.jump.address) === 0 && !/^[a-z0-9.-]+$/i.test(h.jump.address)) {
      problem(['hosts', i, 'jump', 'address'], `${JSON.stringify(h.jump.address)} is not an address or host name`)
    }
    if (opts.checkKeyFiles) {
      for (const [auth, path] of [[h.auth, ['hosts', i, 'auth', 'key']], [h.jump?.auth, ['hosts', i, 'jump', 'auth', 'key']]] as const) {
        if (auth?.key && !existsSync(expandHome(auth.key, opts, abs))) {
          problem([...path], `key file ${auth.key} does not exist`, 'point `key:` at a private key file, or use `agent: true`')
        }
      }
    }
  })

  if (!listReleases().includes(raw.release)) {
    problem(['release'], `unknown release ${JSON.stringify(raw.release)}`, `use one of: ${listReleases().join(', ')}`)
  }

  // Placement on hosts that exist, and no two services on one port of one machine.
  const hostNames = raw.hosts.map((h) => h.name)
  const comps = raw.components
  checkPatroni(raw, problem)
  for (const comp of ['postgresql', 'redis'] as const) {
    const placement = comps[comp]
    if (placement.host === undefined) continue // postgresql in Patroni mode: checked above
    if (!hostNames.includes(placement.host)) {
      problem(['components', comp, 'host'], `no host named ${JSON.stringify(placement.host)}`, `use one of: ${hostNames.join(', ')}`)
    }
  }
  const imHosts = ejabberdHostsOf(raw)
  if (comps.ejabberd.host !== undefined && !hostNames.includes(comps.ejabberd.host)) {
    problem(['components', 'ejabberd', 'host'], `no host named ${JSON.stringify(comps.ejabberd.host)}`, `use one of: ${hostNames.join(', ')}`)
  }
  // Under Patroni ejabberd reaches the primary through a proxy on its host; that proxy is set up on the first node only.
  if (comps.postgresql.hosts && imHosts.length > 1) {
    problem(['components', 'ejabberd', 'hosts'], 'an ejabberd cluster with PostgreSQL under Patroni is not supported yet (the proxy to the primary runs on one ejabberd host)', 'give ejabberd one `host:`, or PostgreSQL one `host:`')
  }
  for (const comp of ['ejabberd', 'haproxy'] as const) {
    const placed = comps[comp]?.hosts ?? []
    placed.forEach((name, i) => {
      const host = raw.hosts.find((h) => h.name === name)
      if (!host) problem(['components', comp, 'hosts', i], `no host named ${JSON.stringify(name)}`, `use one of: ${hostNames.join(', ')}`)
      // Nodes joined over Erlang distribution, and HAProxy from Debian's package, need hosts imctl reaches over SSH.
      else if (host.engine && (comp === 'haproxy' || placed.length > 1)) {
        problem(
          ['components', comp, 'hosts', i],
          comp === 'haproxy' ? `HAProxy runs on SSH hosts only; ${name} is a container engine` : `an ejabberd cluster runs on SSH hosts only; ${name} is a container engine`,
          comp === 'haproxy' ? 'place HAProxy on an SSH host' : 'place the ejabberd nodes on SSH hosts, or give ejabberd one `host:` (which may be an engine)',
        )
      }
    })
  }
  if (comps.haproxy?.virtualIp) checkVirtualIp(raw, problem)
  for (const comp of ['kafka', 'minio'] as const) {
    const placed = comps[comp]?.hosts ?? []
    placed.forEach((name, i) => {
      const host = raw.hosts.find((h) => h.name === name)
      if (!host) problem(['components', comp, 'hosts', i], `no host named ${JSON.stringify(name)}`, `use one of: ${hostNames.join(', ')}`)
      // On an engine a node is one container; nodes across engines (each advertising its host's address and published ports) are not there yet.
      else if (host.engine && placed.length > 1) {
        const shown = comp === 'kafka' ? 'Kafka' : 'MinIO'
        problem(
          ['components', comp, 'hosts', i],
          `${shown} on a container engine runs as a single node for now; ${name} is a container engine and ${shown} has ${placed.length} hosts`,
          comp === 'kafka' ? 'give Kafka one host, which may be an engine, or place its 3 or 5 nodes on SSH hosts' : 'give MinIO one host with its drives, which may be an engine with a volume per drive, or place its nodes on SSH hosts',
        )
      }
    })
  }
  const kafkaNodes = comps.kafka?.hosts.length ?? 1
  if (![1, 3, 5].includes(kafkaNodes)) {
    problem(['components', 'kafka', 'hosts'], `${kafkaNodes} Kafka hosts: the controller quorum needs 1, 3 or 5`, 'use 1 host, or 3 (replication factor 3, min.insync.replicas 2), or 5')
  }
  if (comps.minio) {
    const drives = (comps.minio.drives ?? DEFAULT_MINIO_DRIVES).length * comps.minio.hosts.length
    if (drives > 1 && drives < 4) {
      problem(['components', 'minio', comps.minio.drives ? 'drives' : 'hosts'], `${drives} MinIO drives in all: erasure coding needs 4 to 16`, 'use one host with one drive, or hosts x drives of 4 to 16')
    } else if (drives > 16) {
      problem(['components', 'minio', 'drives'], `${drives} MinIO drives in all: one erasure set holds at most 16`, 'use hosts x drives of 4 to 16')
    }
    ;(comps.minio.buckets ?? []).forEach((b, i) => {
      if (IMCTL_BUCKETS.includes(b)) problem(['components', 'minio', 'buckets', i], `bucket ${b} is imctl's own`, 'remove it; imctl creates it')
    })
  }
  // Ports are claimed per address: two host entries with one address are one machine.
  const addressOf = (name: string) => raw.hosts.find((h) => h.name === name)?.address ?? `?${name}`
  const ports = new Map<string, {owner: string; path: Path}>()
  const claim = (host: string, port: number, owner: string, path: Path) => {
    const key = `${addressOf(host)}:${port}`
    const prev = ports.get(key)
    if (prev) problem(path, `port ${port} on host ${host} is already used by ${prev.owner}`, 'choose another port for one of them')
    else ports.set(key, {owner, path})
  }
  raw.hosts.forEach((h, i) => ports.set(`${h.address}:${h.port ?? 22}`, {owner: 'sshd', path: ['hosts', i, 'port']}))
  for (const h of pgNodes(comps.postgresql)) claim(h, comps.postgresql.port ?? DEFAULT_PORTS.postgresql, 'postgresql', ['components', 'postgresql', comps.postgresql.port ? 'port' : comps.postgresql.hosts ? 'hosts' : 'host'])
  if (comps.postgresql.hosts) {
    const pgPath = (key: string, set: boolean): Path => ['components', 'postgresql', set ? key : 'hosts']
    for (const h of comps.postgresql.hosts) claim(h, PATRONI_API_PORT, 'Patroni\'s REST API', pgPath('hosts', false))
    for (const h of comps.postgresql.etcd ?? comps.postgresql.hosts) {
      claim(h, ETCD_PORTS.client, 'etcd (clients)', pgPath('etcd', Boolean(comps.postgresql.etcd)))
      claim(h, ETCD_PORTS.peer, 'etcd (peers)', pgPath('etcd', Boolean(comps.postgresql.etcd)))
    }
    claim(ejabberdHostsOf(raw)[0] ?? '?', comps.postgresql.proxyPort ?? DEFAULT_PORTS.pgProxy, 'the PostgreSQL proxy', pgPath('proxyPort', comps.postgresql.proxyPort !== undefined))
  }
  claim(comps.redis.host, comps.redis.port ?? DEFAULT_PORTS.redis, 'redis', ['components', 'redis', comps.redis.port ? 'port' : 'host'])
  const imPlaced: Path = ['components', 'ejabberd', comps.ejabberd.hosts ? 'hosts' : 'host']
  for (const h of imHosts) {
    for (const [name, def] of Object.entries(DEFAULT_PORTS.ejabberd) as [keyof typeof DEFAULT_PORTS.ejabberd, number][]) {
      const set = comps.ejabberd.ports?.[name]
      claim(h, set ?? def, `ejabberd ${name}`, set ? ['components', 'ejabberd', 'ports', name] : imPlaced)
    }
    if (imHosts.length > 1) for (let p = ERLANG_DIST_PORTS.min; p <= ERLANG_DIST_PORTS.max; p++) claim(h, p, 'ejabberd Erlang distribution', imPlaced)
  }
  for (const h of comps.haproxy?.hosts ?? []) {
    for (const [name, def] of Object.entries(DEFAULT_HAPROXY_PORTS) as [keyof typeof DEFAULT_HAPROXY_PORTS, number][]) {
      const set = comps.haproxy!.ports?.[name]
      claim(h, set ?? def, `haproxy ${name}`, set ? ['components', 'haproxy', 'ports', name] : ['components', 'haproxy', 'hosts'])
    }
  }
  for (const h of comps.kafka?.hosts ?? []) {
    claim(h, comps.kafka!.port ?? DEFAULT_PORTS.kafka.port, 'kafka', ['components', 'kafka', comps.kafka!.port ? 'port' : 'hosts'])
    claim(h, comps.kafka!.controllerPort ?? DEFAULT_PORTS.kafka.controllerPort, 'kafka controller', ['components', 'kafka', comps.kafka!.controllerPort ? 'controllerPort' : 'hosts'])
  }
  for (const h of comps.minio?.hosts ?? []) {
    claim(h, comps.minio!.port ?? DEFAULT_PORTS.minio.port, 'minio', ['components', 'minio', comps.minio!.port ? 'port' : 'hosts'])
    claim(h, comps.minio!.consolePort ?? DEFAULT_PORTS.minio.consolePort, 'minio console', ['components', 'minio', comps.minio!.consolePort ? 'consolePort' : 'hosts'])
  }
  if (raw.tls) {
    const c2sTls = comps.ejabberd.ports?.c2sTls
    for (const h of imHosts) claim(h, c2sTls ?? DEFAULT_C2S_TLS_PORT, 'ejabberd c2sTls', c2sTls ? ['components', 'ejabberd', 'ports', 'c2sTls'] : ['tls'])
    checkTls(raw, problem, abs)
  } else if (comps.ejabberd.ports?.c2sTls !== undefined) {
    problem(['components', 'ejabberd', 'ports', 'c2sTls'], 'c2sTls is the direct-TLS XMPP port, and this cluster has no `tls:`', 'add `tls: {ca: imctl}`, or remove c2sTls')
  }
  const jwt = comps.ejabberd.jwt
  if (jwt && !jwt.enabled && jwt.jidField !== undefined) {
    problem(['components', 'ejabberd', 'jwt'], '`jidField` has no effect while JWT login is off', 'set `enabled: true`, or remove jidField', 'jidField')
  }
  raw.firewall?.adminSources?.forEach((src, i) => {
    const bad = checkSource(src)
    if (bad) problem(['firewall', 'adminSources', i], bad.message, bad.hint)
  })
  // Erlang's port mapper listens on 4369 beside ejabberd.
  for (const h of imHosts) {
    const epmd = ports.get(`${addressOf(h)}:4369`)
    if (epmd) problem(epmd.path, `port 4369 on host ${h} is needed by ejabberd's epmd but used by ${epmd.owner}`, 'choose another port')
  }
}

/** The ejabberd nodes as written: `hosts`, or the one `host`. */
function ejabberdHostsOf(raw: RawConfig): string[] {
  return raw.components.ejabberd.hosts ?? (raw.components.ejabberd.host !== undefined ? [raw.components.ejabberd.host] : [])
}

const DEFAULT_C2S_TLS_PORT = 5223

/** TLS is for SSH hosts for now, and a CA of the user's own must exist with a private key only its owner reads. */
function checkTls(raw: RawConfig, problem: ProblemFn, abs: string): void {
  const tls = raw.tls!
  const pg = raw.components.postgresql
  // Patroni's nodes would each need a certificate and Patroni its own TLS settings (REST API, replication, etcd).
  if (pg.hosts) problem(['components', 'postgresql', 'hosts'], 'TLS with PostgreSQL under Patroni (`hosts`) is not there yet', 'use `host:` (one PostgreSQL node) with `tls:`, or remove `tls:` for now')
  // Every node would need its own certificate, and HAProxy (passing TLS through) a name in ejabberd's.
  if (raw.components.ejabberd.hosts && raw.components.ejabberd.hosts.length > 1) problem(['components', 'ejabberd', 'hosts'], 'TLS with several ejabberd nodes (`hosts`) is not there yet', 'use `host:` (one ejabberd node) with `tls:`, or remove `tls:` for now')
  if (raw.components.haproxy) problem(['components', 'haproxy'], 'TLS behind HAProxy is not there yet', 'remove `haproxy:` or `tls:` for now')
  const onEngine = (name: string | undefined) => raw.hosts.find((h) => h.name === name)?.engine
  const engines = (['postgresql', 'redis', 'ejabberd'] as const).filter((c) => (c === 'postgresql' ? pgNodes(pg).some(onEngine) : c === 'ejabberd' ? ejabberdHostsOf(raw).some(onEngine) : onEngine(raw.components[c].host)))
  if (engines.length) problem(['tls'], `TLS is not there yet for components on container engines (${engines.join(', ')})`, 'place postgresql, redis and ejabberd on SSH hosts, or remove `tls:`')
  for (const c of ['kafka', 'minio'] as const) {
    if (raw.components[c]) problem(['components', c], `TLS for ${c === 'kafka' ? 'Kafka' : 'MinIO'} is not there yet, and \`tls:\` would leave it in plaintext`, `remove ${c} or \`tls:\` for now`)
  }
  if (typeof tls.ca === 'object') {
    for (const key of ['cert', 'key'] as const) {
      const file = resolve(dirname(abs), tls.ca[key])
      if (!existsSync(file)) problem(['tls', 'ca', key], `${tls.ca[key]} does not exist`, key === 'cert' ? 'point `cert:` at your CA certificate (PEM)' : 'point `key:` at your CA\'s private key (PEM, mode 0600)')
      else if (key === 'key' && statSync(file).mode & 0o077) problem(['tls', 'ca', 'key'], `${tls.ca.key} is readable by others (mode ${(statSync(file).mode & 0o777).toString(8)})`, `run: chmod 600 ${file}`)
    }
  }
}

/** Patroni's REST API (HAProxy's health check asks it which node is the primary). */
export const PATRONI_API_PORT = 8008
export const ETCD_PORTS = {client: 2379, peer: 2380}

function pgNodes(pg: RawConfig['components']['postgresql']): string[] {
  return pg.hosts ?? (pg.host !== undefined ? [pg.host] : [])
}

/** `host` or `hosts` (Patroni mode): SSH hosts that exist, and an etcd quorum that survives the loss of one member. */
function checkPatroni(raw: RawConfig, problem: ProblemFn): void {
  const pg = raw.components.postgresql
  const at: Path = ['components', 'postgresql']
  if ((pg.host === undefined) === (pg.hosts === undefined)) {
    problem(at, pg.host === undefined ? 'missing `host` (one node) or `hosts` (Patroni)' : 'give `host` or `hosts`, not both', 'write `host: db1` for one node, or `hosts: [db1, db2]` for a primary and a replica under Patroni')
    return
  }
  if (!pg.hosts) {
    for (const key of ['etcd', 'proxyPort'] as const) {
      if (pg[key] !== undefined) problem(at, `\`${key}\` is for Patroni mode (\`hosts\` with 2 or more nodes)`, 'remove it, or list the nodes in `hosts`', key)
    }
    return
  }
  const sshHost = (name: string, path: Path) => {
    const h = raw.hosts.find((x) => x.name === name)
    if (!h) problem(path, `no host named ${JSON.stringify(name)}`, `use one of: ${raw.hosts.map((x) => x.name).join(', ')}`)
    else if (h.engine) problem(path, `${name} is a container engine; Patroni, etcd and their PostgreSQL run on SSH hosts`, 'name SSH hosts here')
  }
  pg.hosts.forEach((name, i) => sshHost(name, [...at, 'hosts', i]))
  if (pg.etcd) pg.etcd.forEach((name, i) => sshHost(name, [...at, 'etcd', i]))
  const members = pg.etcd ?? pg.hosts
  if (members.length < 3 || members.length % 2 === 0) {
    const why = `${members.length} etcd members: etcd needs a majority, so it survives the loss of one member only with an odd number of 3 or more`
    problem([...at, pg.etcd ? 'etcd' : 'hosts'], pg.etcd ? why : `${why} (etcd runs on \`hosts\` unless \`etcd\` names its members)`, 'add `etcd: [db1, db2, im1]` naming 3 (or 5) hosts; a third member may be any SSH host, e.g. the IM host')
  }
  const im = raw.hosts.find((h) => h.name === raw.components.ejabberd.host)
  if (im?.engine) problem(['components', 'ejabberd', 'host'], 'with PostgreSQL under Patroni, ejabberd runs on an SSH host (its local proxy to the primary is a systemd unit)', 'place ejabberd on an SSH host')
}

function toModel(raw: RawConfig, abs: string, opts: LoadOptions): ClusterConfig {
  const dir = dirname(abs)
  const auth = (a: RawAuth | undefined): SshAuth =>
    a?.key ? {kind: 'key', keyFile: expandHome(a.key, opts, abs)} : {kind: 'agent'}
  const hosts: HostConfig[] = raw.hosts.map((h) => {
    const user = h.user ?? 'root'
    const hostAuth = auth(h.auth)
    const jump: JumpHost | undefined = h.jump
      ? {address: h.jump.address, port: h.jump.port ?? 22, user: h.jump.user ?? user, auth: h.jump.auth ? auth(h.jump.auth) : hostAuth}
      : undefined
    const engine = h.engine ? toEngine(h.engine, auth, dir) : undefined
    return {name: h.name, address: h.address, port: h.port ?? 22, user, sudo: h.sudo ?? false, auth: hostAuth, ...(jump ? {jump} : {}), ...(engine ? {engine} : {})}
  })
  const e = raw.components.ejabberd.ports ?? {}
  const imHosts = ejabberdHostsOf(raw)
  const hp = raw.components.haproxy
  const k = raw.components.kafka
  const m = raw.components.minio
  return {
    file: abs,
    name: raw.name,
    domain: raw.domain,
    release: raw.release,
    secretsFile: resolve(dir, raw.secretsFile ?? `${raw.name}.secrets.yaml`),
    knownHostsFile: resolve(dir, raw.knownHostsFile ?? '.imctl/known_hosts'),
    hosts,
    components: {
      postgresql: toPostgres(raw.components.postgresql),
      redis: {host: raw.components.redis.host, port: raw.components.redis.port ?? DEFAULT_PORTS.redis},
      ejabberd: {
        host: imHosts[0]!,
        hosts: imHosts,
        ports: {
          c2s: e.c2s ?? DEFAULT_PORTS.ejabberd.c2s,
          http: e.http ?? DEFAULT_PORTS.ejabberd.http,
          mqtt: e.mqtt ?? DEFAULT_PORTS.ejabberd.mqtt,
          api: e.api ?? DEFAULT_PORTS.ejabberd.api,
        },
        ...(raw.tls ? {c2sTlsPort: e.c2sTls ?? DEFAULT_C2S_TLS_PORT} : {}),
        ...(raw.components.ejabberd.jwt?.enabled ? {jwt: {jidField: raw.components.ejabberd.jwt.jidField ?? 'jid'}} : {}),
      },
      ...(k ? {kafka: {hosts: k.hosts, port: k.port ?? DEFAULT_PORTS.kafka.port, controllerPort: k.controllerPort ?? DEFAULT_PORTS.kafka.controllerPort}} : {}),
      ...(m
        ? {
            minio: {
              hosts: m.hosts,
              drives: m.drives ?? DEFAULT_MINIO_DRIVES,
              port: m.port ?? DEFAULT_PORTS.minio.port,
              consolePort: m.consolePort ?? DEFAULT_PORTS.minio.consolePort,
              buckets: m.buckets ?? [],
            },
          }
        : {}),
      ...(hp
        ? {
            haproxy: {
              hosts: hp.hosts,
              ports: {
                c2s: hp.ports?.c2s ?? DEFAULT_HAPROXY_PORTS.c2s,
                http: hp.ports?.http ?? DEFAULT_HAPROXY_PORTS.http,
                mqtt: hp.ports?.mqtt ?? DEFAULT_HAPROXY_PORTS.mqtt,
                stats: hp.ports?.stats ?? DEFAULT_HAPROXY_PORTS.stats,
              },
              ...(hp.virtualIp ? {virtualIp: toVirtualIp(hp.virtualIp, raw.name)} : {}),
            },
          }
        : {}),
    },
    ...(raw.firewall ? {firewall: {enabled: raw.firewall.enabled, adminSources: (raw.firewall.adminSources ?? []).map(canonicalSource)}} : {}),
    ...(raw.tls ? {tls: toTls(raw.tls, raw.name, dir, raw.secretsFile)} : {}),
  }
}

function toTls(t: NonNullable<RawConfig['tls']>, name: string, dir: string, secretsFile: string | undefined): TlsConfig {
  // The PKI lives beside the secrets file, as sensitive as it.
  const pkiDir = resolve(dirname(resolve(dir, secretsFile ?? `${name}.secrets.yaml`)), `${name}.pki`)
  return {
    ca: t.ca === 'imctl' ? {kind: 'imctl'} : {kind: 'file', cert: resolve(dir, t.ca.cert), key: resolve(dir, t.ca.key)},
    days: t.days ?? 397,
    dir: pkiDir,
  }
}

/** Why an admin source is not a usable network (an address, or a CIDR without host bits), or null. */
function checkSource(src: string): {message: string; hint: string} | null {
  const [addr = '', bits, ...extra] = src.split('/')
  const family = isIP(addr)
  const max = family === 6 ? 128 : 32
  const hint = 'write an address or a network such as 192.0.2.0/24 or 2001:db8::/32'
  if (family === 0 || extra.length || (bits !== undefined && !/^\d{1,3}$/.test(bits))) return {message: `${JSON.stringify(src)} is not an address or CIDR network`, hint}
  const len = bits === undefined ? max : Number(bits)
  if (len > max) return {message: `${JSON.stringify(src)}: a prefix of /${len} is too long for IPv${family}`, hint}
  if (len === 0) return {message: `${JSON.stringify(src)} is everyone`, hint: 'leave adminSources out to let SSH in from anywhere'}
  if (maskedAddress(addr, len) !== canonicalAddress(addr)) return {message: `${JSON.stringify(src)} has host bits set`, hint: `write the network, ${maskedAddress(addr, len)}/${len}`}
  return null
}

/** An admin source as nftables lists it: canonical address, no /32 or /128. */
function canonicalSource(src: string): string {
  const [addr = '', bits] = src.split('/')
  const max = isIP(addr) === 6 ? 128 : 32
  return bits === undefined || Number(bits) === max ? canonicalAddress(addr) : `${canonicalAddress(addr)}/${Number(bits)}`
}

function canonicalAddress(addr: string): string {
  return isIP(addr) === 6 ? new URL(`http://[${addr}]/`).hostname.slice(1, -1) : addr.split('.').map(Number).join('.')
}

/** The address with every bit past `len` cleared, canonical. */
function maskedAddress(addr: string, len: number): string {
  if (isIP(addr) === 4) {
    const n = addr.split('.').reduce((a, o) => a * 256n + BigInt(Number(o)), 0n)
    const m = len === 0 ? 0n : n & (((1n << BigInt(len)) - 1n) << BigInt(32 - len))
    return [24n, 16n, 8n, 0n].map((s) => String((m >> s) & 255n)).join('.')
  }
  const hex = new URL(`http://[${addr}]/`).hostname.slice(1, -1)
  const [head = '', tail = ''] = hex.includes('::') ? hex.split('::') : [hex, '']
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = hex.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
  const n = groups.reduce((a, g) => (a << 16n) + BigInt(parseInt(g, 16)), 0n)
  const m = n & (((1n << BigInt(len)) - 1n) << BigInt(128 - len))
  const out = Array.from({length: 8}, (_, i) => ((m >> BigInt(16 * (7 - i))) & 0xffffn).toString(16)).join(':')
  return new URL(`http://[${out}]/`).hostname.slice(1, -1)
}

function toPostgres(pg: RawConfig['components']['postgresql']): PostgresPlacement {
  const nodes = pgNodes(pg)
  const port = pg.port ?? DEFAULT_PORTS.postgresql
  if (!pg.hosts) return {host: nodes[0]!, port}
  return {host: nodes[0]!, port, patroni: {hosts: pg.hosts, etcd: pg.etcd ?? pg.hosts, proxyPort: pg.proxyPort ?? DEFAULT_PORTS.pgProxy}}
}

function toEngine(e: RawEngine, auth: (a: RawAuth | undefined) => SshAuth, dir: string): EngineEndpoint {
  if (e.socket) return {kind: 'socket', socketPath: resolve(dir, e.socket)}
  if (e.tcp) {
    const {host, port = 2376, ca, cert, key} = e.tcp
    return {kind: 'tcp', host, port, ...(ca && cert && key ? {tls: {ca: resolve(dir, ca), cert: resolve(dir, cert), key: resolve(dir, key)}} : {})}
  }
  const s = e.ssh!
  return {kind: 'ssh', address: s.address, port: s.port ?? 22, user: s.user ?? 'root', auth: auth(s.auth)}
}

function expandHome(p: string, opts: LoadOptions, abs: string): string {
  if (p === '~' || p.startsWith('~/')) return resolve(opts.home ?? homedir(), p.slice(2))
  return resolve(dirname(abs), p)
}

/** `haproxy.virtualIp`: an IPv4 address (optionally /prefix) shared by 2 HAProxy hosts over VRRP, which keepalived speaks unicast to the other host. */
function checkVirtualIp(raw: RawConfig, problem: ProblemFn): void {
  const hp = raw.components.haproxy!
  const vip = hp.virtualIp!
  const at = ['components', 'haproxy', 'virtualIp']
  if (hp.hosts.length < 2) problem(['components', 'haproxy'], 'a virtual IP needs 2 HAProxy hosts to move between', 'add a second host to `haproxy.hosts`, or remove `virtualIp:`', 'virtualIp')
  const [address = '', bits, ...rest] = vip.address.split('/')
  const prefix = bits === undefined ? 32 : /^\d{1,2}$/.test(bits) ? Number(bits) : NaN
  if (isIP(address) !== 4 || rest.length || !(prefix >= 1 && prefix <= 32)) {
    problem([...at, 'address'], `${JSON.stringify(vip.address)} is not an IPv4 address with an optional /prefix (1-32)`, 'write e.g. 10.0.0.100/24: a free address on the HAProxy hosts\' network')
    return
  }
  if (isUnusableAddress(address) || isLoopback(address)) problem([...at, 'address'], `${address} cannot be a virtual IP`, 'use a free address on the HAProxy hosts\' network')
  const taken = raw.hosts.findIndex((h) => h.address === address)
  if (taken >= 0) problem([...at, 'address'], `${address} is hosts[${taken}]'s own address`, 'choose an address no host has: keepalived adds it to whichever HAProxy host holds it')
  const net = new BlockList()
  net.addSubnet(address, prefix, 'ipv4')
  hp.hosts.forEach((name, i) => {
    const host = raw.hosts.find((h) => h.name === name)
    if (!host) return
    // VRRP speaks unicast between the hosts' cluster addresses, and the address moves between them on one network.
    if (isIP(host.address) !== 4) problem(['components', 'haproxy', 'hosts', i], `${name}'s address ${host.address} is not IPv4; keepalived's VRRP here runs over IPv4`, 'give the HAProxy hosts IPv4 cluster addresses')
    else if (prefix < 32 && !net.check(host.address, 'ipv4')) problem([...at, 'address'], `${name}'s address ${host.address} is outside ${address}/${prefix}`, 'the virtual IP must be on the same network as the HAProxy hosts: check the prefix')
  })
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(vip.interface)) problem([...at, 'interface'], `${JSON.stringify(vip.interface)} is not a network interface name`, 'the interface that carries the HAProxy hosts\' cluster addresses, as `ip -o addr show` names it on them (e.g. eth0)')
}

/** VRRP's virtual router id: as given, or one derived from the cluster's name, so two clusters on one LAN are unlikely to share it. */
function toVirtualIp(vip: {address: string; interface: string; routerId?: number}, cluster: string): VirtualIp {
  const [address = '', bits] = vip.address.split('/')
  return {address, prefix: bits === undefined ? 32 : Number(bits), interface: vip.interface, routerId: vip.routerId ?? (createHash('sha256').update(cluster).digest()[0]! % 255) + 1}
}

function isLoopback(addr: string): boolean {
  return addr === '::1' || addr.startsWith('127.')
}

function isUnusableAddress(addr: string): boolean {
  return addr === '0.0.0.0' || addr === '::' || addr === '255.255.255.255' || /^(22[4-9]|23\d)\./.test(addr)
}

/** Offset in the text of the node at `path` (or of the key `key` inside it). */
function offsetOf(doc: Document, path: Path, key?: string): number {
  let node: unknown = doc.contents
  let best = (doc.contents as Node | null)?.range?.[0] ?? 0
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === seg)
      if (!pair) break
      best = (pair.key as Node).range?.[0] ?? best
      node = pair.value
      if ((node as Node | null)?.range) best = (node as Node).range![0]
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg]
      if ((node as Node | null)?.range) best = (node as Node).range![0]
      else break
    } else break
  }
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key)
    if (pair && (pair.key as Node).range) return (pair.key as Node).range![0]
  }
  return best
}

function pointerToPath(pointer: string): Path {
  if (!pointer) return []
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s))
}

function formatPath(path: Path): string {
  return path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '')
}

function getIn(data: unknown, path: Path): unknown {
  return path.reduce<unknown>((v, seg) => (v && typeof v === 'object' ? (v as Record<string | number, unknown>)[seg] : undefined), data)
}

function describeType(v: unknown): string {
  if (v === null || v === undefined) return 'empty'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a mapping'
  return `${typeof v} ${JSON.stringify(v)}`
}

/** oneOf inside auth also reports its branches' `required`; keep the one readable message. */
function simplifyAjvErrors(errors: ErrorObject[]): ErrorObject[] {
  const authOneOf = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath))
  // (the same holds for engine's oneOf)
  return errors.filter((e) => !(e.keyword === 'required' && authOneOf.has(e.instancePath) && e.schemaPath.includes('oneOf')) && !(e.instancePath.startsWith('/tls/ca') && e.keyword !== 'oneOf' && e.schemaPath.includes('/ca/oneOf')))
}

function allowedKeys(e: ErrorObject): string | undefined {
  const schema = e.parentSchema as {properties?: Record<string, unknown>} | undefined
  return schema?.properties ? Object.keys(schema.properties).join(', ') : undefined
}

function hintForMissing(key: string): string | undefined {
  const hints: Record<string, string> = {
    apiVersion: 'add `apiVersion: imctl/v1` at the top',
    name: 'add `name: my-cluster`',
    domain: 'add `domain: chat.example.com` (the XMPP domain)',
    release: 'add `release: ejabberd-23.01-debian12`',
    hosts: 'add a `hosts:` list with at least one host',
    address: 'add `address: 10.0.0.11` (the host\'s cluster address)',
    host: 'add `host: NAME` naming one of the hosts',
    components: 'add `components:` placing postgresql, redis and ejabberd on hosts',
  }
  return hints[key]
}

function hintForPattern(path: Path): string | undefined {
  const last = path[path.length - 1]
  if (last === 'name' && path.length === 1) return 'lower-case letters, digits and dashes, starting with a letter (up to 31)'
  if (last === 'name') return 'lower-case letters, digits and dashes, starting with a letter'
  if (last === 'domain') return 'a lower-case DNS name such as chat.example.com'
  if (last === 'user') return 'a Unix user name such as admin'
  if (last === 'jidField') return 'a claim name: letters, digits and underscores, e.g. jid'
  return undefined
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>()
  return problems
    .filter((p) => {
      const k = `${p.line}:${p.column}:${p.message}`
      if (seen.has(k)) return false
      seen.add(k)
      return true
    })
    .sort((a, b) => a.line - b.line || a.column - b.column)
}
