import type {ComponentName} from '../config/model.js'
import type {PinnedPackage} from '../config/manifest.js'
import type {RemoteCommand} from '../transport/command.js'

/** Desired state, as data. Components produce these; the planner compares them with facts. */
export type Resource =
  | PackagesResource
  | FileResource
  | ServiceResource
  | PgRoleResource
  | PgDatabaseResource
  | SqlSchemaResource
  | XmppAccountResource
  | NetworkResource
  | ImageResource
  | ContainerResource
  | ContainerRunningResource
  | SystemUserResource
  | DirectoryResource
  | ArtifactResource
  | OnceResource
  | MountResource
  | MinioBucketResource
  | MinioUserResource
  | EjabberdClusterResource
  | FirewallResource

interface Base {
  /** The host whose lane this belongs to (where it shows in plans and progress). */
  host: string
  component: ComponentName
}

export interface PackagesResource extends Base {
  kind: 'packages'
  packages: PinnedPackage[]
  /** Install from this uploaded bundle repository (offline) instead of the host's apt sources. */
  offlineRepo?: string
  /** Which component each package is for, when several components' packages were merged into one host's list. */
  owners?: Record<string, ComponentName>
}

export interface FileResource extends Base {
  kind: 'file'
  path: string
  content: string
  owner: string
  group: string
  /** Octal, e.g. '640'. */
  mode: string
  /** Holds a secret: its diff is shown redacted. */
  secret: boolean
  /** Units to restart when this file changes. */
  notify: string[]
  /** Its units pick a change up on reload (a certificate, Patroni's config): reloaded instead of restarted when nothing else changed (see ServiceResource.reload). */
  reloadable?: boolean
  /** A systemd unit file: systemd re-reads its units after a change. */
  daemonReload?: boolean
  /** apt reads it (a sources entry or a pin): written before any package step on its host. */
  aptSource?: boolean
  /** Run before the file is written, when its content changes (e.g. stop a node under the name the old file gives it). */
  before?: RemoteCommand[]
}

export interface ServiceResource extends Base {
  kind: 'service'
  /** The unit whose state is observed and restarted. */
  unit: string
  /** The unit to enable at boot, when it differs (Debian's postgresql wrapper). */
  enableUnit?: string
  /** Succeeds once the service serves; run after each start or restart (systemd's "active" comes sooner). */
  ready?: RemoteCommand
  /**
   * How the running service re-reads its files without a restart. A change to files marked
   * `reloadable` and nothing else reloads it (certificates: clients stay connected; Patroni: a
   * restart of the primary is a failover); any other change restarts it.
   */
  reload?: RemoteCommand[]
}

export interface PgRoleResource extends Base {
  kind: 'pg-role'
  role: string
  /** SCRAM-SHA-256 verifier (deterministic per password), never the password itself. */
  verifier: string
}

export interface PgDatabaseResource extends Base {
  kind: 'pg-database'
  database: string
  owner: string
}

/** A schema shipped by another component's package, loaded into a database on another host. */
export interface SqlSchemaResource extends Base {
  kind: 'sql-schema'
  dbHost: string
  database: string
  role: string
  /** File on the lane host that holds the schema. */
  sourcePath: string
  /** The schema counts as loaded when this table exists. */
  probeTable: string
  /** Component that must be converged first (the database server). */
  after: ComponentName[]
}

export interface XmppAccountResource extends Base {
  kind: 'xmpp-account'
  user: string
  domain: string
  password: string
  apiPort: number
}

/** The cluster's own network on an engine host. */
export interface NetworkResource extends Base {
  kind: 'network'
  name: string
}

/** A component's image, built on the engine from Debian's packages (templates/images/<component>). */
export interface ImageResource extends Base {
  kind: 'image'
  /** Tagged by a hash of its build context, package pins and artifact sums, so a change builds a new one. */
  tag: string
  contextDir: string
  contextFiles: string[]
  packages: PinnedPackage[]
  /** Artifacts from imctl's cache that go into the build context too, under `artifacts/<name>/`. */
  artifacts?: ImageArtifact[]
  /** Offline: loaded from the bundle (saved there by `bundle create`) instead of built from a Debian mirror. */
  fromBundle?: boolean
}

/** An artifact's files for an image's build context, with the SHA256SUMS the build checks them against. */
export interface ImageArtifact {
  name: string
  version: string
  files: {path: string; sha256: string; mode?: string}[]
}

/** A component's container: its image, config files put in before start, volumes, ports, labels. */
export interface ContainerResource extends Base {
  kind: 'container'
  name: string
  image: string
  files: FileResource[]
  /** The engine's create body (Docker API), labels included. */
  spec: ContainerSpec
  /** Hash of image, spec and files; a container whose label differs is recreated. */
  configHash: string
}

/** A system account (no login, no password) that a service runs as. */
export interface SystemUserResource extends Base {
  kind: 'system-user'
  user: string
  home: string
}

export interface DirectoryResource extends Base {
  kind: 'directory'
  path: string
  owner: string
  group: string
  mode: string
}

/** Files that no Debian package carries (Kafka's jars, MinIO's binaries), uploaded from imctl's cache or a bundle. */
export interface ArtifactResource extends Base {
  kind: 'artifact'
  name: string
  version: string
  /** Where it lives on the host; holds SHA256SUMS once complete. */
  dir: string
  /** Mode defaults to 644. */
  files: {path: string; sha256: string; mode?: string}[]
}

