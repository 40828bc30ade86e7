import type {ClusterConfig} from '../../config/model.js'
import type {Component} from '../types.js'

/** The HAProxy frontends and the ejabberd listener each passes to (TCP passthrough). */
export function haproxyListeners(config: ClusterConfig): {name: 'xmpp' | 'http' | 'mqtt'; port: number; ejabberdPort: number; what: string}[] {
  const hp = config.components.haproxy
  if (!hp) return []
  const im = config.components.ejabberd.ports
  return [
    {name: 'xmpp', port: hp.ports.c2s, ejabberdPort: im.c2s, what: 'XMPP clients (c2s, STARTTLS passes through)'},
    {name: 'http', port: hp.ports.http, ejabberdPort: im.http, what: 'WebSocket (/ws) and HTTP'},
    {name: 'mqtt', port: hp.ports.mqtt, ejabberdPort: im.mqtt, what: 'MQTT'},
  ]
}

const DROP_IN_DIR = '/etc/systemd/system/haproxy.service.d'

/** HAProxy from Debian in front of every ejabberd node, checking each node's listeners. */
export const haproxy: Component = {
  name: 'haproxy',
  dependsOn: [],
  hosts: (config) => config.components.haproxy?.hosts ?? [],
  resources(ctx) {
    const hp = ctx.config.components.haproxy
    if (!hp) return []
    const nodes = ctx.config.components.ejabberd.hosts.map((n) => ctx.host(n))
    const release = ctx.manifest.components.haproxy
    if (!release) throw new Error(`bug: release ${ctx.manifest.release} has no haproxy packages but validation let haproxy through`)
    return hp.hosts.flatMap((name) => {
      const host = ctx.host(name)
      const base = {host: host.name, component: 'haproxy' as const}
      const listeners = haproxyListeners(ctx.config).map((l) => ({
        ...l,
        address: host.address,
        servers: nodes.map((n) => ({name: n.name, address: n.address, port: l.ejabberdPort})),
      }))
      return [
        {...base, kind: 'packages' as const, packages: release.packages},
        {
          ...base,
          kind: 'file' as const,
          path: '/etc/haproxy/haproxy.cfg',
          content: ctx.render('haproxy/haproxy.cfg.hbs', {cluster: ctx.config, host, ports: hp.ports, listeners}),
          owner: 'root',
          group: 'root',
          mode: '644',
          secret: false,
          notify: ['haproxy'],
        },
        {...base, kind: 'directory' as const, path: DROP_IN_DIR, owner: 'root', group: 'root', mode: '755'},
        {
          ...base,
          kind: 'file' as const,
          path: `${DROP_IN_DIR}/imctl.conf`,
          // Debian's unit bind-mounts /dev/log into the chroot for logging; imctl's config logs to
          // the journal through stdout instead, and that mount fails where /dev/log is a link to a socket
          // that cannot be bound (seen on container hosts: exit 226/NAMESPACE).
          content: `# Managed by imctl for cluster ${ctx.config.name}: HAProxy logs to the journal (stdout), not /dev/log.\n[Service]\nBindReadOnlyPaths=\n`,
          owner: 'root',
          group: 'root',
          mode: '644',
          secret: false,
          notify: ['haproxy'],
          daemonReload: true,
        },
        {...base, kind: 'service' as const, unit: 'haproxy'},
      ]
    })
  },
}
