import {ETCD_PORTS, PATRONI_API_PORT} from '../../config/load.js'
import type {ClusterConfig, PatroniPlacement} from '../../config/model.js'
import {systemdReload, type Resource} from '../../plan/resources.js'
import {shScript, type RemoteCommand} from '../../transport/command.js'
import type {ComponentContext} from '../types.js'
import {scramSha256Verifier} from './scram.js'

export const PATRONI_UNIT = 'patroni'
export const PATRONI_CONFIG = '/etc/patroni/config.yml'
export const ETCD_UNIT = 'etcd'
export const PG_PROXY_UNIT = 'imctl-pg-proxy'
const PROXY_DIR = '/etc/imctl-pg-proxy'
const PROXY_CONFIG = `${PROXY_DIR}/haproxy.cfg`

/** Patroni's data directory: its own, beside (never inside) Debian's `main` cluster. */
export function patroniDataDir(version: string): string {
  return `/var/lib/postgresql/${version}/patroni`
}

/** The placement in Patroni mode, or undefined for a single node. */
export function patroniOf(config: ClusterConfig): PatroniPlacement | undefined {
  return config.components.postgresql.patroni
}

/** Each node's REST API address, as HAProxy and imctl's checks reach it. */
export function patroniApiUrls(config: ClusterConfig, path: string): string[] {
  return (patroniOf(config)?.hosts ?? []).map((n) => `http://${addressOf(config, n)}:${PATRONI_API_PORT}${path}`)
}

function addressOf(config: ClusterConfig, name: string): string {
  const h = config.hosts.find((x) => x.name === name)
  if (!h) throw new Error(`bug: no host ${name} after validation`)
  return h.address
}

const WAIT_HTTP = `import sys, time, urllib.request
limit, urls = int(sys.argv[1]), sys.argv[2:]
deadline = time.time() + limit
while True:
    for u in urls:
        try:
            with urllib.request.urlopen(u, timeout=3) as r:
                if r.status == 200:
                    sys.exit(0)
        except Exception:
            pass
    if time.time() > deadline:
        sys.stderr.write("no answer 200 from %s after %d s\\n" % (" or ".join(urls), limit))
        sys.exit(1)
    time.sleep(2)
`

/** Succeeds once one of `urls` answers 200 (Patroni's REST API: /health, /primary). */
export function waitForHttp200(urls: string[], seconds: number, description: string): RemoteCommand {
  return {argv: ['python3', '-c', WAIT_HTTP, String(seconds), ...urls], description}
}

/**
 * Stops and disables Debian's `main` cluster, once. It refuses when that cluster holds the
 * ejabberd database (a single-node cluster switched to Patroni): Patroni would start an empty
 * one beside it, so the data must be moved over first (backup, then restore).
 */
export function retireDebianCluster(version: string): RemoteCommand {
  const unit = `postgresql@${version}-main`
  return {
    argv: shScript(
      'if systemctl is-active --quiet "$1" && runuser -u postgres -- psql -XtAq -d postgres -c "SELECT 1 FROM pg_database WHERE datname = \'ejabberd\'" | grep -q 1; then ' +
        'echo "$1 holds the ejabberd database: Patroni would start an empty cluster beside it. Back it up (imctl backup create), install with postgresql.host, or move the data into the Patroni cluster first" >&2; exit 1; fi; ' +
        'systemctl stop "$1" && systemctl disable --quiet "$1" 2>/dev/null; systemctl is-active --quiet "$1" && exit 1; mkdir -p /var/lib/imctl && touch "$2"',
      [unit, '/var/lib/imctl/postgresql-main-stopped'],
    ),
    root: true,
    description: `stop and disable ${unit} (refused while it holds the ejabberd database)`,
  }
}

/**
 * Patroni mode: every node runs Patroni (which runs PostgreSQL), the etcd members run etcd
 * with a static initial cluster, and the IM host runs a HAProxy of its own in front of the primary.
 */
