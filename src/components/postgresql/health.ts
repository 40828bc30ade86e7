import {ETCD_PORTS, PATRONI_API_PORT} from '../../config/load.js'
import type {ClusterConfig} from '../../config/model.js'
import type {HealthCheck, HealthContext} from '../../ops/health.js'
import type {RemoteCommand} from '../../transport/command.js'
import type {HostConnection} from '../../transport/types.js'

/** One member as Patroni's REST API (GET /cluster) lists it. */
export interface PatroniMember {
  name: string
  role: string
  state: string
  host?: string
  timeline?: number
  /** Replicas: bytes behind the leader, or "unknown". */
  lag?: number | string
}

/** The members of GET /cluster; throws on anything else. */
export function parsePatroniCluster(body: string): PatroniMember[] {
  const data = JSON.parse(body) as {members?: unknown}
  if (!Array.isArray(data.members)) throw new Error(`Patroni's /cluster has no members list: ${body.slice(0, 200)}`)
  return data.members as PatroniMember[]
}

const LEADER_ROLES = new Set(['leader', 'master', 'primary'])
/** Patroni 3.0 reports a healthy replica as running; later versions as streaming. */
const SERVING_STATES = new Set(['running', 'streaming'])

/** What the members say about one node, for its check: ok with a role, or why not. */
export function describeMember(members: PatroniMember[], node: string): {ok: boolean; detail: string} {
  const m = members.find((x) => x.name === node)
  if (!m) return {ok: false, detail: `${node} is not in the Patroni cluster (host, Patroni or PostgreSQL down); the others serve without it`}
  const leader = LEADER_ROLES.has(m.role)
  if (!SERVING_STATES.has(m.state)) return {ok: false, detail: `${leader ? 'leader' : m.role} ${node} is ${m.state}`}
  if (leader) return {ok: true, detail: `leader (primary), timeline ${m.timeline ?? '?'}`}
  const lag = typeof m.lag === 'number' ? `lag ${(m.lag / 1048576).toFixed(1)} MB` : `lag ${m.lag ?? 'unknown'}`
  if (typeof m.lag !== 'number') return {ok: false, detail: `replica, ${m.state}, ${lag}: not replicating`}
  return {ok: true, detail: `replica, ${m.state}, ${lag}, timeline ${m.timeline ?? '?'}`}
}

/** The whole cluster: a running leader, and who replicates from it. */
export function describeCluster(members: PatroniMember[]): {ok: boolean; detail: string} {
  const leader = members.find((m) => LEADER_ROLES.has(m.role) && SERVING_STATES.has(m.state))
  const replicas = members.filter((m) => !LEADER_ROLES.has(m.role)).map((m) => `${m.name} ${m.state}`)
  const rest = replicas.length ? `; replicas: ${replicas.join(', ')}` : '; no replica'
  if (!leader) return {ok: false, detail: `no running leader (members: ${members.map((m) => `${m.name} ${m.role} ${m.state}`).join(', ') || 'none'}); Patroni promotes a replica within its TTL, else see \`journalctl -u patroni\` on the nodes`}
  return {ok: true, detail: `leader ${leader.name} (timeline ${leader.timeline ?? '?'})${rest}`}
}

/** etcd's own view of each member, asked from one member: `endpoint health` over all of them. */
export function etcdHealthQuery(endpoints: string[]): RemoteCommand {
  return {
    argv: ['etcdctl', `--endpoints=${endpoints.join(',')}`, '--dial-timeout=3s', '--command-timeout=5s', 'endpoint', 'health', '-w', 'json'],
    description: 'ask each etcd member whether it is healthy',
    // etcdctl exits 1 when some member is unhealthy; it still lists every one.
    okExitCodes: [0, 1],
  }
}

