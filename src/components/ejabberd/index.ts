import {ERLANG_DIST_PORTS} from '../../config/load.js'
import {ejabberdClustered, type HostConfig} from '../../config/model.js'
import {systemdReload, type Resource} from '../../plan/resources.js'
import {jwkFile, JWT_KEY_FILE} from '../../ops/jwt.js'
import {clientCertificate, serverCertificate} from '../../pki/pki.js'
import type {RemoteCommand} from '../../transport/command.js'
import type {Component, ComponentContext} from '../types.js'

/** Where ejabberd listens inside its container (published on the configured ports). */
export const CONTAINER_PORTS = {c2s: 5222, http: 5280, mqtt: 1883, api: 5281}
const PORTS = CONTAINER_PORTS

/** stunnel between ejabberd and Redis (with `tls:`): its unit, config and the CA it checks Redis against. */
export const REDIS_TUNNEL = {unit: 'imctl-redis-tunnel', conf: '/etc/imctl/redis-tunnel.conf', ca: '/etc/imctl/redis-tunnel-ca.pem'}

/** The tunnel's loopback port on the ejabberd host: Redis's port + 10000 (a Redis on the same host keeps its own). */
export function redisTunnelPort(redisPort: number): number {
  return redisPort + 10000 <= 65535 ? redisPort + 10000 : redisPort - 10000
}

