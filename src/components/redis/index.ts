import type {Component} from '../types.js'

export const redis: Component = {
  name: 'redis',
  dependsOn: [],
  hosts: (config) => [config.components.redis.host],
  resources(ctx) {
    const placement = ctx.config.components.redis
    const host = ctx.host(placement.host)
    const base = {host: host.name, component: 'redis' as const}
    return [
      {...base, kind: 'packages', packages: ctx.manifest.components.redis!.packages},
      {
        ...base,
        kind: 'file',
        path: '/etc/redis/redis.conf',
        content: ctx.render('redis/redis.conf.hbs', {cluster: ctx.config, host, port: placement.port, secrets: ctx.secrets}),
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
