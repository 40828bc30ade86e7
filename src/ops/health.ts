import {randomBytes} from 'node:crypto'
import {client as xmppClient, xml} from '@xmpp/client'
import {Redis} from 'ioredis'
import pg from 'pg'
import {checkServerIdentity, type PeerCertificate} from 'node:tls'
import WebSocket from 'ws'
import {clientCertificate} from '../pki/pki.js'
import {trustWebSocket} from '../pki/websocket.js'
import {openEjabberdApi, type EjabberdApi} from '../components/ejabberd/api.js'
import type {ComponentName} from '../config/model.js'
import type {IoHost} from '../io.js'
import {CONTAINER_PORTS, ejabberdNodeName} from '../components/ejabberd/index.js'
import {ejabberdClustered, hostByName} from '../config/model.js'
import {ejabberdClusterQuery, parseEjabberdCluster} from '../plan/observe.js'
import {kafkaHealthChecks} from '../components/kafka/health.js'
import {minioHealthChecks} from '../components/minio/health.js'
import {patroniHealthChecks} from '../components/postgresql/health.js'
import {archiveHealthChecks} from './archive/health.js'
import {firewallProblem, firewallQuery, parseFirewall} from '../plan/firewall.js'
import {endpointFor, primaryEndpoint} from '../plan/desired.js'
import type {EngineConnection} from '../transport/engine.js'
import type {HostConnection} from '../transport/types.js'
import type {RemoteCommand} from '../transport/command.js'
import {closeAll, connectReachable, loadCluster, usedHosts, type ClusterModel} from './cluster.js'

export interface HealthCheck {
  host: string
  component: ComponentName
  check: string
  ok: boolean
  /** Passed only because the component's cluster still serves: one of its nodes is down. */
  degraded?: boolean
  /** A check of the whole clustered component (e.g. a record produced and consumed), not of one node. */
  clusterLevel?: boolean
  /** About the host rather than a component's node (its firewall): a failure is never only degraded. */
  hostLevel?: boolean
  detail: string
  ms: number
}

export interface HealthReport {
  cluster: string
  /** degraded: everything serves, but a node of a clustered component is down. */
  status: 'healthy' | 'degraded' | 'unhealthy'
  healthy: boolean
  checks: HealthCheck[]
}

/**
 * A failed node check of a clustered component whose cluster-level checks all
 * passed is degraded, not down: the cluster still serves without that node.
 */
export function classifyHealth(checks: HealthCheck[]): {status: HealthReport['status']; checks: HealthCheck[]} {
  const serving = (component: ComponentName) => {
    const own = checks.filter((c) => c.component === component && c.clusterLevel)
    return own.length > 0 && own.every((c) => c.ok)
  }
  const out = checks.map((c) => (!c.ok && !c.clusterLevel && !c.hostLevel && serving(c.component) ? {...c, ok: true, degraded: true, detail: `degraded: ${c.detail}`} : c))
  const status = out.some((c) => !c.ok) ? 'unhealthy' : out.some((c) => c.degraded) ? 'degraded' : 'healthy'
  return {status, checks: out}
}

export interface HealthOptions {
  configFile: string
  acceptNewHostKeys?: boolean
  io: IoHost
  /** Seconds to wait for the test message. */
  messageTimeout?: number
}

/** `imctl health`: every component checked in parallel, through the IM host as its clients see it. */
export async function healthService(opts: HealthOptions): Promise<HealthReport> {
  const model = loadCluster(opts.configFile)
  // Under Patroni a host that runs only PostgreSQL's parts (a node, an etcd member) may be down:
  // the cluster still serves, and the report says which host did not answer.
  const spare = new Set(model.config.components.postgresql.patroni ? usedHosts(model).filter((h) => model.resources.every((r) => r.host !== h.name || r.component === 'postgresql')).map((h) => h.name) : [])
  const {conns, unreachable} = await connectReachable(model.config, usedHosts(model), spare, opts)
  try {
    const down: HealthCheck[] = unreachable.map((u) => ({host: u.host, component: 'postgresql', check: 'host answers over SSH', ok: false, detail: model.redact(u.error), ms: 0}))
    const {status, checks} = classifyHealth([...down, ...(await runHealthChecks(model, conns, opts.messageTimeout ?? 20))])
    return {cluster: model.config.name, status, healthy: status === 'healthy', checks}
  } finally {
    await closeAll(conns)
  }
}

