/** Remote commands of upgrades and rollbacks, as data (built here, run by the upgrade service). */
import type {Migration} from '../../config/manifest.js'
import {shScript, type RemoteCommand} from '../../transport/command.js'

/** Every installed package with its version: what a rollback puts back. */
export function packageSnapshotQuery(): RemoteCommand {
  return {argv: ['dpkg-query', '-W', '-f', '${Package}\\t${Version}\\t${db:Status-Status}\\n'], description: 'list the installed packages and their versions'}
}

export function parsePackageSnapshot(stdout: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of stdout.split('\n')) {
    const [name, version, status] = line.split('\t')
    if (name && version && status === 'installed') out[name] = version
  }
  return out
}

/** Packages whose version differs from the snapshot (to put back), and those the snapshot lacks (left installed, reported). */
export function packageChanges(before: Record<string, string>, now: Record<string, string>): {restore: {name: string; version: string}[]; added: string[]} {
  const restore = Object.entries(before)
    .filter(([n, v]) => now[n] !== undefined && now[n] !== v)
    .map(([name, version]) => ({name, version}))
    .sort((a, b) => a.name.localeCompare(b.name))
  const added = Object.keys(now).filter((n) => before[n] === undefined).sort()
  return {restore, added}
}

/** Puts exact versions back (`name=version`, downgrades allowed): apt finds them in the OS's own suites or its cache. */
export function restorePackages(pkgs: {name: string; version: string}[]): RemoteCommand {
  return {
    argv: [
      'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', '--allow-downgrades',
      '-o', 'DPkg::Lock::Timeout=300', '-o', 'Dpkg::Options::=--force-confold',
      ...pkgs.map((p) => `${p.name}=${p.version}`),
    ],
    root: true,
    description: `put back ${pkgs.map((p) => `${p.name} ${p.version}`).join(', ')}`,
  }
}

/** Removes apt sources and pins the previous release did not have, then refreshes apt's lists. */
export function removeAptFiles(paths: string[]): RemoteCommand[] {
  return [
    {argv: ['rm', '-f', '--', ...paths], root: true, description: `remove ${paths.join(', ')}`},
    {argv: ['apt-get', 'update', '-qq', '-o', 'DPkg::Lock::Timeout=300'], root: true, description: 'refresh the package lists'},
  ]
}

/** Free space (KiB) of the filesystems holding each path. */
export function diskFreeQuery(paths: string[]): RemoteCommand {
  return {argv: shScript('for p; do [ -e "$p" ] || p=/; printf "%s\\t%s\\n" "$p" "$(df -Pk "$p" | awk \'NR==2 {print $4}\')"; done', paths), description: `free space under ${paths.join(', ')}`}
}

export function parseDiskFree(stdout: string): Record<string, number> {
  return Object.fromEntries(
    stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t'))
      .map(([p, k]) => [p!, Number(k) * 1024]),
  )
}

/** A migration's check: its query in its database on the PostgreSQL host, printed bare. */
export function migrationCheck(m: Migration): RemoteCommand {
  return {
    argv: ['psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', m.check.database],
    stdin: `${m.check.sql};\n`,
    asUser: 'postgres',
    description: `check migration ${m.id}`,
  }
}

export function pgDatabaseSizeQuery(database: string): RemoteCommand {
  return {
    argv: ['psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres'],
    stdin: `SELECT coalesce((SELECT pg_database_size(datname) FROM pg_database WHERE datname = '${database.replace(/'/g, "''")}'), 0);\n`,
    asUser: 'postgres',
    description: `size of database ${database}`,
  }
}
