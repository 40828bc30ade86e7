/** What a host looks like now, as observed read-only. Missing knowledge is `null`, never a guess. */
export interface FileFact {
  owner: string
  group: string
  mode: string
  content: Buffer
}

export interface ServiceFact {
  /** systemd knows the unit at all. */
  loaded: boolean
  active: boolean
  enabled: boolean
}

export interface PgFacts {
  /** role → its stored password verifier ('' when it has none). */
  roles: Record<string, string>
  /** database → owner. */
  databases: Record<string, string>
  /** `db.table` entries that exist, for schema probes. */
  tables: string[]
}

export interface ContainerFact {
  component: string
  running: boolean
  configHash: string
  /** Config files read from the container, for diffs. */
  files: Record<string, FileFact | null>
}

/** What an engine host runs for this cluster. */
export interface EngineFacts {
  networks: string[]
  /** Image tags present. */
  images: string[]
  /** Containers labelled with this cluster, by name. */
  containers: Record<string, ContainerFact>
}

export interface HostFacts {
  host: string
  /** package → installed version, or null when not installed. */
  packages: Record<string, string | null>
  /** path → file, or null when it does not exist. */
  files: Record<string, FileFact | null>
  services: Record<string, ServiceFact>
  /** Units that a changed config file is waiting to be restarted for (left by an interrupted run). */
  pendingRestarts: string[]
  /** null: no PostgreSQL server answering here (not installed or not running). */
  pg: PgFacts | null
  /** `user@domain` → password checks out; absent when the IM server could not be asked. */
  xmppAccounts: Record<string, boolean>
  /** Set on engine hosts. */
  engine?: EngineFacts
  /** System account → exists. */
  users: Record<string, boolean>
  /** path → what is there (type, owner, group, mode), or null when nothing is. */
  paths: Record<string, PathFact | null>
  /** path → the filesystem it is on (its mount point and type), or null when the path does not exist. */
  mounts: Record<string, MountFact | null>
  /** MinIO as its admin API sees it; absent when MinIO is not running here or did not answer. */
  minio?: MinioFacts
  /** The loaded nftables table inet imctl as nft lists it, or null when none; absent when not observed. */
  firewall?: string | null
  /** The address imctl's SSH session comes from, as the host sees it; observed along with the firewall. */
  sshClient?: string
}

export interface MountFact {
  /** The mount point of the filesystem holding the path (the path itself when it is its own filesystem). */
  target: string
  fstype: string
}

export interface MinioFacts {
  buckets: string[]
  users: Record<string, {policies: string[]; enabled: boolean; secretWorks: boolean}>
  /** Policy name → its document as MinIO stores it, in a canonical form (see canonicalPolicy). */
  policies: Record<string, string>
}

export interface PathFact {
  type: 'directory' | 'file' | 'other'
  owner: string
  group: string
  mode: string
}

export function emptyFacts(host: string): HostFacts {
  return {host, packages: {}, files: {}, services: {}, pendingRestarts: [], pg: null, xmppAccounts: {}, users: {}, paths: {}, mounts: {}}
}