export function patroniResources(ctx: ComponentContext, patroni: PatroniPlacement): Resource[] {
  const config = ctx.config
  const release = ctx.manifest.components.postgresql!
  const ha = release.ha
  if (!ha) throw new Error(`bug: release ${ctx.manifest.release} has no Patroni packages (components.postgresql.ha)`)
  const version = release.version
  const port = config.components.postgresql.port
  const dataDir = patroniDataDir(version)
  const out: Resource[] = []
  const base = (host: string) => ({host, component: 'postgresql' as const})

  // etcd first: Patroni needs its store before it starts.
  const members = patroni.etcd.map((name) => ({name, address: addressOf(config, name)}))
  const initialCluster = members.map((m) => `${m.name}=http://${m.address}:${ETCD_PORTS.peer}`).join(',')
  for (const m of members) {
    out.push(
      {...base(m.name), kind: 'packages', packages: ha.etcd},
      {
        ...base(m.name),
        kind: 'file',
        path: '/etc/default/etcd',
        content: ctx.render('patroni/etcd.env.hbs', {cluster: config, ...m, members, initialCluster, dataDir: `/var/lib/etcd/imctl-${config.name}`, clientPort: ETCD_PORTS.client, peerPort: ETCD_PORTS.peer}),
        owner: 'root',
        group: 'root',
        mode: '644',
        secret: false,
        notify: [ETCD_UNIT],
      },
      // A new member's start returns once a majority has joined (Type=notify).
      {...base(m.name), kind: 'service', unit: ETCD_UNIT},
    )
  }

  const clusterAddresses = [...new Set(config.hosts.map((h) => h.address))]
  const nodeAddresses = patroni.hosts.map((n) => addressOf(config, n))
  const etcdHosts = members.map((m) => `${m.address}:${ETCD_PORTS.client}`)
  patroni.hosts.forEach((name, i) => {
    const host = ctx.host(name)
    const b = base(name)
    out.push(
      {...b, kind: 'packages', packages: [...release.packages, ...ha.patroni]},
      // Debian's package made a `main` cluster: kept (never dropped), but not started at boot.
      {...b, kind: 'file', path: `/etc/postgresql/${version}/main/start.conf`, content: 'disabled\n', owner: 'postgres', group: 'postgres', mode: '644', secret: false, notify: []},
      {
        ...b,
        kind: 'once',
        name: 'postgresql-main-stopped',
        marker: '/var/lib/imctl/postgresql-main-stopped',
        what: `stop Debian's postgresql@${version}-main (Patroni runs this node's PostgreSQL)`,
        command: retireDebianCluster(version),
        after: [],
      },
      {
        ...b,
        kind: 'file',
        path: PATRONI_CONFIG,
        content: ctx.render('patroni/patroni.yml.hbs', {cluster: config, host, port, version, dataDir, apiPort: PATRONI_API_PORT, etcdHosts, nodeAddresses, clusterAddresses, secrets: ctx.secrets}),
        owner: 'postgres',
        group: 'postgres',
        mode: '600',
        secret: true,
        notify: [PATRONI_UNIT],
        // Patroni applies a changed config on reload; a restart of the primary would be a failover.
        reloadable: true,
      },
    )
    if (i > 0) {
      // The first node bootstraps; the others start once there is a primary to clone, so the
      // first install always has the first node as its primary.
      out.push({
        ...b,
        kind: 'once',
        name: 'patroni-primary-up',
        marker: `${dataDir}/PG_VERSION`,
        what: 'wait for the Patroni cluster\'s primary before this replica starts',
        command: waitForHttp200(patroniApiUrls(config, '/primary'), 300, 'wait until a Patroni node answers as the primary'),
        after: [],
      })
    }
    out.push({...b, kind: 'service', unit: PATRONI_UNIT, reload: systemdReload(PATRONI_UNIT, 'Patroni applies its changed config'), ready: waitForHttp200([`http://${host.address}:${PATRONI_API_PORT}/health`], 300, `wait until Patroni runs PostgreSQL on ${name}`)})
    if (i === 0) {
      out.push(
        {...b, kind: 'pg-role', role: 'ejabberd', verifier: scramSha256Verifier(ctx.secrets.postgresql.ejabberd_password, 'ejabberd')},
        {...b, kind: 'pg-database', database: 'ejabberd', owner: 'ejabberd'},
      )
    }
  })

  // The IM host's own proxy to the primary, on its loopback.
  const im = config.components.ejabberd.host
  const vars = {cluster: config, proxyPort: patroni.proxyPort, port, apiPort: PATRONI_API_PORT, nodes: patroni.hosts.map((n) => ({name: n, address: addressOf(config, n)})), configFile: PROXY_CONFIG}
  out.push(
    {...base(im), kind: 'packages', packages: ha.proxy},
    {...base(im), kind: 'directory', path: PROXY_DIR, owner: 'root', group: 'root', mode: '755'},
    {...base(im), kind: 'file', path: PROXY_CONFIG, content: ctx.render('patroni/haproxy-pg.cfg.hbs', vars), owner: 'root', group: 'root', mode: '644', secret: false, notify: [PG_PROXY_UNIT]},
    {...base(im), kind: 'file', path: `/etc/systemd/system/${PG_PROXY_UNIT}.service`, content: ctx.render('patroni/imctl-pg-proxy.service.hbs', vars), owner: 'root', group: 'root', mode: '644', secret: false, notify: [PG_PROXY_UNIT], daemonReload: true},
    {
      ...base(im),
      kind: 'service',
      unit: PG_PROXY_UNIT,
      ready: {
        argv: shScript('for i in $(seq 1 30); do ss -Hltn "sport = :$1" | grep -q . && exit 0; sleep 1; done; echo "nothing listens on 127.0.0.1:$1; see journalctl -u imctl-pg-proxy" >&2; exit 1', [String(patroni.proxyPort)]),
        description: `wait until the PostgreSQL proxy listens on 127.0.0.1:${patroni.proxyPort}`,
      },
    },
  )
  return out
}
