import {BlockList, isIP} from 'node:net'
import {ejabberdClusterPorts} from '../components/ejabberd/index.js'
import {ejabberdClustered, type ClusterConfig, type ComponentName, type HostConfig} from '../config/model.js'
import type {ReleaseManifest} from '../config/manifest.js'
import {ETCD_PORTS, PATRONI_API_PORT} from '../config/load.js'
import type {RemoteCommand} from '../transport/command.js'
import {shScript} from '../transport/command.js'
import type {FileResource, Resource} from './resources.js'

/**
 * The firewall as data: one nftables table (`inet imctl`) per SSH host that runs a component.
 * Public: the IM client ports on the entry hosts, and SSH from the admin sources. Every other
 * port a component listens on: only from the cluster's own host addresses. Loopback and
 * replies to what the host itself opened pass; everything else is dropped. Engine hosts are
 * left alone: the engine manages its own forwarding rules for the ports it publishes.
 */
export const FIREWALL_TABLE = 'imctl'
export const FIREWALL_FILE = '/etc/imctl/firewall.nft'
export const FIREWALL_UNIT = 'imctl-firewall'

/** A port a host opens, and to whom. */
export interface OpenPort {
  port: number
  /** public: anyone; cluster: the cluster's host addresses only. */
  to: 'public' | 'cluster'
  what: string
}

/**
 * Hosts that serve IM clients. The one place to extend when clients reach the cluster
 * through other hosts too (more ejabberd nodes, load balancers in front of them).
 */
export function entryHosts(config: ClusterConfig): string[] {
  return config.components.haproxy?.hosts ?? config.components.ejabberd.hosts
}

/** Every port a host opens beyond SSH, in a stable order (ejabberd's admin API listens on loopback only: no rule). */
export function openPorts(config: ClusterConfig, host: string): OpenPort[] {
  const c = config.components
  const out: OpenPort[] = []
  if (c.haproxy?.hosts.includes(host)) {
    out.push({port: c.haproxy.ports.c2s, to: 'public', what: 'XMPP clients (HAProxy)'}, {port: c.haproxy.ports.http, to: 'public', what: 'WebSocket (HAProxy)'}, {port: c.haproxy.ports.mqtt, to: 'public', what: 'MQTT (HAProxy)'})
  }
  if (c.ejabberd.hosts.includes(host)) {
    // Behind HAProxy the nodes take clients from the cluster's hosts only (HAProxy and its checks).
    const to = c.haproxy ? 'cluster' : 'public'
    out.push({port: c.ejabberd.ports.c2s, to, what: 'XMPP clients'}, {port: c.ejabberd.ports.http, to, what: 'WebSocket'}, {port: c.ejabberd.ports.mqtt, to, what: 'MQTT'})
    if (ejabberdClustered(config)) out.push(...ejabberdClusterPorts().map((p) => ({port: p.port, to: 'cluster' as const, what: `ejabberd ${p.what}`})))
    // With `tls:`: XMPP with direct TLS (TLS is refused behind HAProxy for now). The Redis tunnel listens on loopback, which `iif "lo"` lets in.
    if (c.ejabberd.c2sTlsPort !== undefined) out.push({port: c.ejabberd.c2sTlsPort, to, what: 'XMPP clients (direct TLS)'})
  }
  const pg = c.postgresql.patroni
  if (pg ? pg.hosts.includes(host) : c.postgresql.host === host) out.push({port: c.postgresql.port, to: 'cluster', what: 'PostgreSQL'})
  // Patroni mode: replication and the proxies' primary checks reach every node; etcd's members talk to each other and to Patroni.
  if (pg?.hosts.includes(host)) out.push({port: PATRONI_API_PORT, to: 'cluster', what: 'Patroni REST API'})
  if (pg?.etcd.includes(host)) out.push({port: ETCD_PORTS.client, to: 'cluster', what: 'etcd clients'}, {port: ETCD_PORTS.peer, to: 'cluster', what: 'etcd peers'})
  if (c.redis.host === host) out.push({port: c.redis.port, to: 'cluster', what: 'Redis'})
  if (c.kafka?.hosts.includes(host)) out.push({port: c.kafka.port, to: 'cluster', what: 'Kafka'}, {port: c.kafka.controllerPort, to: 'cluster', what: 'Kafka controller'})
  if (c.minio?.hosts.includes(host)) out.push({port: c.minio.port, to: 'cluster', what: 'MinIO'}, {port: c.minio.consolePort, to: 'cluster', what: 'MinIO console'})
  return out
}

/** VRRP's IP protocol number. */
const VRRP_PROTOCOL = 112

/**
 * Where VRRP comes from to a HAProxy host sharing a virtual IP: the other HAProxy hosts
 * (keepalived speaks unicast between cluster addresses). The public ports need no rule of
 * their own for the virtual IP: they are open on every address of the host.
 */
