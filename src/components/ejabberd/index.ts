import type {Component} from '../types.js'

/** Where ejabberd listens inside its container (published on the configured ports). */
export const CONTAINER_PORTS = {c2s: 5222, http: 5280, mqtt: 1883, api: 5281}
const PORTS = CONTAINER_PORTS

export const ejabberd: Component = {
  name: 'ejabberd',
  dependsOn: ['postgresql', 'redis'],
  hosts: (config) => [config.components.ejabberd.host],
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
    const host = ctx.host(c.ejabberd.host)
    const container = ctx.inContainer('ejabberd')
    const base = {host: host.name, component: 'ejabberd' as const}
    const pgHost = ctx.host(c.postgresql.host)
    const vars = {
      cluster: ctx.config,
      release: ctx.manifest,
      host,
      listenIp: container ? '0.0.0.0' : host.address,
      ports: container ? PORTS : c.ejabberd.ports,
      postgresql: ctx.primaryEndpoint('ejabberd'),
      redis: ctx.endpoint('redis', 'ejabberd'),
      secrets: ctx.secrets,
      // The release's version-specific settings (e.g. update_sql_schema, which 23.01 does not know).
      settings: ctx.manifest.components.ejabberd!.settings ?? {},
    }
    return [
      {...base, kind: 'packages', packages: ctx.manifest.components.ejabberd!.packages},
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
      {
        ...base,
        kind: 'sql-schema',
        dbHost: pgHost.name,
        database: 'ejabberd',
        role: 'ejabberd',
        // Debian's package ships the schema; it is not created for us.
        sourcePath: '/usr/share/ejabberd/sql/pg.new.sql',
        probeTable: 'users',
        after: ['postgresql'],
      },
      {...base, kind: 'service', unit: 'ejabberd'},
      {
        ...base,
        kind: 'xmpp-account',
        user: 'admin',
        domain: ctx.config.domain,
        password: ctx.secrets.ejabberd.admin_password,
        apiPort: container ? PORTS.api : c.ejabberd.ports.api,
      },
    ]
  },
}