async function timed(host: string, component: ComponentName, check: string, fn: () => Promise<string>, redact: (t: string) => string): Promise<HealthCheck> {
  const t0 = Date.now()
  try {
    const detail = await fn()
    return {host, component, check, ok: true, detail, ms: Date.now() - t0}
  } catch (e) {
    return {host, component, check, ok: false, detail: redact(errorText(e)), ms: Date.now() - t0}
  }
}

function errorText(e: unknown): string {
  if (e instanceof AggregateError) return e.errors.map(errorText).join('; ') || e.message
  return (e as Error)?.message || String(e)
}

export async function runHealthChecks(model: ClusterModel, conns: Map<string, HostConnection>, messageTimeout: number): Promise<HealthCheck[]> {
  const c = model.config.components
  const im = conns.get(c.ejabberd.host)!
  const r = model.redact

  const serviceChecks = model.resources.flatMap((s) => {
    // A host that did not answer has its own failed check (see healthService).
    if (!conns.has(s.host)) return []
    if (s.kind === 'service') {
      return [
        timed(s.host, s.component, `systemd unit ${s.unit}`, async () => {
          const res = await conns.get(s.host)!.exec({argv: ['systemctl', 'is-active', s.unit], description: `check ${s.unit}`, okExitCodes: [0, 3, 4]})
          const state = res.stdout.trim()
          if (state !== 'active') throw new Error(`${s.unit} is ${state || 'unknown'}; see \`journalctl -u ${s.unit}\` on ${s.host}, then run \`imctl install\``)
          return 'active'
        }, r),
      ]
    }
    if (s.kind === 'firewall' && s.table !== null) {
      const desired = s.table
      // Listed under the host's first component (its lane), but about the whole host.
      const check = timed(s.host, s.component, 'firewall (nftables table inet imctl)', async () => {
        const problem = firewallProblem(parseFirewall((await conns.get(s.host)!.exec(firewallQuery())).stdout), desired)
        if (problem) throw new Error(`${problem}; run \`imctl install\` to load the rules`)
        return 'loaded, as rendered'
      }, r)
      return [check.then((c) => ({...c, hostLevel: true}))]
    }
    if (s.kind === 'container-running') {
      return [
        timed(s.host, s.component, `container ${s.name}`, async () => {
          const state = await (conns.get(s.host) as EngineConnection).containerState(s.name)
          if (state !== 'running') throw new Error(`${s.name} is ${state}; see \`imctl logs ${s.component}\`, then run \`imctl install\``)
          return 'running'
        }, r),
      ]
    }
    return []
  })

  const pgLogin = timed(c.postgresql.patroni ? c.ejabberd.host : c.postgresql.host, 'postgresql', `login as ejabberd from ${c.ejabberd.host}${c.postgresql.patroni ? ' through its proxy to the primary' : ''}, SELECT 1`, async () => {
    const pgAt = primaryEndpoint(model.config, 'ejabberd')
    const t = await im.tunnel(pgAt.address, pgAt.port, 'ejabberd')
    const pki = model.secrets.tls
    // With TLS: verify-full, the name being the address ejabberd connects to (the tunnel's 127.0.0.1 is not it).
    // With TLS ejabberd's role logs in with its client certificate, as ejabberd does (pg_hba `cert`): no password.
    const client = pki ? clientCertificate(pki, 'ejabberd') : undefined
    const ssl = pki && client ? {ca: pki.caBundle, cert: client.cert, key: client.key, checkServerIdentity: (_h: string, cert: PeerCertificate) => checkServerIdentity(pgAt.address, cert)} : undefined
    const login = ssl ? {ssl} : {password: model.secrets.postgresql.ejabberd_password}
    const db = new pg.Client({host: '127.0.0.1', port: t.port, user: 'ejabberd', database: 'ejabberd', connectionTimeoutMillis: 10_000, ...login})
    try {
      await db.connect()
      const res = await db.query<{one: number; version: string; ssl: boolean | null}>('SELECT 1 AS one, current_setting(\'server_version\') AS version, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl')
      if (res.rows[0]?.one !== 1) throw new Error('SELECT 1 did not return 1')
      if (pki && res.rows[0].ssl !== true) throw new Error('the session is not encrypted although the cluster has tls')
      return `PostgreSQL ${res.rows[0].version} answers${pki ? ' over TLS (certificate verified), logged in with the client certificate' : ''}`
    } finally {
      await db.end().catch(() => {})
      await t.close()
    }
  }, r)

  // Under Patroni the primary serves the whole cluster: while it does, a node down is degraded.
  const pgCheck = c.postgresql.patroni ? pgLogin.then((x) => ({...x, clusterLevel: true})) : pgLogin

  const redisCheck = timed(c.redis.host, 'redis', `AUTH and PING from ${c.ejabberd.host}`, async () => {
    const redisAt = endpointFor(model.config, 'redis', 'ejabberd')
    const t = await im.tunnel(redisAt.address, redisAt.port, 'ejabberd')
    const pki = model.secrets.tls
    // With TLS: Redis's certificate checked against the CA and for the address ejabberd's tunnel connects to.
    const tls = pki ? {ca: pki.caBundle, checkServerIdentity: (_h: string, cert: PeerCertificate) => checkServerIdentity(redisAt.address, cert)} : undefined
    const client = new Redis({host: '127.0.0.1', port: t.port, password: model.secrets.redis.password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 10_000, ...(tls ? {tls} : {})})
    client.on('error', () => {})
    try {
      await client.connect()
      const pong = await client.ping()
      if (pong !== 'PONG') throw new Error(`PING answered ${pong}`)
      const info = await client.info('server')
      return `Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? '?'} answers PONG${pki ? ' over TLS (certificate verified)' : ''}`
    } finally {
      client.disconnect()
      await t.close()
    }
  }, r)

  const imChecks = ejabberdClustered(model.config) ? clusteredImChecks(model, conns, messageTimeout, r) : (async (): Promise<HealthCheck[]> => {
    let api: EjabberdApi | undefined
    const out: HealthCheck[] = []
    try {
      out.push(
        await timed(c.ejabberd.host, 'ejabberd', 'node status', async () => {
          api = await openEjabberdApi(im, c.ejabberd.ports.api)
          const status = await api.call<string>('status', {})
          if (!/is running/.test(status)) throw new Error(status)
          // ejabberd's API joins its two status lines without a separator.
          return status.replace(/\s*\n\s*/g, '; ').replace(/Status: started(?=\S)/, 'Status: started; ')
        }, r),
      )
      if (api) {
        out.push(
          await timed(c.ejabberd.host, 'ejabberd', 'WebSocket login and message delivery', () => messageRoundTrip(model, im, api!, messageTimeout), r),
        )
      }
    } finally {
      await api?.close()
    }
    return out
  })()

  const extra = Object.entries(COMPONENT_HEALTH).flatMap(([name, checks]) =>
    model.config.components[name as ComponentName] ? checks!({model, conns, timed: async (host, check, fn, o) => ({...(await timed(host, name as ComponentName, check, fn, r)), ...(o?.clusterLevel ? {clusterLevel: true} : {})})}) : [],
  )
  const all = await Promise.all([...serviceChecks, pgCheck, redisCheck, imChecks, ...extra])
  return all.flat()
}