/** `endpoint health -w json`: endpoint → healthy. */
export function parseEtcdHealth(stdout: string): Record<string, boolean> {
  const line = stdout.split('\n').find((l) => l.trim().startsWith('['))
  if (!line) throw new Error(`etcdctl printed no health list: ${stdout.slice(0, 200)}`)
  const list = JSON.parse(line) as {endpoint: string; health: boolean}[]
  return Object.fromEntries(list.map((e) => [e.endpoint, e.health]))
}

function addressOf(config: ClusterConfig, name: string): string {
  return config.hosts.find((h) => h.name === name)!.address
}

/** The first answer of `fn` over the hosts that are connected, in order. */
async function fromAnyOf<T>(names: string[], conns: Map<string, HostConnection>, fn: (name: string, c: HostConnection) => Promise<T>): Promise<T> {
  const errors: string[] = []
  for (const n of names) {
    const c = conns.get(n)
    if (!c) {
      errors.push(`${n}: not reachable`)
      continue
    }
    try {
      return await fn(n, c)
    } catch (e) {
      errors.push(`${n}: ${(e as Error).message}`)
    }
  }
  throw new Error(errors.join('; '))
}

/**
 * Patroni mode: the cluster has a running leader (cluster-level), each node's role, state and
 * lag, and each etcd member's health with the store's quorum (cluster-level). A node or member
 * that is down fails its own check only, so the cluster shows as degraded while it still serves.
 */
export function patroniHealthChecks(ctx: HealthContext): Promise<HealthCheck>[] {
  const {model, conns} = ctx
  const config = model.config
  const patroni = config.components.postgresql.patroni
  if (!patroni) return []

  // Any node's REST API has the whole cluster's view (from etcd).
  const members = fromAnyOf(patroni.hosts, conns, async (name, c) => {
    const t = await c.tunnel(addressOf(config, name), PATRONI_API_PORT, 'postgresql')
    try {
      const res = await fetch(`http://127.0.0.1:${t.port}/cluster`, {signal: AbortSignal.timeout(5000)})
      if (!res.ok) throw new Error(`GET /cluster answered ${res.status}`)
      return parsePatroniCluster(await res.text())
    } finally {
      await t.close()
    }
  })
  members.catch(() => {})
  const endpointOf = (n: string) => `http://${addressOf(config, n)}:${ETCD_PORTS.client}`
  const etcd = fromAnyOf(patroni.etcd, conns, async (_n, c) => parseEtcdHealth((await c.exec(etcdHealthQuery(patroni.etcd.map(endpointOf)))).stdout))
  etcd.catch(() => {})

  const fromMembers = (fn: (m: PatroniMember[]) => {ok: boolean; detail: string}) => async () => {
    const r = fn(await members)
    if (!r.ok) throw new Error(r.detail)
    return r.detail
  }
  return [
    ctx.timed(patroni.hosts.join(','), 'Patroni cluster: a running leader', fromMembers(describeCluster), {clusterLevel: true}),
    ...patroni.hosts.map((n) => ctx.timed(n, 'Patroni member: role, state, lag', fromMembers((m) => describeMember(m, n)))),
    ctx.timed(patroni.etcd.join(','), `etcd quorum (${patroni.etcd.length} members)`, async () => {
      const health = await etcd
      const up = patroni.etcd.filter((n) => health[endpointOf(n)])
      const need = Math.floor(patroni.etcd.length / 2) + 1
      if (up.length < need) throw new Error(`${up.length} of ${patroni.etcd.length} etcd members healthy; ${need} are needed: Patroni cannot keep or elect a leader`)
      return `${up.length} of ${patroni.etcd.length} members healthy (${need} needed)`
    }, {clusterLevel: true}),
    ...patroni.etcd.map((n) =>
      ctx.timed(n, 'etcd member health', async () => {
        const health = await etcd
        if (!health[endpointOf(n)]) throw new Error(`etcd on ${n} does not answer as healthy; see \`journalctl -u etcd\` on ${n}`)
        return 'healthy'
      }),
    ),
  ]
}
