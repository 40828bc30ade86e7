import type {ClusterConfig, HostConfig} from '../../config/model.js'
import {systemdReload, type Resource} from '../../plan/resources.js'
import type {Component, ComponentContext} from '../types.js'

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
export const KEEPALIVED_CONF = '/etc/keepalived/keepalived.conf'

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
        virtualIp: hp.virtualIp?.address,
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
        ...keepalivedResources(ctx, host),
      ]
    })
  },
}

/**
 * keepalived on a HAProxy host when cluster.yaml has `haproxy.virtualIp` (its package, config and service): one VRRP instance holding the virtual IP. The first
 * host has the higher priority, so it holds the address whenever its HAProxy runs; a HAProxy that
 * is not active puts the instance in FAULT, which gives the address up to the other host. VRRP
 * goes unicast between the hosts' cluster addresses, so it needs no multicast on the network.
 * No VRRP authentication: VRRPv2's password travels in clear text and VRRPv3 dropped it; the
 * firewall admits VRRP from the other HAProxy hosts only.
 */
function keepalivedResources(ctx: ComponentContext, host: HostConfig): Resource[] {
  const config = ctx.config
  const hp = config.components.haproxy!
  const vip = hp.virtualIp
  if (!vip) return []
  const pkg = ctx.manifest.hostPackages?.find((p) => p.name === 'keepalived')
  if (!pkg) throw new Error('bug: the release has no keepalived in hostPackages, which `haproxy.virtualIp` needs')
  const base = {host: host.name, component: 'haproxy' as const}
  const all = hp.hosts.map((n) => config.hosts.find((h) => h.name === n)!)
  const peers = all.filter((h) => h.name !== host.name)
  return [
    {...base, kind: 'packages', packages: [pkg]},
    {
      ...base,
      kind: 'file',
      path: KEEPALIVED_CONF,
      content: (() => {
        const rank = hp.hosts.indexOf(host.name)
        return ctx.render('haproxy/keepalived.conf.hbs', {cluster: config, vip, host, peers, state: rank === 0 ? 'MASTER' : 'BACKUP', priority: 150 - 10 * rank})
      })(),
      owner: 'root',
      group: 'root',
      mode: '600',
      secret: false,
      notify: ['keepalived'],
      // keepalived re-reads its config on SIGHUP and keeps the address where it is meanwhile.
      reloadable: true,
    },
    {...base, kind: 'service', unit: 'keepalived', reload: systemdReload('keepalived', 'keepalived re-reads its config and keeps the virtual IP')},
  ]
}