/** What a component's own checks get: the cluster, a connection per host, and a timer that turns a throw into a failed check. */
export interface HealthContext {
  model: ClusterModel
  conns: Map<string, HostConnection>
  /** Runs one check; `clusterLevel` marks a check of the whole clustered component. */
  timed(host: string, check: string, fn: () => Promise<string>, opts?: {clusterLevel?: boolean}): Promise<HealthCheck>
}

/** Checks beyond the units' states, per optional component; each runs in parallel with the rest. */
const COMPONENT_HEALTH: Partial<Record<ComponentName, (ctx: HealthContext) => Promise<HealthCheck | HealthCheck[]>[]>> = {
  postgresql: patroniHealthChecks,
  haproxy: virtualIpHealthChecks,
  kafka: kafkaHealthChecks,
  minio: (ctx) => [...minioHealthChecks(ctx), ...archiveHealthChecks(ctx)],
}

/**
 * An ejabberd cluster: each node running and a member of the cluster (checked on the node,
 * so a node that left shows); HAProxy's view of every node; and one message through the
 * whole cluster (through HAProxy when there is one), the check that decides whether a
 * missing node is a degraded cluster or a down service.
 */
async function clusteredImChecks(model: ClusterModel, conns: Map<string, HostConnection>, messageTimeout: number, r: (t: string) => string): Promise<HealthCheck[]> {
  const c = model.config.components
  const nodes = c.ejabberd.hosts.map((n) => hostByName(model.config, n))
  const names = nodes.map(ejabberdNodeName)
  // list_cluster names the nodes running with this one (Mnesia's running nodes): a stopped node
  // drops out of every list, and a node that left lists only itself while the others run.
  const lists = await Promise.all(
    nodes.map(async (h) => {
      try {
        const res = await conns.get(h.name)!.exec({...ejabberdClusterQuery(), okExitCodes: [0, 1, 3]})
        return {members: parseEjabberdCluster(res.stdout), said: res.stdout.trim().split('\n')[0] || `exit ${res.exitCode}`}
      } catch (e) {
        return {members: [] as string[], said: errorText(e)}
      }
    }),
  )
  const states = clusterMembership(names, lists.map((l) => l.members))
  const perNode = nodes.map((h, k) =>
    timed(h.name, 'ejabberd', `node ${names[k]} in the cluster`, async () => {
      const st = states[k]!
      if (!st.running) throw new Error(`node ${names[k]} is not running (${lists[k]!.said}); see \`journalctl -u ejabberd\` on ${h.name}, then run \`imctl install\``)
      if (st.missing.length) throw new Error(`it runs with ${st.members.join(', ')} but not with ${st.missing.join(', ')}, which run too: run \`imctl install\` to join it again`)
      return `running with ${st.members.join(', ')}${st.stopped.length ? ` (not running: ${st.stopped.join(', ')})` : ''}`
    }, r),
  )
  const proxies = (c.haproxy?.hosts ?? []).map((hp) => haproxyBackendChecks(model, conns, hp, r))
  const delivery = (async (): Promise<HealthCheck> => {
    const t0 = Date.now()
    // The admin API of the first node that answers registers the throwaway users.
    for (const h of nodes) {
      let api: EjabberdApi | undefined
      try {
        api = await openEjabberdApi(conns.get(h.name)!, c.ejabberd.ports.api)
        await api.call<string>('status', {})
      } catch {
        await api?.close()
        continue
      }
      const vip = c.haproxy?.virtualIp
      // With a virtual IP, as clients reach it: from a HAProxy host that answers SSH, to whichever host holds the address.
      const via = c.haproxy ? hostByName(model.config, (vip && c.haproxy.hosts.find((n) => conns.has(n))) || c.haproxy.hosts[0]!) : h
      const check = vip ? `WebSocket login and message delivery through the virtual IP ${vip.address}` : c.haproxy ? `WebSocket login and message delivery through HAProxy on ${via.name}` : `WebSocket login and message delivery on ${h.name}`
      try {
        const port = c.haproxy ? c.haproxy.ports.http : c.ejabberd.ports.http
        return {...(await timed(via.name, 'ejabberd', check, () => messageRoundTrip(model, conns.get(via.name)!, api!, messageTimeout, {address: vip?.address ?? via.address, port}), r)), clusterLevel: true}
      } finally {
        await api.close()
      }
    }
    return {host: nodes[0]!.name, component: 'ejabberd', check: 'WebSocket login and message delivery', ok: false, clusterLevel: true, detail: 'no ejabberd node\'s admin API answers: every node is down', ms: Date.now() - t0}
  })()
  return (await Promise.all([...perNode, delivery, ...proxies])).flat()
}

