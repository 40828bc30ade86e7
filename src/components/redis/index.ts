import type {Component} from '../types.js'

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
    return [
      {...base, kind: 'packages', packages: ctx.manifest.components.redis!.packages},
      {
        ...base,
        kind: 'file',
        path: '/etc/redis/redis.conf',
        content: ctx.render('redis/redis.conf.hbs', {cluster: ctx.config, host, container, port: container ? PORT : placement.port, secrets: ctx.secrets}),
        owner: 'redis',
        group: 'redis',
        mode: '640',
        secret: true,
        notify: ['redis-server'],
      },
      {...base, kind: 'service', unit: 'redis-server'},
    ]
  },
}