export const ejabberd: Component = {
  name: 'ejabberd',
  dependsOn: ['postgresql', 'redis'],
  hosts: (config) => config.components.ejabberd.hosts,
  container: {
    ports: [
      {containerPort: PORTS.c2s, publish: (config) => config.components.ejabberd.ports.c2s},
      {containerPort: PORTS.http, publish: (config) => config.components.ejabberd.ports.http},
      {containerPort: PORTS.mqtt, publish: (config) => config.components.ejabberd.ports.mqtt},
      // The admin API stays on the container's loopback: never published.
      {containerPort: PORTS.api, publish: () => null},
    ],
    volumes: [{name: 'data', path: '/var/lib/ejabberd'}],
    healthcheck: ['/usr/local/bin/imctl-healthcheck'],
    ready: {argv: ['/usr/local/bin/imctl-healthcheck'], description: 'wait until ejabberd answers'},
  },
  resources(ctx) {
    const c = ctx.config.components
    const clustered = ejabberdClustered(ctx.config)
    const first = ctx.host(c.ejabberd.host)
    const pki = ctx.secrets.tls
    return c.ejabberd.hosts.flatMap((name, i): Resource[] => {
      const host = ctx.host(name)
      const container = ctx.inContainer('ejabberd')
      const base = {host: host.name, component: 'ejabberd' as const}
      const pgHost = ctx.host(c.postgresql.host)
      const tls = pki ? {pem: '/etc/ejabberd/imctl.pem', ca: '/etc/ejabberd/imctl-ca.pem', sqlClient: '/etc/ejabberd/imctl-sql-client.pem', c2sTlsPort: c.ejabberd.c2sTlsPort} : undefined
      const vars = {
        tls,
        cluster: ctx.config,
        release: ctx.manifest,
        host,
        listenIp: container ? '0.0.0.0' : host.address,
        ports: container ? PORTS : c.ejabberd.ports,
        postgresql: ctx.primaryEndpoint('ejabberd'),
        // With TLS ejabberd reaches Redis through the tunnel on its own loopback.
        redis: tls ? {address: '127.0.0.1', port: redisTunnelPort(ctx.endpoint('redis', 'ejabberd').port)} : ctx.endpoint('redis', 'ejabberd'),
        secrets: ctx.secrets,
        // The release's version-specific settings (e.g. update_sql_schema, which 23.01 does not know).
        settings: ctx.manifest.components.ejabberd!.settings ?? {},
        jwt: c.ejabberd.jwt ? {keyFile: JWT_KEY_FILE, jidField: c.ejabberd.jwt.jidField} : undefined,
      }
      const jwtKey = ctx.secrets.ejabberd_jwt?.key
      if (c.ejabberd.jwt && !jwtKey) throw new Error('bug: JWT login without ejabberd_jwt.key in the secrets')
      const jwtFiles: Resource[] = c.ejabberd.jwt
        ? [{...base, kind: 'file', path: JWT_KEY_FILE, content: jwkFile(jwtKey!), owner: 'ejabberd', group: 'ejabberd', mode: '600', secret: true, notify: ['ejabberd']}]
        : []
      const tlsFiles: Resource[] = pki && tls
        ? (() => {
            const own = serverCertificate(pki, 'ejabberd', host.name)
            const sqlClient = clientCertificate(pki, 'ejabberd')
            const file = {...base, kind: 'file' as const, owner: 'ejabberd', group: 'ejabberd', notify: ['ejabberd'], reloadable: true}
            const redis = ctx.endpoint('redis', 'ejabberd')
            const tunnel = {cluster: ctx.config, redis, localPort: redisTunnelPort(redis.port), ca: REDIS_TUNNEL.ca, conf: REDIS_TUNNEL.conf}
            const tunnelFile = {...base, kind: 'file' as const, owner: 'root', group: 'root', mode: '644', secret: false, notify: [REDIS_TUNNEL.unit]}
            const stunnel = ctx.manifest.hostPackages?.find((p) => p.name === 'stunnel4')
            if (!stunnel) throw new Error(`bug: release ${ctx.manifest.release} has no stunnel4 in hostPackages, which TLS to Redis needs`)
            return [
              {...base, kind: 'packages' as const, packages: [stunnel]},
              {...base, kind: 'directory' as const, path: '/etc/imctl', owner: 'root', group: 'root', mode: '755'},
              {...tunnelFile, path: REDIS_TUNNEL.ca, content: pki.caBundle, reloadable: true},
              {...tunnelFile, path: REDIS_TUNNEL.conf, content: ctx.render('ejabberd/redis-tunnel.conf.hbs', tunnel)},
              {...tunnelFile, path: `/etc/systemd/system/${REDIS_TUNNEL.unit}.service`, content: ctx.render('ejabberd/imctl-redis-tunnel.service.hbs', tunnel), daemonReload: true},
              {
                ...base,
                kind: 'service' as const,
                unit: REDIS_TUNNEL.unit,
                reload: systemdReload(REDIS_TUNNEL.unit, 'stunnel reads the CA again'),
              },
              // Key and certificate in one file, as ejabberd's certfiles take them (clients hold the CA).
              {...file, path: tls.pem, content: own.key + own.cert, mode: '600', secret: true},
              // What ejabberd trusts as a client of PostgreSQL (every CA during a CA rotation).
              {...file, path: tls.ca, content: pki.caBundle, mode: '644', secret: false},
              // Its login to PostgreSQL (pg_hba `cert`): certificate then key in one file, read again on each new connection.
              {...file, path: tls.sqlClient, content: sqlClient.cert + sqlClient.key, mode: '600', secret: true},
            ]
          })()
        : []
      const out: Resource[] = [
        {...base, kind: 'packages', packages: ctx.manifest.components.ejabberd!.packages},
        ...tlsFiles,
        ...jwtFiles,
        {
          ...base,
          kind: 'file',
          path: '/etc/ejabberd/ejabberd.yml',
          content: ctx.render('ejabberd/ejabberd.yml.hbs', vars),
          owner: 'ejabberd',
          group: 'ejabberd',
          mode: '600',
          secret: true,
          notify: ['ejabberd'],
        },
      ]
      if (clustered) out.push(...clusterFiles(ctx, host))
      // Once for the cluster: the schema is shared, and so is the admin account.
      if (i === 0) {
        out.push({
          ...base,
          kind: 'sql-schema',
          dbHost: pgHost.name,
          database: 'ejabberd',
          role: 'ejabberd',
          // Debian's package ships the schema; it is not created for us.
          sourcePath: '/usr/share/ejabberd/sql/pg.new.sql',
          probeTable: 'users',
          after: ['postgresql'],
        })
      }
      out.push({
        ...base,
        kind: 'service',
        unit: 'ejabberd',
        ...(clustered ? {ready: WAIT_STARTED} : {}),
        // reload_config re-reads every certfile; connections stay up.
        ...(pki ? {reload: [{argv: ['ejabberdctl', 'reload_config'], root: true, description: 'reload ejabberd\'s configuration and certificates'}]} : {}),
      })
      if (i === 0) {
        out.push({
          ...base,
          kind: 'xmpp-account',
          user: 'admin',
          domain: ctx.config.domain,
          password: ctx.secrets.ejabberd.admin_password,
          apiPort: container ? PORTS.api : c.ejabberd.ports.api,
        })
      } else {
        out.push({...base, kind: 'ejabberd-cluster', node: ejabberdNodeName(host), seed: ejabberdNodeName(first)})
      }
      return out
    })
  },
}

