import type {ComponentName} from '../config/model.js'
import type {PinnedPackage} from '../config/manifest.js'

/** Desired state, as data. Components produce these; the planner compares them with facts. */
export type Resource = PackagesResource | FileResource | ServiceResource | PgRoleResource | PgDatabaseResource | SqlSchemaResource | XmppAccountResource

interface Base {
  /** The host whose lane this belongs to (where it shows in plans and progress). */
  host: string
  component: ComponentName
}

export interface PackagesResource extends Base {
  kind: 'packages'
  packages: PinnedPackage[]
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
}

export interface ServiceResource extends Base {
  kind: 'service'
  /** The unit whose state is observed and restarted. */
  unit: string
  /** The unit to enable at boot, when it differs (Debian's postgresql wrapper). */
  enableUnit?: string
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
  }
}