/**
 * Which HAProxy host holds the virtual IP, asked on each (`ip -o addr show`): exactly one is
 * healthy, and then a HAProxy host that is down is only degraded; none or both is a failure.
 */
function virtualIpHealthChecks(ctx: HealthContext): Promise<HealthCheck>[] {
  const hp = ctx.model.config.components.haproxy!
  const vip = hp.virtualIp
  if (!vip) return []
  return [
    ctx.timed(hp.hosts[0]!, `virtual IP ${vip.address} on one HAProxy host`, async () => {
      const seen = await Promise.all(
        hp.hosts.map(async (name) => {
          const conn = ctx.conns.get(name)
          if (!conn) return {name, holds: false, said: 'does not answer over SSH'}
          try {
            const res = await conn.exec(virtualIpQuery(vip.interface))
            return {name, holds: holdsAddress(res.stdout, vip.address), said: ''}
          } catch (e) {
            return {name, holds: false, said: errorText(e)}
          }
        }),
      )
      const holders = seen.filter((x) => x.holds).map((x) => x.name)
      const unknown = seen.filter((x) => x.said).map((x) => `${x.name} ${x.said}`)
      if (holders.length === 1) return `held by ${holders[0]}${unknown.length ? ` (${unknown.join('; ')})` : ''}`
      if (holders.length > 1) throw new Error(`held by ${holders.join(' and ')} at once: the hosts do not hear each other's VRRP; check the firewall and \`journalctl -u keepalived\` on them`)
      throw new Error(`no HAProxy host holds it${unknown.length ? ` (${unknown.join('; ')})` : ''}: clients cannot connect; check \`systemctl status haproxy keepalived\` on ${hp.hosts.join(', ')}, then run \`imctl install\``)
    }, {clusterLevel: true}),
  ]
}

