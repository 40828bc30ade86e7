import type {Component} from '../types.js'
import {systemdReload, type Resource} from '../../plan/resources.js'
import {serverCertificate} from '../../pki/pki.js'
import {patroniResources} from './patroni.js'
import {scramSha256Verifier} from './scram.js'

const PORT = 5432

export const postgresql: Component = {
  name: 'postgresql',
  dependsOn: [],
  // In Patroni mode every node; the first one is `host`.
  hosts: (config) => config.components.postgresql.patroni?.hosts ?? [config.components.postgresql.host],
  container: {
    ports: [{containerPort: PORT, publish: (config) => config.components.postgresql.port}],
    volumes: [{name: 'data', path: '/var/lib/postgresql/15/main'}],
    healthcheck: ['/usr/local/bin/imctl-healthcheck'],
    ready: {argv: ['/usr/local/bin/imctl-healthcheck'], description: 'wait until PostgreSQL answers'},
    stopSignal: 'SIGINT',
  },
  resources(ctx) {
    const placement = ctx.config.components.postgresql
    if (placement.patroni) return patroniResources(ctx, placement.patroni)
    const host = ctx.host(placement.host)
    const release = ctx.manifest.components.postgresql!
    const etc = `/etc/postgresql/${release.version}/main`
    const container = ctx.inContainer('postgresql')
    const pki = ctx.secrets.tls
    // With TLS PostgreSQL also checks client certificates (ssl_ca_file): ejabberd logs in with one.
    const tls = pki ? {cert: `${etc}/imctl-server.crt`, key: `${etc}/imctl-server.key`, ca: `${etc}/imctl-ca.crt`} : undefined
    // With TLS the ejabberd hosts log in with their client certificate (`cert`), never a password: ejabberd 23.01's
    // driver prints its connection options, the password included, when PostgreSQL ends a connection.
    const certHosts = new Set(pki ? ctx.config.components.ejabberd.hosts.map((h) => ctx.host(h).address) : [])
    const vars = {
      cluster: ctx.config,
      host,
      container,
      port: container ? PORT : placement.port,
      ejabberdLogins: [...new Set(ctx.config.hosts.map((h) => h.address))].map((address) => ({address, method: certHosts.has(address) ? 'cert' : 'scram-sha-256'})),
      tls,
    }
    const unit = `postgresql@${release.version}-main`
    const base = {host: host.name, component: 'postgresql' as const}
    const tlsFiles: Resource[] = pki && tls
      ? (() => {
          const c = serverCertificate(pki, 'postgresql', host.name)
          const file = {...base, kind: 'file' as const, owner: 'postgres', group: 'postgres', notify: [unit], reloadable: true}
          // PostgreSQL refuses a key that others can read; a reload picks up both files.
          return [
            {...file, path: tls.cert, content: c.cert, mode: '644', secret: false},
            {...file, path: tls.key, content: c.key, mode: '600', secret: true},
            // The CAs whose client certificates it takes (every CA during a CA rotation).
            {...file, path: tls.ca, content: pki.caBundle, mode: '644', secret: false},
          ]
        })()
      : []
    return [
      {...base, kind: 'packages', packages: release.packages},
      ...tlsFiles,
      {
        ...base,
        kind: 'file',
        path: `${etc}/conf.d/50-imctl.conf`,
        content: ctx.render('postgresql/imctl.conf.hbs', vars),
        owner: 'postgres',
        group: 'postgres',
        mode: '644',
        secret: false,
        notify: [unit],
      },
      {
        ...base,
        kind: 'file',
        path: `${etc}/pg_hba.conf`,
        content: ctx.render('postgresql/pg_hba.conf.hbs', vars),
        owner: 'postgres',
        group: 'postgres',
        mode: '640',
        secret: false,
        notify: [unit],
      },
      {...base, kind: 'service', unit, enableUnit: 'postgresql', ...(pki ? {reload: systemdReload(unit, 'new certificate')} : {})},
      {...base, kind: 'pg-role', role: 'ejabberd', verifier: scramSha256Verifier(ctx.secrets.postgresql.ejabberd_password, 'ejabberd')},
      {...base, kind: 'pg-database', database: 'ejabberd', owner: 'ejabberd'},
    ]
  },
}