/** A command that must run exactly once (e.g. formatting Kafka's storage); done once `marker` exists. */
export interface OnceResource extends Base {
  kind: 'once'
  name: string
  marker: string
  command: RemoteCommand
  what: string
  /** Components that must be converged first. */
  after: ComponentName[]
}

/** A path that must be a filesystem of its own (a data drive); the plan is blocked while it is not. */
export interface MountResource extends Base {
  kind: 'mount'
  path: string
  /** Why it must be its own filesystem, for the blocker's message. */
  why: string
}

/** How imctl reaches MinIO on a host: its `mc` client with an alias config of its own (root credentials, 0600). */
export interface McClient {
  bin: string
  configDir: string
  alias: string
  /** The S3 endpoint the alias points at, e.g. http://10.0.0.11:9000. */
  url: string
}

export interface MinioBucketResource extends Base {
  kind: 'minio-bucket'
  bucket: string
  mc: McClient
}

/** A MinIO user with exactly one policy attached: its own, held here as a JSON document. */
export interface MinioUserResource extends Base {
  kind: 'minio-user'
  user: string
  /** Its secret key: reaches the host on stdin only. */
  secret: string
  policy: string
  policyDocument: string
  /** What the policy allows, in words, for plans. */
  rights: string
  mc: McClient
}

/** An ejabberd node that belongs to the cluster of the first node: observed with `ejabberdctl list_cluster`. */
export interface EjabberdClusterResource extends Base {
  kind: 'ejabberd-cluster'
  /** This node's Erlang name, e.g. ejabberd@10.0.0.12. */
  node: string
  /** The first node's name: the one this node joins. */
  seed: string
}

/** The host's nftables table inet imctl, loaded from `path` (src/plan/firewall.ts); null: it must be gone. */
export interface FirewallResource extends Base {
  kind: 'firewall'
  path: string
  /** The boot unit that loads `path`. */
  unit: string
  /** What `nft list table inet imctl` prints once loaded. */
  table: string | null
  /** Who may reach SSH (empty: anyone): imctl's own SSH source must be one of them. */
  adminSources: string[]
}

export interface ContainerRunningResource extends Base {
  kind: 'container-running'
  name: string
}

/** The subset of Docker's container-create body that imctl sets. */
export interface ContainerSpec {
  name: string
  Image: string
  Hostname: string
  Labels: Record<string, string>
  ExposedPorts: Record<string, Record<string, never>>
  Healthcheck: {Test: string[]; Interval: number; Timeout: number; Retries: number; StartPeriod: number}
  StopSignal?: string
  HostConfig: {
    NetworkMode: string
    Mounts: {Type: 'volume'; Source: string; Target: string}[]
    PortBindings: Record<string, {HostIp: string; HostPort: string}[]>
    RestartPolicy: {Name: 'unless-stopped'}
  }
  NetworkingConfig: {EndpointsConfig: Record<string, {Aliases: string[]}>}
}

export function resourceKey(r: Resource): string {
  switch (r.kind) {
    case 'packages':
      return `${r.host}:packages`
    case 'file':
      return `${r.host}:file:${r.path}`
    case 'service':
      return `${r.host}:service:${r.unit}`
    case 'pg-role':
      return `${r.host}:pg-role:${r.role}`
    case 'pg-database':
      return `${r.host}:pg-database:${r.database}`
    case 'sql-schema':
      return `${r.host}:sql-schema:${r.dbHost}/${r.database}`
    case 'xmpp-account':
      return `${r.host}:xmpp-account:${r.user}@${r.domain}`
    case 'network':
      return `${r.host}:network:${r.name}`
    case 'image':
      return `${r.host}:image:${r.component}`
    case 'container':
      return `${r.host}:container:${r.name}`
    case 'container-running':
      return `${r.host}:container-running:${r.name}`
    case 'system-user':
      return `${r.host}:user:${r.user}`
    case 'directory':
      return `${r.host}:dir:${r.path}`
    case 'artifact':
      return `${r.host}:artifact:${r.name}-${r.version}`
    case 'once':
      return `${r.host}:once:${r.name}`
    case 'mount':
      return `${r.host}:mount:${r.path}`
    case 'minio-bucket':
      return `${r.host}:minio-bucket:${r.bucket}`
    case 'minio-user':
      return `${r.host}:minio-user:${r.user}`
    case 'ejabberd-cluster':
      return `${r.host}:ejabberd-cluster:${r.seed}`
    case 'firewall':
      return `${r.host}:firewall`
  }
}

/** The SHA256SUMS text of an artifact (`sha256sum -c` format, sorted by path): what a complete copy holds. */
export function artifactSums(files: {path: string; sha256: string}[]): string {
  return [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map((f) => `${f.sha256}  ${f.path}\n`).join('')
}

/** `systemctl reload` of a unit, then a check that it is still running. */
export function systemdReload(unit: string, why: string): RemoteCommand[] {
  return [
    {argv: ['systemctl', 'reload', unit], root: true, description: `reload ${unit} (${why})`},
    {argv: ['systemctl', 'is-active', '--quiet', unit], root: true, description: `check that ${unit} is running`},
  ]
}
