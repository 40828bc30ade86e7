import {isIPv6} from 'node:net'
import {IMCTL_BUCKETS} from '../../config/load.js'
import {artifactFiles} from '../../config/manifest.js'
import type {ClusterConfig, MinioPlacement} from '../../config/model.js'
import type {ClusterSecrets} from '../../config/secrets.js'
import type {McClient, Resource} from '../../plan/resources.js'
import type {Component} from '../types.js'
import {bucketPolicy, waitNodeServes} from './mc.js'

export const MINIO_UNIT = 'imctl-minio'
/** The service account MinIO runs as; it owns the drives. */
export const MINIO_USER = 'minio-user'
export const MINIO_HOME = '/var/lib/minio'
export const ROOT_USER = 'imctl-root'
export const MINIO_ENV_FILE = '/etc/default/imctl-minio'
export const MC_CONFIG_DIR = '/etc/imctl/minio-mc'
export const MC_ALIAS = 'imctl'

type MinioSecretKey = Exclude<keyof NonNullable<ClusterSecrets['minio']>, 'root_password'>

/** imctl's own access keys: each reads, writes, lists and deletes in its own bucket and nowhere else. */
export const IMCTL_KEYS: readonly {user: string; bucket: string; secret: MinioSecretKey}[] = [
  {user: 'imctl-backup', bucket: 'imctl-backups', secret: 'backup_secret'},
  {user: 'imctl-archive', bucket: 'imctl-archive', secret: 'archive_secret'},
  {user: 'imctl-health', bucket: 'imctl-health', secret: 'health_secret'},
]

export function minioHome(version: string): string {
  return `/opt/imctl/minio-${version}`
}

/** Docker mode: where the image keeps minio and mc, and the ports inside the container. */
export const MINIO_IMAGE_HOME = '/opt/imctl/minio'
export const MINIO_CONTAINER_PORTS = {api: 9000, console: 9001}

/** Docker mode: one volume per drive, mounted at the drive's path (`data` for a lone drive, else `data1`, `data2`, ...). */
export function minioDriveVolumes(config: ClusterConfig): {name: string; path: string}[] {
  const drives = config.components.minio?.drives ?? []
  return drives.map((path, i) => ({name: drives.length === 1 ? 'data' : `data${i + 1}`, path}))
}

/** An address as it goes into a URL or host:port (`[::1]` for IPv6). */
export function urlHost(address: string): string {
  return isIPv6(address) ? `[${address}]` : address
}

/** MinIO's hosts in the order of `components.minio.hosts`, which is also the order of the endpoint list. */
export function minioNodes(config: ClusterConfig): {host: string; address: string}[] {
  return (config.components.minio?.hosts ?? []).map((name) => ({host: name, address: config.hosts.find((h) => h.name === name)!.address}))
}

/**
 * MINIO_VOLUMES, the same on every node: one host's drive paths as they are, or
 * `http://ADDRESS:PORT/DRIVE` for every host and drive when there are several hosts.
 */
export function minioVolumes(placement: MinioPlacement, nodes: {address: string}[]): string {
  if (nodes.length === 1) return placement.drives.join(' ')
  return nodes.flatMap((n) => placement.drives.map((d) => `http://${urlHost(n.address)}:${placement.port}${d}`)).join(' ')
}

/** The mc client on the first MinIO host (in its container on an engine), through which imctl manages buckets and users. */
export function minioAdmin(config: ClusterConfig, version: string, inContainer = false): McClient {
  const [first] = minioNodes(config)
  if (!first || !config.components.minio) throw new Error('bug: MinIO has no hosts')
  if (inContainer) return {bin: `${MINIO_IMAGE_HOME}/mc`, configDir: MC_CONFIG_DIR, alias: MC_ALIAS, url: `http://127.0.0.1:${MINIO_CONTAINER_PORTS.api}`}
  return {bin: `${minioHome(version)}/mc`, configDir: MC_CONFIG_DIR, alias: MC_ALIAS, url: `http://${urlHost(first.address)}:${config.components.minio.port}`}
}

/** mc's own alias config (format version 10), holding the root credentials; mc leaves a v10 file as it is. */
export function mcConfig(url: string, rootPassword: string): string {
  return `${JSON.stringify({version: '10', aliases: {[MC_ALIAS]: {url, accessKey: ROOT_USER, secretKey: rootPassword, api: 's3v4', path: 'auto'}}}, null, 2)}\n`
}

