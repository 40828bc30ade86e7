import type {Component} from '../types.js'

export const ejabberd: Component = {
  name: 'ejabberd',
  dependsOn: ['postgresql', 'redis'],
  hosts: (config) => [config.components.ejabberd.host],
  resources(ctx) {
    const c = ctx.config.components
    const host = ctx.host(c.ejabberd.host)
    const pg = ctx.host(c.postgresql.host)
    const redis = ctx.host(c.redis.host)
    const base = {host: host.name, component: 'ejabberd' as const}
    const vars = {
      cluster: ctx.config,
      release: ctx.manifest,
      host,
      ports: c.ejabberd.ports,
      postgresql: {address: pg.address, port: c.postgresql.port},
      redis: {address: redis.address, port: c.redis.port},
      secrets: ctx.secrets,
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
        dbHost: pg.name,
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
        apiPort: c.ejabberd.ports.api,
      },
    ]
  },
}