export function vrrpPeers(config: ClusterConfig, host: string): string[] {
  const hp = config.components.haproxy
  if (!hp?.virtualIp || !hp.hosts.includes(host)) return []
  return hp.hosts.filter((h) => h !== host).map((h) => listedAddress(config.hosts.find((x) => x.name === h)!.address))
}

/** An address as nft lists it (IPv6 compressed, lower case). */
function listedAddress(address: string): string {
  return isIP(address) === 6 ? new URL(`http://[${address}]/`).hostname.slice(1, -1) : address
}

/** `ip saddr` or `ip6 saddr` for an address or network as the config model holds it. */
function saddr(source: string): string {
  return `${source.includes(':') ? 'ip6' : 'ip'} saddr ${source}`
}

/**
 * The table exactly as `nft list table inet imctl` prints it once loaded (nftables 1.0.6),
 * so the loaded rules can be compared with it as text.
 */
export function renderFirewallTable(config: ClusterConfig, host: HostConfig): string {
  const peers = config.hosts.map((h) => listedAddress(h.address)).filter((a, i, all) => all.indexOf(a) === i)
  const admin = config.firewall?.adminSources ?? []
  const ports = openPorts(config, host.name)
  const rules = [
    'iif "lo" accept',
    'ct state established,related accept',
    'ct state invalid drop',
    // Ping, and IPv6 neighbour discovery (ICMP errors for known flows are `related`). By type, not
    // `meta l4proto NAME`: nft lists protocol names only where /etc/protocols exists, so the text would vary by host.
    'icmp type echo-request accept',
    'icmpv6 type echo-request accept',
    'icmpv6 type nd-neighbor-solicit accept',
    'icmpv6 type nd-neighbor-advert accept',
    'icmpv6 type nd-router-advert accept',
    ...(admin.length ? admin.map((s) => `${saddr(s)} tcp dport ${host.port} accept`) : [`tcp dport ${host.port} accept`]),
    ...ports.filter((p) => p.to === 'public').map((p) => `tcp dport ${p.port} accept`),
    ...ports.filter((p) => p.to === 'cluster').flatMap((p) => peers.map((a) => `${saddr(a)} tcp dport ${p.port} accept`)),
    ...vrrpPeers(config, host.name).map((a) => `${saddr(a)} ip protocol ${VRRP_PROTOCOL} accept`),
  ]
  return [
    `table inet ${FIREWALL_TABLE} {`,
    `\tcomment "imctl: host ${host.name} of cluster ${config.name}"`,
    '\tchain input {',
    '\t\ttype filter hook input priority filter; policy drop;',
    ...rules.map((r) => `\t\t${r}`),
    '\t}',
    '}',
    '',
  ].join('\n')
}

/** The file loaded with `nft -f`: it replaces the table in one transaction (no gap), and touches no other table. */
export function renderFirewallFile(config: ClusterConfig, host: HostConfig): string {
  return [
    '#!/usr/sbin/nft -f',
    `# Written by imctl for host ${host.name} of cluster ${config.name}; \`imctl install\` rewrites it.`,
    '# One transaction: the table is made if absent, deleted, and made anew.',
    `table inet ${FIREWALL_TABLE}`,
    `delete table inet ${FIREWALL_TABLE}`,
    renderFirewallTable(config, host),
  ].join('\n')
}

/**
 * Loads the rules at boot, before the network comes up. A unit of our own rather than
 * Debian's nftables.service: that one loads /etc/nftables.conf, which starts with
 * `flush ruleset` and belongs to the admin; ours replaces only table inet imctl.
 * No ExecStop: stopping the unit does not open the host.
 */
export function firewallUnit(): string {
  return [
    '[Unit]',
    'Description=imctl firewall rules (nftables table inet imctl)',
    'DefaultDependencies=no',
    'Wants=network-pre.target',
    'Before=network-pre.target shutdown.target',
    'Conflicts=shutdown.target',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `ExecStart=/usr/sbin/nft -f ${FIREWALL_FILE}`,
    `ExecReload=/usr/sbin/nft -f ${FIREWALL_FILE}`,
    '',
    '[Install]',
    'WantedBy=sysinit.target',
    '',
  ].join('\n')
}

/**
 * The firewall's resources on every SSH host in use: the nftables package, the rules file,
 * the boot unit and the loaded table. `enabled: false` asks for the table to be gone.
 * None at all when cluster.yaml has no `firewall:`.
 */
