import {isIPv6} from 'node:net'
import {artifactFiles, type PinnedPackage, type ReleaseManifest} from '../../config/manifest.js'
import type {ClusterConfig} from '../../config/model.js'
import type {ClusterSecrets} from '../../config/secrets.js'
import type {Resource} from '../../plan/resources.js'
import {shScript, type RemoteCommand} from '../../transport/command.js'
import type {Component} from '../types.js'

export const KAFKA_UNIT = 'imctl-kafka'
export const KAFKA_DATA_DIR = '/var/lib/kafka/data'
/** SCRAM user the brokers use among themselves. */
export const BROKER_USER = 'broker'
/** SCRAM user of imctl's own clients (health probes, backups of offsets). */
export const IMCTL_USER = 'imctl'

export function kafkaHome(version: string): string {
  return `/opt/imctl/kafka-${version}`
}

/** Docker mode: where the image keeps the jars (one version per image), and the ports inside the container. */
export const KAFKA_IMAGE_HOME = '/opt/imctl/kafka'
export const KAFKA_CONTAINER_PORTS = {client: 9092, controller: 9093}
/** Docker mode: the format's Java argument file (0600, it holds the SCRAM passwords), read by the entrypoint. */
export const KAFKA_FORMAT_ARGS = '/etc/kafka/imctl-format.args'

/** Node ids follow the order of `components.kafka.hosts` (1-based), so they never change while the list does not. */
export function kafkaNodes(config: ClusterConfig): {host: string; address: string; nodeId: number}[] {
  return (config.components.kafka?.hosts ?? []).map((name, i) => ({host: name, address: config.hosts.find((h) => h.name === name)!.address, nodeId: i + 1}))
}

/**
 * Where Kafka's own tools (quorum, features) run for a node and how they reach its controller:
 * on its host at its cluster address, or in its container on loopback (run them with `component: 'kafka'`).
 */
export function kafkaToolsFor(config: ClusterConfig, version: string, node: {host: string; address: string}): {home: string; address: string; controllerPort: number} {
  const placement = config.components.kafka
  if (!placement) throw new Error('bug: Kafka tools asked for on a cluster without Kafka')
  if (config.hosts.find((h) => h.name === node.host)?.engine) return {home: KAFKA_IMAGE_HOME, address: '127.0.0.1', controllerPort: KAFKA_CONTAINER_PORTS.controller}
  return {home: kafkaHome(version), address: node.address, controllerPort: placement.controllerPort}
}

/** `[::1]` for IPv6, as Kafka's listener and voter syntax wants it. */
export function hostForUrl(address: string): string {
  return isIPv6(address) ? `[${address}]` : address
}

/** The Debian packages Kafka needs on its hosts (Java), with the versions the release pins. */
export function kafkaHostPackages(manifest: ReleaseManifest): PinnedPackage[] {
  const java = manifest.hostPackages?.find((p) => p.name === 'openjdk-17-jre-headless')
  if (!java) throw new Error(`bug: release ${manifest.release} has Kafka but no openjdk-17-jre-headless in hostPackages`)
  return [java]
}

/**
 * The Java argument file of the storage format: StorageTool with the cluster id and the SCRAM
 * users the brokers need at first start. `java @FILE` reads it, so the passwords are never in
 * argv (where `ps` would show them); the main class is in the file, as the launcher expands no
 * argument file after it.
 */
