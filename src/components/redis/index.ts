import type {Component} from '../types.js'
import type {ClusterConfig} from '../../config/model.js'
import type {Resource} from '../../plan/resources.js'
import {serverCertificate} from '../../pki/pki.js'
import {shScript} from '../../transport/command.js'

/** redis-cli's TLS options on the Redis host ('' without `tls:`), for scripts that put `$2` after the port. */
export function redisCliTls(config: ClusterConfig): string {
  return config.tls ? `--tls --cacert ${REDIS_TLS_FILES.ca}` : ''
}

/** Where Redis's TLS files live (with `tls:`); redis-cli on the host takes the CA from here too. */
export const REDIS_TLS_FILES = {cert: '/etc/redis/imctl-server.crt', key: '/etc/redis/imctl-server.key', ca: '/etc/redis/imctl-ca.crt'}

const PORT = 6379

export const redis: Component = {
  name: 'redis',
  dependsOn: [],
  hosts: (config) => [config.components.redis.host],
  container: {
    ports: [{containerPort: PORT, publish: (config) => config.components.redis.port}],
    volumes: [{name: 'data', path: '/var/lib/redis'}],
    healthcheck: ['/usr/local/bin/imctl-healthcheck'],
    ready: {argv: ['/usr/local/bin/imctl-healthcheck'], description: 'wait until Redis answers'},
  },
  resources(ctx) {
    const placement = ctx.config.components.redis
    const host = ctx.host(placement.host)
    const container = ctx.inContainer('redis')
    const base = {host: host.name, component: 'redis' as const}
    const port = container ? PORT : placement.port
    const pki = ctx.secrets.tls
    const tls = pki ? REDIS_TLS_FILES : undefined
    const tlsFiles: Resource[] = pki
      ? (() => {
          const own = serverCertificate(pki, 'redis', host.name)
          const file = {...base, kind: 'file' as const, owner: 'redis', group: 'redis', notify: ['redis-server'], reloadable: true}
          return [
            {...file, path: REDIS_TLS_FILES.cert, content: own.cert, mode: '644', secret: false},
            {...file, path: REDIS_TLS_FILES.key, content: own.key, mode: '600', secret: true},
            // Redis wants a CA even when clients show no certificate; redis-cli on the host verifies with it.
            {...file, path: REDIS_TLS_FILES.ca, content: pki.caBundle, mode: '644', secret: false},
          ]
        })()
      : []
    // CONFIG SET of the TLS files (even to the same paths) makes Redis load them again; clients stay connected.
    const reload = pki
      ? [{
          argv: shScript(
            'IFS= read -r REDISCLI_AUTH && export REDISCLI_AUTH && out=$(redis-cli --no-auth-warning --tls --cacert "$1" -h 127.0.0.1 -p "$2" CONFIG SET tls-cert-file "$3" tls-key-file "$4" tls-ca-cert-file "$1") && [ "$out" = OK ] || { echo "CONFIG SET: $out" >&2; exit 1; }',
            [REDIS_TLS_FILES.ca, String(port), REDIS_TLS_FILES.cert, REDIS_TLS_FILES.key],
          ),
          stdin: `${ctx.secrets.redis.password}\n`,
          root: true,
          description: 'make Redis load its certificate again (CONFIG SET)',
        }]
      : undefined
    return [
      {...base, kind: 'packages', packages: ctx.manifest.components.redis!.packages},
      ...tlsFiles,
      {
        ...base,
        kind: 'file',
        path: '/etc/redis/redis.conf',
        content: ctx.render('redis/redis.conf.hbs', {cluster: ctx.config, host, container, port, secrets: ctx.secrets, tls}),
        owner: 'redis',
        group: 'redis',
        mode: '640',
        secret: true,
        notify: ['redis-server'],
      },
      {...base, kind: 'service', unit: 'redis-server', ...(reload ? {reload} : {})},
    ]
  },
}