/** With `ejabberd.hosts`, the node's Erlang name: its cluster address, reachable from every other node without DNS. */
export function ejabberdNodeName(host: HostConfig): string {
  return `ejabberd@${host.address}`
}

/** The TCP ports ejabberd nodes of one cluster use between them (for a firewall): epmd, then Erlang distribution. */
export function ejabberdClusterPorts(): {port: number; what: string}[] {
  return [
    {port: ERLANG_DIST_PORTS.epmd, what: 'epmd (Erlang port mapper)'},
    ...Array.from({length: ERLANG_DIST_PORTS.max - ERLANG_DIST_PORTS.min + 1}, (_, k) => ({port: ERLANG_DIST_PORTS.min + k, what: 'Erlang distribution (ejabberd nodes and ejabberdctl)'})),
  ]
}

const WAIT_STARTED: RemoteCommand = {argv: ['ejabberdctl', 'started'], root: true, description: 'wait until ejabberd has started'}
const DROP_IN_DIR = '/etc/systemd/system/ejabberd.service.d'

/** What makes a node one of a cluster: the shared cookie, its name and ports, and a unit that survives `join_cluster`. */
function clusterFiles(ctx: ComponentContext, host: HostConfig): Resource[] {
  const base = {host: host.name, component: 'ejabberd' as const}
  const node = ejabberdNodeName(host)
  const spoolDir = `/var/lib/ejabberd/mnesia/${node}`
  const cookie = ctx.secrets.ejabberd_cluster?.erlang_cookie
  if (!cookie) throw new Error('bug: an ejabberd cluster without ejabberd_cluster.erlang_cookie in its secrets')
  return [
    {...base, kind: 'directory', path: '/var/lib/ejabberd/mnesia', owner: 'ejabberd', group: 'ejabberd', mode: '700'},
    {...base, kind: 'directory', path: spoolDir, owner: 'ejabberd', group: 'ejabberd', mode: '700'},
    {...base, kind: 'directory', path: DROP_IN_DIR, owner: 'root', group: 'root', mode: '755'},
    {
      ...base,
      kind: 'file',
      path: `${DROP_IN_DIR}/imctl-cluster.conf`,
      content: ctx.render('ejabberd/imctl-cluster.conf.hbs', {cluster: ctx.config}),
      owner: 'root',
      group: 'root',
      mode: '644',
      secret: false,
      notify: ['ejabberd'],
      daemonReload: true,
    },
    {
      ...base,
      kind: 'file',
      // Debian's /etc/ejabberd/ejabberdctl.cfg is a link to this file.
      path: '/etc/default/ejabberd',
      content: ctx.render('ejabberd/ejabberdctl.cfg.hbs', {cluster: ctx.config, host, node, spoolDir, distPorts: ERLANG_DIST_PORTS}),
      owner: 'root',
      group: 'root',
      mode: '644',
      secret: false,
      notify: ['ejabberd'],
      // Stopped under the name the old file gives it: once renamed, ejabberdctl could not reach it to stop it.
      before: [{argv: ['systemctl', 'stop', 'ejabberd'], root: true, description: 'stop ejabberd under its current node name'}],
    },
    {
      ...base,
      kind: 'file',
      // Where Debian's ejabberd (running as user ejabberd, home /var/lib/ejabberd) reads its cookie.
      path: '/var/lib/ejabberd/.erlang.cookie',
      content: cookie,
      owner: 'ejabberd',
      group: 'ejabberd',
      mode: '400',
      secret: true,
      notify: ['ejabberd'],
    },
  ]
}