/** The IPv4 addresses on one interface, one per line. */
export function virtualIpQuery(iface: string): RemoteCommand {
  return {argv: ['ip', '-o', '-4', 'addr', 'show', 'dev', iface], description: `list the IPv4 addresses on ${iface}`}
}

/** Whether `ip -o -4 addr show` lists `address` (with any prefix). */
export function holdsAddress(stdout: string, address: string): boolean {
  return stdout.split('\n').some((line) => line.split(/\s+/).some((w, i, all) => all[i - 1] === 'inet' && w.split('/')[0] === address))
}

/** HAProxy's stats (CSV, on its loopback, through SSH): is it up, and how does it see each ejabberd node. */
async function haproxyBackendChecks(model: ClusterModel, conns: Map<string, HostConnection>, hpName: string, r: (t: string) => string): Promise<HealthCheck[]> {
  const hp = model.config.components.haproxy!
  let rows: HaproxyServerState[] = []
  const up = await timed(hpName, 'haproxy', 'HAProxy stats', async () => {
    const t = await conns.get(hpName)!.tunnel('127.0.0.1', hp.ports.stats)
    try {
      const res = await fetch(`http://127.0.0.1:${t.port}/stats;csv`, {signal: AbortSignal.timeout(10_000)})
      if (!res.ok) throw new Error(`stats answered ${res.status}`)
      rows = parseHaproxyStats(await res.text())
      return `${rows.length} backend servers: ${rows.filter((x) => x.status.startsWith('UP')).length} up`
    } finally {
      await t.close()
    }
  }, r)
  if (!up.ok) return [up]
  const byNode = model.config.components.ejabberd.hosts.map((node) =>
    timed(node, 'ejabberd', `HAProxy on ${hpName} passes clients to ${node}`, async () => {
      const mine = rows.filter((x) => x.server === node)
      if (!mine.length) throw new Error(`HAProxy on ${hpName} has no server ${node}; run \`imctl install\``)
      const down = mine.filter((x) => !x.status.startsWith('UP'))
      const shown = mine.map((x) => `${x.backend.replace(/_nodes$/, '')} ${x.status}`).join(', ')
      if (down.length) throw new Error(`HAProxy on ${hpName} sees ${node}: ${shown}`)
      return shown
    }, r),
  )
  return [up, ...(await Promise.all(byNode))]
}

/**
 * Each node's standing from every node's `list_cluster` (the nodes running with it; empty when
 * it does not answer): a node is faulted for a peer it does not run with only when that peer
 * runs too; a stopped peer is only noted.
 */
export function clusterMembership(names: string[], lists: string[][]): {running: boolean; members: string[]; missing: string[]; stopped: string[]}[] {
  const running = names.filter((_, k) => (lists[k] ?? []).length > 0)
  const stopped = names.filter((n) => !running.includes(n))
  return names.map((_, k) => {
    const members = lists[k] ?? []
    return {running: members.length > 0, members, missing: members.length ? running.filter((n) => !members.includes(n)) : [], stopped}
  })
}