export function firewallResources(config: ClusterConfig, manifest: ReleaseManifest, resources: Resource[]): Resource[] {
  const fw = config.firewall
  if (!fw) return []
  const out: Resource[] = []
  for (const host of config.hosts) {
    if (host.engine) continue
    // Listed under the host's first component, so it shows in that lane.
    const first = resources.find((r) => r.host === host.name)
    if (!first) continue
    const component: ComponentName = first.component
    const base = {host: host.name, component}
    if (!fw.enabled) {
      out.push({...base, kind: 'firewall', path: FIREWALL_FILE, unit: FIREWALL_UNIT, table: null, adminSources: []})
      continue
    }
    const nft = manifest.hostPackages?.find((p) => p.name === 'nftables')
    if (!nft) throw new Error(`bug: release ${manifest.release} has no nftables in hostPackages`)
    const file = (path: string, content: string, mode: string, daemonReload = false): FileResource => ({...base, kind: 'file', path, content, owner: 'root', group: 'root', mode, secret: false, notify: [], ...(daemonReload ? {daemonReload} : {})})
    out.push(
      {...base, kind: 'packages', packages: [nft]},
      // Unless a component made it already (with `tls:` the Redis tunnel's files live there too).
      ...(resources.some((r) => r.kind === 'directory' && r.host === host.name && r.path === '/etc/imctl') ? [] : [{...base, kind: 'directory' as const, path: '/etc/imctl', owner: 'root', group: 'root', mode: '755'}]),
      file(FIREWALL_FILE, renderFirewallFile(config, host), '600'),
      file(`/etc/systemd/system/${FIREWALL_UNIT}.service`, firewallUnit(), '644', true),
      {...base, kind: 'firewall', path: FIREWALL_FILE, unit: FIREWALL_UNIT, table: renderFirewallTable(config, host), adminSources: fw.adminSources},
    )
  }
  return out
}

const ABSENT = '#imctl: no table'

/** Prints the loaded table, or a marker line when there is none (or no nft at all). */
export function firewallQuery(): RemoteCommand {
  return {
    argv: shScript(
      `command -v nft >/dev/null 2>&1 || { echo '${ABSENT}'; exit 0; }
if out=$(nft list table inet "$1" 2>&1); then printf '%s\\n' "$out"; exit 0; fi
case "$out" in *"No such file or directory"*) echo '${ABSENT}';; *) printf '%s\\n' "$out" >&2; exit 1;; esac`,
      [FIREWALL_TABLE],
    ),
    root: true,
    description: `list nftables table inet ${FIREWALL_TABLE}`,
  }
}

/** The loaded table as text (ending in one newline), or null when it is not loaded. */
export function parseFirewall(stdout: string): string | null {
  // nft names protocol 112 `vrrp` where /etc/protocols has it (netbase), and prints the number where not.
  const text = stdout.replace(/\s+$/, '').replace(/ ip protocol vrrp /g, ` ip protocol ${VRRP_PROTOCOL} `)
  return text === ABSENT || text === '' ? null : `${text}\n`
}

/** The address this SSH session comes from (sshd's SSH_CONNECTION), as the host sees it. */
export function sshClientQuery(): RemoteCommand {
  return {argv: ['printenv', 'SSH_CONNECTION'], description: 'where this SSH session comes from', okExitCodes: [0, 1]}
}

export function parseSshClient(stdout: string): string | undefined {
  return stdout.trim().split(/\s+/)[0] || undefined
}

/** Whether `address` is one of `sources` (addresses or CIDR networks); no sources: anyone. */
export function sourceAllows(sources: string[], address: string): boolean {
  if (!sources.length) return true
  const family = isIP(address)
  if (!family) return false
  const list = new BlockList()
  for (const s of sources) {
    const [net = '', bits] = s.split('/')
    const type = isIP(net) === 6 ? 'ipv6' : 'ipv4'
    if (bits === undefined) list.addAddress(net, type)
    else list.addSubnet(net, Number(bits), type)
  }
  return list.check(address, family === 6 ? 'ipv6' : 'ipv4')
}

export function loadFirewall(path: string): RemoteCommand {
  return {argv: ['nft', '-f', path], root: true, description: `load ${path} (replaces table inet ${FIREWALL_TABLE} in one transaction)`}
}

export function removeFirewall(unit: string): RemoteCommand[] {
  return [
    {argv: ['systemctl', 'disable', '--quiet', unit], root: true, description: `stop loading the rules at boot`},
    {argv: ['nft', 'delete', 'table', 'inet', FIREWALL_TABLE], root: true, description: `remove table inet ${FIREWALL_TABLE}`},
  ]
}

/** What is wrong with a host's loaded rules, in words, or null when they are the rendered ones. */
export function firewallProblem(loaded: string | null, desired: string): string | null {
  if (loaded === null) return `table inet ${FIREWALL_TABLE} is not loaded: the host is not filtered`
  if (loaded !== desired) return `table inet ${FIREWALL_TABLE} differs from the rules imctl renders for this host`
  return null
}