export const minio: Component = {
  name: 'minio',
  dependsOn: [],
  hosts: (config) => config.components.minio?.hosts ?? [],
  // One node with its drives (validation refuses several nodes on engines): S3 API and console published.
  container: {
    ports: [
      {containerPort: MINIO_CONTAINER_PORTS.api, publish: (config) => config.components.minio?.port ?? null},
      {containerPort: MINIO_CONTAINER_PORTS.console, publish: (config) => config.components.minio?.consolePort ?? null},
    ],
    volumes: minioDriveVolumes,
    healthcheck: ['/usr/local/bin/imctl-healthcheck'],
    // Within the engine's start timeout: a lone node with its own drives serves in seconds.
    ready: waitNodeServes(`${MINIO_IMAGE_HOME}/mc`, `http://127.0.0.1:${MINIO_CONTAINER_PORTS.api}`, 120),
  },
  resources(ctx) {
    const placement = ctx.config.components.minio
    if (!placement) return []
    const secrets = ctx.secrets.minio
    if (!secrets) throw new Error('bug: MinIO is configured but its secrets were not loaded')
    const version = ctx.manifest.artifacts?.minio?.version
    if (!version) throw new Error(`bug: release ${ctx.manifest.release} has no MinIO artifact`)
    const container = ctx.inContainer('minio')
    const home = container ? MINIO_IMAGE_HOME : minioHome(version)
    const files = artifactFiles(ctx.manifest, 'minio').map((f) => ({...f, mode: '755'}))
    const nodes = minioNodes(ctx.config)
    const drives = nodes.length * placement.drives.length
    const volumes = minioVolumes(placement, nodes)
    const admin = minioAdmin(ctx.config, version, container)

    return nodes.flatMap((n, i): Resource[] => {
      const host = ctx.host(n.host)
      const base = {host: host.name, component: 'minio' as const}
      const vars = {cluster: ctx.config, home, container, user: MINIO_USER, rootUser: ROOT_USER, listen: urlHost(host.address), port: placement.port, consolePort: placement.consolePort, volumes, drives, secrets: ctx.secrets}
      const env = {
        ...base,
        kind: 'file' as const,
        path: MINIO_ENV_FILE,
        content: ctx.render('minio/imctl-minio.env.hbs', vars),
        // In the container MinIO reads it itself (as its user); on a host systemd reads it as root.
        owner: container ? MINIO_USER : 'root',
        group: container ? MINIO_USER : 'root',
        mode: '600',
        secret: true,
        notify: [MINIO_UNIT],
      }
      const admins: Resource[] = [
        {...base, kind: 'file', path: `${MC_CONFIG_DIR}/config.json`, content: mcConfig(admin.url, secrets.root_password), owner: 'root', group: 'root', mode: '600', secret: true, notify: []},
        ...[...IMCTL_BUCKETS, ...placement.buckets].map((bucket): Resource => ({...base, kind: 'minio-bucket', bucket, mc: admin})),
        ...IMCTL_KEYS.map(
          (k): Resource => ({
            ...base,
            kind: 'minio-user',
            user: k.user,
            secret: secrets[k.secret],
            policy: k.user,
            policyDocument: bucketPolicy(k.bucket),
            rights: `read, write, list and delete in ${k.bucket} only`,
            mc: admin,
          }),
        ),
      ]
      if (container) {
        // The image has the binaries, the account and mc's config folder; each drive is a volume
        // of its own (a filesystem apart from the container's root, which MinIO's drive check wants).
        return [{...base, kind: 'artifact', name: 'minio', version, dir: home, files}, env, {...base, kind: 'service', unit: MINIO_UNIT}, ...admins]
      }
      const node: Resource[] = [
        {...base, kind: 'system-user', user: MINIO_USER, home: MINIO_HOME},
        // With several drives MinIO erasure-codes over them and refuses any on the root filesystem.
        ...(drives > 1
          ? placement.drives.map((path): Resource => ({
              ...base,
              kind: 'mount',
              path,
              why: `with ${drives} drives in all, MinIO refuses drives on the root filesystem and would never become ready, and one disk per drive is what lets it survive a lost disk (XFS is what MinIO recommends)`,
            }))
          : []),
        {...base, kind: 'artifact', name: 'minio', version, dir: home, files},
        {...base, kind: 'directory', path: MINIO_HOME, owner: MINIO_USER, group: MINIO_USER, mode: '750'},
        ...placement.drives.map((path): Resource => ({...base, kind: 'directory', path, owner: MINIO_USER, group: MINIO_USER, mode: '750'})),
        env,
        {
          ...base,
          kind: 'file',
          path: `/etc/systemd/system/${MINIO_UNIT}.service`,
          content: ctx.render('minio/imctl-minio.service.hbs', vars),
          owner: 'root',
          group: 'root',
          mode: '644',
          secret: false,
          notify: [MINIO_UNIT],
          daemonReload: true,
        },
        // All nodes start in parallel: a node's start is done once it serves with the others (write quorum).
        {...base, kind: 'service', unit: MINIO_UNIT, ready: waitNodeServes(`${home}/mc`, `http://${urlHost(host.address)}:${placement.port}`)},
      ]
      if (i > 0) return node
      // Buckets and keys are cluster-wide: managed once, through mc on the first host.
      return [...node, {...base, kind: 'directory', path: MC_CONFIG_DIR, owner: 'root', group: 'root', mode: '700'}, ...admins]
    })
  },
}
