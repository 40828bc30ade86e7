import {openEjabberdApi} from '../components/ejabberd/api.js'
import {minioStateQuery, parseMinioState} from '../components/minio/mc.js'
import {RemoteError} from '../errors.js'
import type {ComponentName} from '../config/model.js'
import type {EngineConnection} from '../transport/engine.js'
import {LABELS} from '../transport/engine-names.js'
import type {HostConnection} from '../transport/types.js'
import {emptyFacts, type EngineFacts, type HostFacts} from './facts.js'
import {
  filesQuery,
  mountsQuery,
  packagesQuery,
  parseFiles,
  parseMounts,
  parsePackages,
  parsePgCatalog,
  parsePaths,
  parseServices,
  parseUsers,
  pathsQuery,
  usersQuery,
  pendingRestartsQuery,
  pgCatalogQuery,
  pgTableQuery,
  servicesQuery,
} from './observe.js'
import {firewallQuery, parseFirewall, parseSshClient, sshClientQuery} from './firewall.js'
import type {Resource} from './resources.js'

/** Observes one host, read-only, for the resources that concern it. */
export async function gatherFacts(conn: HostConnection, resources: Resource[], cluster: string): Promise<HostFacts> {
  const name = conn.host.name
  const facts = emptyFacts(name)
  const mine = resources.filter((r) => r.host === name)
  const schemas = resources.filter((r) => r.kind === 'sql-schema' && r.dbHost === name)

  if (conn.kind === 'engine') {
    try {
      facts.engine = await gatherEngine(conn as EngineConnection, mine, cluster)
    } catch (e) {
      if (e instanceof RemoteError) throw e
      throw new RemoteError(name, 'observe the engine (networks, images, containers)', null, (e as Error).message)
    }
  }
  else await gatherSystem(conn, mine, facts)

  // Is a component's server up here? (a systemd unit, or a container)
  const running = (component: ComponentName): boolean => {
    const r = mine.find((x) => (x.kind === 'service' || x.kind === 'container-running') && x.component === component)
    if (r?.kind === 'service') return facts.services[r.unit]?.active ?? false
    if (r?.kind === 'container-running') return facts.engine?.containers[r.name]?.running ?? false
    return false
  }

  const roles = mine.flatMap((r) => (r.kind === 'pg-role' ? [r.role] : []))
  const dbs = [...new Set([...mine.flatMap((r) => (r.kind === 'pg-database' ? [r.database] : [])), ...schemas.map((s) => (s.kind === 'sql-schema' ? s.database : ''))])]
  if ((roles.length || dbs.length) && running('postgresql')) {
    try {
      const cat = parsePgCatalog((await conn.exec({...pgCatalogQuery(roles, dbs), component: 'postgresql'})).stdout)
      const tables: string[] = []
      for (const s of schemas) {
        if (s.kind !== 'sql-schema' || !(s.database in cat.databases)) continue
        const r = await conn.exec({...pgTableQuery(s.database, s.probeTable), component: 'postgresql'})
        if (r.stdout.trim() === 't') tables.push(`${s.database}.${s.probeTable}`)
      }
      facts.pg = {...cat, tables}
    } catch {
      facts.pg = null // not answering: planned steps will say so
    }
  }

  // MinIO's buckets and users, through mc on the host that manages them, once MinIO runs there.
  const minio = mine.flatMap((r) => (r.kind === 'minio-bucket' || r.kind === 'minio-user' ? [r] : []))
  if (minio.length && running('minio')) {
    const users = minio.flatMap((r) => (r.kind === 'minio-user' ? [{user: r.user, secret: r.secret}] : []))
    const policies = minio.flatMap((r) => (r.kind === 'minio-user' ? [r.policy] : []))
    try {
      facts.minio = parseMinioState((await conn.exec({...minioStateQuery(minio[0]!.mc, policies, users), component: 'minio'})).stdout)
    } catch {
      // Not answering (no quorum yet): planned steps will say so.
    }
  }

  for (const r of mine) {
    if (r.kind !== 'xmpp-account' || !running(r.component)) continue
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

async function gatherSystem(conn: HostConnection, mine: Resource[], facts: HostFacts): Promise<void> {
  const packages = mine.flatMap((r) => (r.kind === 'packages' ? r.packages.map((p) => p.name) : []))
  const files = mine.flatMap((r) => (r.kind === 'file' ? [r.path] : []))
  const units = [...new Set(mine.flatMap((r) => (r.kind === 'service' ? [r.unit, r.enableUnit ?? r.unit] : r.kind === 'firewall' ? [r.unit] : [])))]
  const users = mine.flatMap((r) => (r.kind === 'system-user' ? [r.user] : []))
  const paths = mine.flatMap((r) => (r.kind === 'directory' ? [r.path] : r.kind === 'once' ? [r.marker] : []))
  const mounts = mine.flatMap((r) => (r.kind === 'mount' ? [r.path] : []))
  // An artifact is complete when its SHA256SUMS (written last) is what the release lists.
  files.push(...mine.flatMap((r) => (r.kind === 'artifact' ? [`${r.dir}/SHA256SUMS`] : [])))
  await Promise.all([
    users.length ? conn.exec(usersQuery(users)).then((r) => (facts.users = parseUsers(r.stdout, users))) : undefined,
    paths.length ? conn.exec(pathsQuery(paths)).then((r) => (facts.paths = parsePaths(r.stdout))) : undefined,
    mounts.length ? conn.exec(mountsQuery(mounts)).then((r) => (facts.mounts = parseMounts(r.stdout))) : undefined,
    packages.length ? conn.exec(packagesQuery(packages)).then((r) => (facts.packages = parsePackages(r.stdout, packages))) : undefined,
    files.length ? conn.exec(filesQuery(files)).then((r) => (facts.files = parseFiles(r.stdout))) : undefined,
    units.length ? conn.exec(servicesQuery(units)).then((r) => (facts.services = parseServices(r.stdout))) : undefined,
    conn.exec(pendingRestartsQuery()).then((r) => (facts.pendingRestarts = r.stdout.split('\n').filter(Boolean))),
    mine.some((r) => r.kind === 'firewall') ? conn.exec(firewallQuery()).then((r) => (facts.firewall = parseFirewall(r.stdout))) : undefined,
    mine.some((r) => r.kind === 'firewall' && r.adminSources.length)
      ? conn.exec(sshClientQuery()).then((r) => {
          const client = parseSshClient(r.stdout)
          if (client) facts.sshClient = client
        })
      : undefined,
  ])
}

async function gatherEngine(conn: EngineConnection, mine: Resource[], cluster: string): Promise<EngineFacts> {
  const docker = conn.docker
  const networkNames = mine.flatMap((r) => (r.kind === 'network' ? [r.name] : []))
  const [networks, containers] = await Promise.all([
    docker.listNetworks(),
    docker.listContainers({all: true, filters: JSON.stringify({label: [`${LABELS.cluster}=${cluster}`]})}),
  ])
  const images: string[] = []
  await Promise.all(
    mine.map(async (r) => {
      if (r.kind !== 'image') return
      try {
        await docker.getImage(r.tag).inspect()
        images.push(r.tag)
      } catch {
        // not built yet
      }
    }),
  )
  const facts: EngineFacts = {networks: networks.map((n) => n.Name).filter((n) => networkNames.includes(n)), images, containers: {}}
  await Promise.all(
    containers.map(async (c) => {
      const name = (c.Names[0] ?? '').replace(/^\//, '')
      const component = c.Labels[LABELS.component]
      if (!component) return // imctl's own state container
      const desired = mine.find((r) => r.kind === 'container' && r.name === name)
      const files: Record<string, {owner: string; group: string; mode: string; content: Buffer} | null> = {}
      if (desired?.kind === 'container') {
        for (const f of desired.files) {
          const content = await conn.readFile(component as ComponentName, f.path).catch(() => null)
          files[f.path] = content === null ? null : {owner: f.owner, group: f.group, mode: f.mode, content}
        }
      }
      facts.containers[name] = {component, running: c.State === 'running', configHash: c.Labels[LABELS.configHash] ?? '', files}
    }),
  )
  return facts
}