export interface HaproxyServerState {
  backend: string
  server: string
  status: string
}

/** The server rows of HAProxy's stats CSV (`# pxname,svname,...,status,...`). */
export function parseHaproxyStats(csv: string): HaproxyServerState[] {
  const lines = csv.split('\n').filter(Boolean)
  const header = (lines[0] ?? '').replace(/^#\s*/, '').split(',')
  const col = (n: string) => header.indexOf(n)
  const [px, sv, st] = [col('pxname'), col('svname'), col('status')]
  if (px < 0 || sv < 0 || st < 0) throw new Error('HAProxy stats CSV without pxname, svname and status columns')
  return lines
    .slice(1)
    .map((l) => l.split(','))
    .filter((f) => f[sv] !== 'FRONTEND' && f[sv] !== 'BACKEND')
    .map((f) => ({backend: f[px] ?? '', server: f[sv] ?? '', status: f[st] ?? ''}))
}

/** Two throwaway users log in over WebSocket; one sends, the other receives; both are removed. */
async function messageRoundTrip(model: ClusterModel, im: HostConnection, api: EjabberdApi, timeoutSec: number, through?: {address: string; port: number}): Promise<string> {
  ;(globalThis as {WebSocket?: unknown}).WebSocket ??= WebSocket
  const domain = model.config.domain
  const tag = randomBytes(4).toString('hex')
  const users = [`imctl-health-${tag}-a`, `imctl-health-${tag}-b`].map((user) => ({user, password: randomBytes(18).toString('base64url')}))
  const ejabberdHost = model.config.hosts.find((h) => h.name === model.config.components.ejabberd.host)!
  // In a container the WebSocket listener is on all of the container's addresses; on a host, on its cluster address.
  const tunnel = through
    ? await im.tunnel(through.address, through.port)
    : ejabberdHost.engine
      ? await im.tunnel('127.0.0.1', CONTAINER_PORTS.http, 'ejabberd')
      : await im.tunnel(ejabberdHost.address, model.config.components.ejabberd.ports.http)
  const pki = model.secrets.tls
  // With TLS the WebSocket is WSS, its certificate checked for the XMPP domain against the cluster's CA.
  const untrust = pki ? trustWebSocket(`127.0.0.1:${tunnel.port}`, pki.caBundle, domain) : () => {}
  const service = `${pki ? 'wss' : 'ws'}://127.0.0.1:${tunnel.port}/ws`
  const clients: ReturnType<typeof xmppClient>[] = []
  try {
    for (const u of users) await api.call('register', {user: u.user, host: domain, password: u.password})
    for (const u of users) {
      const x = xmppClient({service, domain, username: u.user, password: u.password, resource: 'imctl-health'})
      x.on('error', () => {})
      // The check must fail, not retry forever, when the server goes away.
      x.reconnect?.stop()
      clients.push(x)
    }
    const [sender, receiver] = clients as [ReturnType<typeof xmppClient>, ReturnType<typeof xmppClient>]
    const token = `imctl health ${tag} ${Date.now()}`
    const received = new Promise<void>((resolve) => {
      receiver.on('stanza', (st) => {
        if (st.is('message') && st.getChildText('body') === token) resolve()
      })
    })
    const t0 = Date.now()
    await Promise.all(clients.map((x) => withTimeout(x.start(), timeoutSec * 1000, 'WebSocket login')))
    await receiver.send(xml('presence'))
    await sender.send(xml('message', {to: `${users[1]!.user}@${domain}`, type: 'chat'}, xml('body', {}, token)))
    await withTimeout(received, timeoutSec * 1000, 'message delivery')
    return `${users[0]!.user} → ${users[1]!.user} delivered in ${Date.now() - t0} ms (login included${pki ? ', over WSS' : ''})`
  } finally {
    untrust()
    await Promise.allSettled(clients.map((x) => x.stop()))
    await Promise.allSettled(users.map((u) => api.call('unregister', {user: u.user, host: domain})))
    await tunnel.close()
  }
}

/** Rejects with `<what> timed out after N s` unless `p` settles in time. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms / 1000}s`)), ms)
    }),
  ])
}
