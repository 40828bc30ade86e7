import type {RemoteCommand} from '../transport/command.js'
import {shScript} from '../transport/command.js'
import type {FileFact, MountFact, PathFact, PgFacts, ServiceFact} from './facts.js'

/** Where imctl keeps its own state on a host. */
export const STATE_DIR = '/var/lib/imctl'
export const PENDING_DIR = `${STATE_DIR}/restart-pending`

// ---- builders: read-only commands, as data ----

export function packagesQuery(names: string[]): RemoteCommand {
  return {
    argv: ['dpkg-query', '-W', '-f', '${Package}\\t${db:Status-Status}\\t${Version}\\n', ...names],
    description: `read installed versions of ${names.join(', ')}`,
    // dpkg-query exits 1 when some package is unknown; it still lists the others.
    okExitCodes: [0, 1],
  }
}

export function filesQuery(paths: string[]): RemoteCommand {
  return {
    argv: shScript(
      'for f; do if [ -f "$f" ]; then printf "%s\\0%s\\0" "$f" "$(stat -c "%U %G %a" "$f")"; base64 -w0 "$f"; printf "\\0"; ' +
        'else printf "%s\\0-\\0\\0" "$f"; fi; done',
      paths,
    ),
    description: `read ${paths.join(', ')}`,
    root: true,
  }
}

export function servicesQuery(units: string[]): RemoteCommand {
  return {
    argv: ['systemctl', 'show', '--property=Id,LoadState,ActiveState,UnitFileState', '--', ...units],
    description: `read the state of ${units.join(', ')}`,
  }
}

export function usersQuery(users: string[]): RemoteCommand {
  return {
    argv: ['getent', 'passwd', ...users],
    description: `look up system users ${users.join(', ')}`,
    // getent exits 2 when some user does not exist; it still lists the others.
    okExitCodes: [0, 2],
  }
}

/** Type, owner, group and mode of each path (`-` when nothing is there). */
export function pathsQuery(paths: string[]): RemoteCommand {
  return {
    argv: shScript('for p; do if [ -e "$p" ] || [ -L "$p" ]; then printf "%s\\0%s\\0" "$p" "$(stat -c "%F|%U|%G|%a" "$p")"; else printf "%s\\0-\\0" "$p"; fi; done', paths),
    description: `check ${paths.join(', ')}`,
    root: true,
  }
}

/** The filesystem holding each path: its mount point and type (`-` when the path does not exist). */
export function mountsQuery(paths: string[]): RemoteCommand {
  return {
    argv: shScript('for p; do if [ -e "$p" ]; then printf "%s\\0%s\\0" "$p" "$(findmnt -n -r -o TARGET,FSTYPE --target "$p" | head -n 1)"; else printf "%s\\0-\\0" "$p"; fi; done', paths),
    description: `check which filesystem holds ${paths.join(', ')}`,
  }
}

export function pendingRestartsQuery(): RemoteCommand {
  return {
    argv: shScript('ls -1 "$1" 2>/dev/null || true', [PENDING_DIR]),
    description: 'list restarts left pending by an interrupted run',
  }
}

/** Roles and databases, as the postgres superuser over the local socket (peer auth). */
export function pgCatalogQuery(roles: string[], databases: string[]): RemoteCommand {
  return {
    argv: ['psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-F', '\t', '-d', 'postgres'],
    stdin:
      `SELECT 'role', rolname, coalesce(rolpassword, '') FROM pg_authid WHERE rolname IN (${sqlList(roles)});\n` +
      `SELECT 'db', datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname IN (${sqlList(databases)});\n`,
    asUser: 'postgres',
    description: `read roles ${roles.join(', ')} and databases ${databases.join(', ')}`,
  }
}

export function pgTableQuery(database: string, table: string): RemoteCommand {
  return {
    argv: ['psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', database],
    stdin: `SELECT to_regclass(${sqlLiteral(`public.${table}`)}) IS NOT NULL;\n`,
    asUser: 'postgres',
    description: `check whether table ${table} exists in database ${database}`,
  }
}

