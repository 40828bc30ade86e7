/** Shared fixtures for the unit tests (not a test file itself). */
import {readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseClusterConfig} from '../../src/config/load.js'
import {loadManifest} from '../../src/config/manifest.js'
import type {ClusterConfig} from '../../src/config/model.js'
import {secretValues, type ClusterSecrets} from '../../src/config/secrets.js'
import {desiredState} from '../../src/plan/desired.js'
import {emptyFacts, type HostFacts} from '../../src/plan/facts.js'
import type {Resource} from '../../src/plan/resources.js'

export const repoRoot = resolve(fileURLToPath(import.meta.url), '../../..')
export const fixturesDir = join(repoRoot, 'test/fixtures')

export const RELEASE = 'ejabberd-23.01-debian12'

/** Fixed secrets: distinctive, so a leak is easy to spot in any text. */
export const SECRETS: ClusterSecrets = {
  postgresql: {ejabberd_password: 'pg-Secret-4f7a2c9e1b'},
  redis: {password: 'redis-Secret-8d3e6f0a2c'},
  ejabberd: {admin_password: 'admin-Secret-1c5b9d7e3f'},
}
export const SECRET_VALUES = secretValues(SECRETS)

/** db1 (postgresql), cache1 (redis, admin+sudo), im1 (ejabberd). */
export const THREE_HOSTS_YAML = readFileSync(join(fixturesDir, 'valid-agent-cluster.yaml'), 'utf8')

/** Everything on one host. */
export const ONE_HOST_YAML = `apiVersion: imctl/v1
name: solo
domain: chat.example.org
release: ${RELEASE}
hosts:
  - name: box
    address: 192.168.50.7
    auth: {agent: true}
components:
  postgresql: {host: box}
  redis: {host: box}
  ejabberd: {host: box}
`

export function configFrom(yaml: string): ClusterConfig {
  return parseClusterConfig(yaml, '/tmp/imctl-unit/cluster.yaml')
}

export function resourcesFor(yaml: string): Resource[] {
  const config = configFrom(yaml)
  return desiredState(config, loadManifest(config.release), SECRETS)
}

/** Debian 12 versions that satisfy the release manifest's globs. */
export const INSTALLED: Record<string, string> = {
  'postgresql-15': '15.8-0+deb12u1',
  'postgresql-client-15': '15.8-0+deb12u1',
  'redis-server': '5:7.0.15-1~deb12u1',
  ejabberd: '23.01-1+deb12u1',
  'erlang-p1-pgsql': '1.1.19-1',
  'erlang-redis-client': '1.2.0-7',
  haproxy: '2.6.12-1+deb12u3',
  nftables: '1.0.6-2+deb12u2',
  keepalived: '1:2.2.7-1+b2',
}

/** An engine host with nothing of this cluster on it. */
export function emptyEngineFacts(host: string): HostFacts {
  return {...emptyFacts(host), engine: {networks: [], images: [], containers: {}}}
}

/** What gatherFacts reports for a cluster imctl already installed, engine hosts included. */
export function convergedFacts(config: ClusterConfig, resources: Resource[]): Record<string, HostFacts> {
  const facts = Object.fromEntries(config.hosts.map((h) => [h.name, h.engine ? emptyEngineFacts(h.name) : emptyFacts(h.name)]))
  for (const r of resources) {
    const f = facts[r.host]!
    switch (r.kind) {
      case 'packages':
        for (const p of r.packages) f.packages[p.name] = INSTALLED[p.name]!
        break
      case 'file':
        f.files[r.path] = {owner: r.owner, group: r.group, mode: r.mode, content: Buffer.from(r.content)}
        break
      case 'service':
        for (const u of [r.unit, r.enableUnit ?? r.unit]) f.services[u] = {loaded: true, active: true, enabled: true}
        break
      case 'pg-role':
        f.pg ??= {roles: {}, databases: {}, tables: []}
        f.pg.roles[r.role] = r.verifier
        break
      case 'pg-database':
        f.pg ??= {roles: {}, databases: {}, tables: []}
        f.pg.databases[r.database] = r.owner
        break
      case 'sql-schema': {
        const db = facts[r.dbHost]!
        db.pg ??= {roles: {}, databases: {}, tables: []}
        db.pg.tables.push(`${r.database}.${r.probeTable}`)
        break
      }
      case 'xmpp-account':
        f.xmppAccounts[`${r.user}@${r.domain}`] = true
        break
      case 'network':
        f.engine!.networks.push(r.name)
        break
      case 'image':
        f.engine!.images.push(r.tag)
        break
      case 'container':
        f.engine!.containers[r.name] = {
          component: r.component,
          running: true,
          configHash: r.configHash,
          files: Object.fromEntries(r.files.map((x) => [x.path, {owner: x.owner, group: x.group, mode: x.mode, content: Buffer.from(x.content)}])),
        }
        break
      case 'container-running':
        break
      case 'directory':
        f.paths[r.path] = {type: 'directory', owner: r.owner, group: r.group, mode: r.mode}
        break
      case 'ejabberd-cluster':
        f.ejabberdCluster = [r.seed, r.node]
        break
      case 'firewall':
        f.firewall = r.table
        f.services[r.unit] = {loaded: true, active: true, enabled: r.table !== null}
        break
    }
  }
  return facts
}