export function formatArgs(home: string, clusterId: string, secrets: NonNullable<ClusterSecrets['kafka']>): string {
  const arg = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
  return `${[
    '-Dlog4j2.configurationFile=/etc/kafka/tools-log4j2.properties',
    '-cp',
    arg(`${home}/libs/*`),
    'kafka.tools.StorageTool',
    'format',
    '--cluster-id',
    arg(clusterId),
    '--config',
    '/etc/kafka/server.properties',
    '--add-scram',
    arg(`SCRAM-SHA-512=[name=${BROKER_USER},password=${secrets.broker_password}]`),
    '--add-scram',
    arg(`SCRAM-SHA-512=[name=${IMCTL_USER},password=${secrets.imctl_password}]`),
  ].join('\n')}\n`
}

/** Formats the node's storage once (SSH hosts): the argument file comes on stdin. */
export function formatStorage(home: string, clusterId: string, secrets: NonNullable<ClusterSecrets['kafka']>): {command: RemoteCommand} {
  return {
    command: {
      argv: shScript('f=$(mktemp) || exit 1; cat > "$f" && /usr/bin/java @"$f"; rc=$?; rm -f "$f"; exit $rc'),
      stdin: formatArgs(home, clusterId, secrets),
      asUser: 'kafka',
      description: 'format the Kafka storage (cluster id, SCRAM users for brokers and imctl)',
    },
  }
}

/** Succeeds once the node accepts connections on its client listener (after a start the broker first joins the quorum). */
export function waitForListener(address: string, port: number, seconds = 120): RemoteCommand {
  return {
    argv: shScript('for i in $(seq 1 "$3"); do ss -Hltn "sport = :$2" | grep -q . && exit 0; sleep 1; done; echo "nothing listens on $1:$2 after $3 s; see journalctl -u imctl-kafka" >&2; exit 1', [address, String(port), String(seconds)]),
    description: `wait until Kafka listens on ${address}:${port}`,
  }
}

export const kafka: Component = {
  name: 'kafka',
  dependsOn: [],
  hosts: (config) => config.components.kafka?.hosts ?? [],
  // One node (validation refuses several on engines): client and controller listeners published.
  container: {
    ports: [
      {containerPort: KAFKA_CONTAINER_PORTS.client, publish: (config) => config.components.kafka?.port ?? null},
      {containerPort: KAFKA_CONTAINER_PORTS.controller, publish: (config) => config.components.kafka?.controllerPort ?? null},
    ],
    volumes: [{name: 'data', path: KAFKA_DATA_DIR}],
    healthcheck: ['/usr/local/bin/imctl-healthcheck'],
    ready: {argv: ['/usr/local/bin/imctl-healthcheck'], description: 'wait until Kafka accepts connections on its client listener'},
  },
  resources(ctx) {
    const placement = ctx.config.components.kafka
    if (!placement) return []
    const secrets = ctx.secrets.kafka
    if (!secrets) throw new Error('bug: Kafka is configured but its secrets were not loaded')
    const version = ctx.manifest.artifacts?.kafka?.version
    if (!version) throw new Error(`bug: release ${ctx.manifest.release} has no Kafka artifact`)
    const container = ctx.inContainer('kafka')
    const home = container ? KAFKA_IMAGE_HOME : kafkaHome(version)
    const files = artifactFiles(ctx.manifest, 'kafka')
    const nodes = kafkaNodes(ctx.config)
    // In its container the node reaches its own controller on loopback.
    const voters = container
      ? `1@127.0.0.1:${KAFKA_CONTAINER_PORTS.controller}`
      : nodes.map((n) => `${n.nodeId}@${hostForUrl(n.address)}:${placement.controllerPort}`).join(',')
    const replicationFactor = Math.min(3, nodes.length)
    const minInsync = nodes.length >= 3 ? 2 : 1
    return nodes.flatMap((n): Resource[] => {
      const host = ctx.host(n.host)
      const base = {host: host.name, component: 'kafka' as const}
      const vars = {
        cluster: ctx.config,
        version,
        home,
        nodeId: n.nodeId,
        nodes: nodes.length,
        voters,
        container,
        listenHost: container ? '0.0.0.0' : hostForUrl(host.address),
        port: container ? KAFKA_CONTAINER_PORTS.client : placement.port,
        controllerPort: container ? KAFKA_CONTAINER_PORTS.controller : placement.controllerPort,
        // Clients anywhere reach the node at its host's address and the (published) port.
        advertisedHost: hostForUrl(host.address),
        advertisedPort: placement.port,
        dataDir: KAFKA_DATA_DIR,
        replicationFactor,
        minInsync,
        heap: '512m',
        secrets: ctx.secrets,
      }
      const conf = (name: string, path: string, mode: string, secret: boolean, notify = [KAFKA_UNIT]) => ({
        ...base,
        kind: 'file' as const,
        path,
        content: ctx.render(`kafka/${name}.hbs`, vars),
        owner: 'root',
        group: 'kafka',
        mode,
        secret,
        notify,
      })
      const config = [
        conf('server.properties', '/etc/kafka/server.properties', '640', true),
        conf('log4j2.properties', '/etc/kafka/log4j2.properties', '644', false),
        conf('tools-log4j2.properties', '/etc/kafka/tools-log4j2.properties', '644', false, []),
      ]
      if (container) {
        // The image has Java, the jars, the account and the directories; its entrypoint formats
        // the storage once, from this argument file, when the volume has no meta.properties yet.
        return [
          {...base, kind: 'packages', packages: kafkaHostPackages(ctx.manifest)},
          {...base, kind: 'artifact', name: 'kafka', version, dir: home, files},
          ...config,
          {...base, kind: 'file', path: KAFKA_FORMAT_ARGS, content: formatArgs(home, secrets.cluster_id, secrets), owner: 'kafka', group: 'kafka', mode: '600', secret: true, notify: []},
          {...base, kind: 'service', unit: KAFKA_UNIT},
        ]
      }
      return [
        {...base, kind: 'packages', packages: kafkaHostPackages(ctx.manifest)},
        {...base, kind: 'system-user', user: 'kafka', home: '/var/lib/kafka'},
        {...base, kind: 'artifact', name: 'kafka', version, dir: home, files},
        {...base, kind: 'directory', path: '/var/lib/kafka', owner: 'kafka', group: 'kafka', mode: '750'},
        {...base, kind: 'directory', path: KAFKA_DATA_DIR, owner: 'kafka', group: 'kafka', mode: '750'},
        {...base, kind: 'directory', path: '/etc/kafka', owner: 'root', group: 'kafka', mode: '750'},
        ...config,
        {...conf('imctl-kafka.service', `/etc/systemd/system/${KAFKA_UNIT}.service`, '644', false), group: 'root', daemonReload: true},
        {
          ...base,
          kind: 'once',
          name: 'kafka-format',
          // Written by the format; a formatted node is never formatted again (that would erase its data).
          marker: `${KAFKA_DATA_DIR}/meta.properties`,
          what: `format Kafka's storage in ${KAFKA_DATA_DIR} (node ${n.nodeId})`,
          command: formatStorage(home, secrets.cluster_id, secrets).command,
          after: [],
        },
        {...base, kind: 'service', unit: KAFKA_UNIT, ready: waitForListener(host.address, placement.port)},
      ]
    })
  },
}