/** The nodes of this host's ejabberd cluster, running or not (Mnesia's db_nodes). */
export function ejabberdClusterQuery(): RemoteCommand {
  return {argv: ['ejabberdctl', 'list_cluster'], root: true, description: 'list the nodes of the ejabberd cluster'}
}

export function sqlLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`
}

export function sqlIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`
}

function sqlList(items: string[]): string {
  return items.length ? items.map(sqlLiteral).join(', ') : 'NULL'
}

// ---- parsers: pure ----

export function parsePackages(stdout: string, names: string[]): Record<string, string | null> {
  const out: Record<string, string | null> = Object.fromEntries(names.map((n) => [n, null]))
  for (const line of stdout.split('\n')) {
    const [name, status, version] = line.split('\t')
    if (name && name in out) out[name] = status === 'installed' && version ? version : null
  }
  return out
}

export function parseFiles(stdout: string): Record<string, FileFact | null> {
  const parts = stdout.split('\0')
  const out: Record<string, FileFact | null> = {}
  for (let i = 0; i + 2 < parts.length; i += 3) {
    const path = parts[i]!
    const meta = parts[i + 1]!
    if (meta === '-') {
      out[path] = null
      continue
    }
    const [owner = '', group = '', mode = ''] = meta.split(' ')
    out[path] = {owner, group, mode, content: Buffer.from(parts[i + 2]!, 'base64')}
  }
  return out
}

export function parseServices(stdout: string): Record<string, ServiceFact> {
  const out: Record<string, ServiceFact> = {}
  for (const block of stdout.split(/\n\s*\n/)) {
    const kv = Object.fromEntries(
      block
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    )
    const id = kv.Id?.replace(/\.service$/, '')
    if (!id) continue
    out[id] = {
      loaded: kv.LoadState === 'loaded',
      active: kv.ActiveState === 'active',
      enabled: ['enabled', 'enabled-runtime', 'static', 'indirect', 'generated', 'alias'].includes(kv.UnitFileState ?? ''),
    }
  }
  return out
}

export function parsePgCatalog(stdout: string): Omit<PgFacts, 'tables'> {
  const roles: Record<string, string> = {}
  const databases: Record<string, string> = {}
  for (const line of stdout.split('\n')) {
    const [kind, name, value = ''] = line.split('\t')
    if (kind === 'role' && name) roles[name] = value
    if (kind === 'db' && name) databases[name] = value
  }
  return {roles, databases}
}

export function parseUsers(stdout: string, users: string[]): Record<string, boolean> {
  const found = new Set(stdout.split('\n').map((l) => l.split(':')[0]))
  return Object.fromEntries(users.map((u) => [u, found.has(u)]))
}

export function parseMounts(stdout: string): Record<string, MountFact | null> {
  const parts = stdout.split('\0')
  const out: Record<string, MountFact | null> = {}
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const meta = parts[i + 1]!.trim()
    if (meta === '-' || !meta) {
      out[parts[i]!] = null
      continue
    }
    // findmnt -r writes a space inside a field as \x20.
    const [target = '', fstype = ''] = meta.split(' ').map((f) => f.replace(/\\x([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))))
    out[parts[i]!] = {target, fstype}
  }
  return out
}

export function parsePaths(stdout: string): Record<string, PathFact | null> {
  const parts = stdout.split('\0')
  const out: Record<string, PathFact | null> = {}
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const meta = parts[i + 1]!
    if (meta === '-') {
      out[parts[i]!] = null
      continue
    }
    const [type = '', owner = '', group = '', mode = ''] = meta.split('|')
    out[parts[i]!] = {type: type === 'directory' ? 'directory' : /regular/.test(type) ? 'file' : 'other', owner, group, mode}
  }
  return out
}

/** `ejabberdctl list_cluster` prints one quoted node name a line: 'ejabberd@10.0.0.12'. */
export function parseEjabberdCluster(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => l.trim().replace(/^'(.*)'$/, '$1'))
    .filter((l) => /^[^@\s]+@\S+$/.test(l))
}
