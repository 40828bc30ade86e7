import {openEjabberdApi} from '../components/ejabberd/api.js'
import type {HostConnection} from '../transport/types.js'
import {emptyFacts, type HostFacts} from './facts.js'
import {
  filesQuery,
  packagesQuery,
  parseFiles,
  parsePackages,
  parsePgCatalog,
  parseServices,
  pendingRestartsQuery,
  pgCatalogQuery,
  pgTableQuery,
  servicesQuery,
} from './observe.js'
import type {Resource} from './resources.js'

/** Observes one host, read-only, for the resources that concern it. */
export async function gatherFacts(conn: HostConnection, resources: Resource[]): Promise<HostFacts> {
  const name = conn.host.name
  const facts = emptyFacts(name)
  const mine = resources.filter((r) => r.host === name)
  const schemas = resources.filter((r) => r.kind === 'sql-schema' && r.dbHost === name)

  const packages = mine.flatMap((r) => (r.kind === 'packages' ? r.packages.map((p) => p.name) : []))
  const files = mine.flatMap((r) => (r.kind === 'file' ? [r.path] : []))
  const units = [...new Set(mine.flatMap((r) => (r.kind === 'service' ? [r.unit, r.enableUnit ?? r.unit] : [])))]

  await Promise.all([
    packages.length ? conn.exec(packagesQuery(packages)).then((r) => (facts.packages = parsePackages(r.stdout, packages))) : undefined,
    files.length ? conn.exec(filesQuery(files)).then((r) => (facts.files = parseFiles(r.stdout))) : undefined,
    units.length ? conn.exec(servicesQuery(units)).then((r) => (facts.services = parseServices(r.stdout))) : undefined,
    conn.exec(pendingRestartsQuery()).then((r) => (facts.pendingRestarts = r.stdout.split('\n').filter(Boolean))),
  ])

  const roles = mine.flatMap((r) => (r.kind === 'pg-role' ? [r.role] : []))
  const dbs = [...new Set([...mine.flatMap((r) => (r.kind === 'pg-database' ? [r.database] : [])), ...schemas.map((s) => (s.kind === 'sql-schema' ? s.database : ''))])]
  const pgUnit = mine.find((r) => r.kind === 'service' && r.component === 'postgresql')
  const pgRunning = pgUnit?.kind === 'service' ? facts.services[pgUnit.unit]?.active : schemas.length > 0
  if ((roles.length || dbs.length) && pgRunning) {
    try {
      const cat = parsePgCatalog((await conn.exec(pgCatalogQuery(roles, dbs))).stdout)
      const tables: string[] = []
      for (const s of schemas) {
        if (s.kind !== 'sql-schema' || !(s.database in cat.databases)) continue
        const r = await conn.exec(pgTableQuery(s.database, s.probeTable))
        if (r.stdout.trim() === 't') tables.push(`${s.database}.${s.probeTable}`)
      }
      facts.pg = {...cat, tables}
    } catch {
      facts.pg = null // not answering: planned steps will say so
    }
  }

  for (const r of mine) {
    if (r.kind !== 'xmpp-account') continue
    const im = mine.find((x) => x.kind === 'service' && x.component === r.component)
    if (im?.kind !== 'service' || !facts.services[im.unit]?.active) continue
    try {
      const api = await openEjabberdApi(conn, r.apiPort, 5000)
      try {
        const code = await api.call<number>('check_password', {user: r.user, host: r.domain, password: r.password})
        facts.xmppAccounts[`${r.user}@${r.domain}`] = code === 0
      } finally {
        await api.close()
      }
    } catch {
      // The API did not answer: leave the account unknown.
    }
  }
  return facts
}
