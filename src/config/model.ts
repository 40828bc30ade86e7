/** Plain typed models of cluster.yaml after validation, with defaults filled in. */

export type SshAuth = {kind: 'key'; keyFile: string} | {kind: 'agent'}

export interface JumpHost {
  address: string
  port: number
  user: string
  auth: SshAuth
}

/** How to reach a container engine's API. */
export type EngineEndpoint =
  | {kind: 'socket'; socketPath: string}
  | {kind: 'tcp'; host: string; port: number; tls?: {ca: string; cert: string; key: string}}
  | {kind: 'ssh'; address: string; port: number; user: string; auth: SshAuth}

export interface HostConfig {
  name: string
  address: string
  /** SSH fields; unused when `engine` is set. */
  port: number
  user: string
  sudo: boolean
  auth: SshAuth
  jump?: JumpHost
  /** Set for a container-engine host: components placed here run as containers. */
  engine?: EngineEndpoint
}

export interface PostgresPlacement {
  /** The only node, or in Patroni mode the first of `patroni.hosts` (it bootstraps the cluster). */
  host: string
  port: number
  /** Set with 2 or more nodes: a primary and streaming replicas managed by Patroni. */
  patroni?: PatroniPlacement
}

/** PostgreSQL under Patroni: etcd as its store, a local HAProxy on the IM host in front of the primary. */
export interface PatroniPlacement {
  /** Every PostgreSQL node, first one first. */
  hosts: string[]
  /** etcd members: an odd number, 3 or more. */
  etcd: string[]
  /** Where the IM host reaches the current primary, on its loopback. */
  proxyPort: number
}
export interface RedisPlacement {
  host: string
  port: number
}
export interface EjabberdPlacement {
  /** The first node: backup, archive, upgrade and health's admin calls talk to it. */
  host: string
  /** Every node, the first one first; more than one: an ejabberd cluster on SSH hosts. */
  hosts: string[]
  ports: {c2s: number; http: number; mqtt: number; api: number}
  /** XMPP with direct TLS: set only when the cluster has `tls:`. */
  c2sTlsPort?: number
  /** Set when `jwt: {enabled: true}`: clients may log in with a token signed by the key in the secrets file. */
  jwt?: {jidField: string}
}

/** HAProxy in TCP passthrough in front of every ejabberd node. */
export interface HaproxyPlacement {
  hosts: string[]
  /** Frontends on each HAProxy host's address; `stats` on its loopback. */
  ports: {c2s: number; http: number; mqtt: number; stats: number}
  /** A virtual IPv4 address that keepalived (VRRP) keeps on one HAProxy host whose HAProxy runs. */
  virtualIp?: VirtualIp
}

export interface VirtualIp {
  address: string
  /** Netmask length the address is added with (32 when cluster.yaml gives none). */
  prefix: number
  /** The network interface the address goes on, on every HAProxy host. */
  interface: string
  /** VRRP's virtual router id (1-255): from cluster.yaml, or derived from the cluster's name. */
  routerId: number
}

/** Kafka in KRaft mode: every host runs a combined broker and controller. */
export interface KafkaPlacement {
  /** 1 node, or an odd number (3, 5) for a replicated cluster with a controller quorum. */
  hosts: string[]
  /** Client and inter-broker listener (SASL/SCRAM). */
  port: number
  /** KRaft controller listener. */
  controllerPort: number
}

/** MinIO: one host with one drive, or erasure coded over 4 to 16 drives in all. */
export interface MinioPlacement {
  hosts: string[]
  /** Drive paths, the same on every host; each its own filesystem when there are several. */
  drives: string[]
  port: number
  consolePort: number
  /** Buckets created beside imctl's own (imctl-backups, imctl-archive, imctl-health). */
  buckets: string[]
}

export interface ComponentsConfig {
  postgresql: PostgresPlacement
  redis: RedisPlacement
  ejabberd: EjabberdPlacement
  kafka?: KafkaPlacement
  minio?: MinioPlacement
  haproxy?: HaproxyPlacement
}

export type ComponentName = keyof ComponentsConfig

/** TLS on every hop: the CA that issues each component's server certificate. */
export interface TlsConfig {
  /** imctl's own CA (in the PKI directory beside the secrets file), or the user's CA files (absolute paths). */
  ca: {kind: 'imctl'} | {kind: 'file'; cert: string; key: string}
  /** Validity of an issued server certificate. */
  days: number
  /** Absolute path of the directory with the CA (when imctl's) and the issued certificates and keys. */
  dir: string
}

/** nftables rules on the SSH hosts (src/plan/firewall.ts says what is public). */
export interface FirewallConfig {
  enabled: boolean
  /** Who may reach SSH, as nftables prints them (`10.0.0.0/8`, a bare address for /32 and /128); empty: anywhere. */
  adminSources: string[]
}

export interface ClusterConfig {
  /** Absolute path of the cluster.yaml this came from. */
  file: string
  name: string
  domain: string
  release: string
  /** Absolute paths. */
  secretsFile: string
  knownHostsFile: string
  hosts: HostConfig[]
  components: ComponentsConfig
  /** Absent: the cluster runs without TLS between its hosts, as before. */
  tls?: TlsConfig
  /** Absent when cluster.yaml has no `firewall:` (then nothing about it changes on hosts). */
  firewall?: FirewallConfig
}

export function hostByName(config: ClusterConfig, name: string): HostConfig {
  const host = config.hosts.find((h) => h.name === name)
  if (!host) throw new Error(`bug: no host ${name} after validation`)
  return host
}

/** The optional components this cluster has (their secrets and resources are needed). */
export function optionalComponents(config: ClusterConfig): ComponentName[] {
  return (['kafka', 'minio'] as const).filter((c) => config.components[c] !== undefined)
}

/** ejabberd runs as a cluster of 2 or more nodes. */
export function ejabberdClustered(config: ClusterConfig): boolean {
  return config.components.ejabberd.hosts.length > 1
}

/** The secrets file's sections this cluster needs beyond the ones every cluster has. */
export function secretSections(config: ClusterConfig): string[] {
  return [...optionalComponents(config), ...(config.components.postgresql.patroni ? ['patroni'] : []), ...(ejabberdClustered(config) ? ['ejabberd_cluster'] : []), ...(config.components.ejabberd.jwt ? ['ejabberd_jwt'] : [])]
}
