import {createHash} from 'node:crypto'
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {COMPONENTS, component} from '../components/registry.js'
import {containerRuntime, type ComponentContext, type Endpoint} from '../components/types.js'
import type {ClusterConfig, ComponentName, HostConfig} from '../config/model.js'
import {hostByName} from '../config/model.js'
import type {ReleaseManifest} from '../config/manifest.js'
import {placeholderSecrets, type ClusterSecrets} from '../config/secrets.js'
import {UserError} from '../errors.js'
import {templatesDir} from '../paths.js'
import {createRenderer, type TemplateRenderer} from '../render/templates.js'
import {engineNames} from '../transport/engine-names.js'
import {aptSuiteFiles} from './apt-suites.js'
import {configHash, containerSpec} from './container-spec.js'
import {firewallResources} from './firewall.js'
import type {ContainerResource, FileResource, ImageArtifact, ImageResource, PackagesResource, Resource} from './resources.js'

/** The (first) host a component is placed on. */
export function placementHost(config: ClusterConfig, c: ComponentName): string {
  const h = component(c).hosts(config)[0]
  if (!h) throw new Error(`bug: ${c} is not placed on any host`)
  return h
}

/** Where `from` reaches `target`: on one engine by network alias and container port, else by address and configured port. */
export function endpointFor(config: ClusterConfig, target: ComponentName, from: ComponentName): Endpoint {
  const t = hostByName(config, placementHost(config, target))
  const f = hostByName(config, placementHost(config, from))
  const port = containerRuntime(component(target)).ports[0]!
  if (t.engine && t.name === f.name) return {address: target, port: port.containerPort}
  return {address: t.address, port: port.publish(config) ?? port.containerPort}
}

/**
 * Where clients on `from`'s host reach the PostgreSQL primary: in Patroni mode the HAProxy on
 * that host's loopback (it follows the primary), otherwise PostgreSQL's own host and port.
 */
export function primaryEndpoint(config: ClusterConfig, from: ComponentName): Endpoint {
  const patroni = config.components.postgresql.patroni
  if (patroni) return {address: '127.0.0.1', port: patroni.proxyPort}
  return endpointFor(config, 'postgresql', from)
}

export function componentContext(config: ClusterConfig, manifest: ReleaseManifest, secrets: ClusterSecrets, render: TemplateRenderer): ComponentContext {
  return {
    config,
    manifest,
    secrets,
    render,
    host: (n) => hostByName(config, n),
    inContainer: (c) => Boolean(hostByName(config, placementHost(config, c)).engine),
    endpoint: (target, from) => endpointFor(config, target, from),
    primaryEndpoint: (from) => primaryEndpoint(config, from),
  }
}

/**
 * Every resource of the cluster. On SSH hosts packages are merged so each host
 * runs apt once; on engine hosts a component's packages, files and service
 * become its image, its container and the container's running state.
 */
/** Where an offline bundle's Debian repository goes on each host (kept between bundles, so a new one uploads only what changed). */
export const OFFLINE_REPO_DIR = '/var/cache/imctl/debs'

/** An offline install: the bundle's Debian repository, uploaded to each host that installs packages. */
export interface OfflineSource {
  /** Identifies the bundle (its sha256 prefix). */
  id: string
  debs: {path: string; sha256: string}[]
}

export function desiredState(
  config: ClusterConfig,
  manifest: ReleaseManifest,
  secrets: ClusterSecrets,
  render: TemplateRenderer = createRenderer(),
  offline?: OfflineSource,
): Resource[] {
  const ctx = componentContext(config, manifest, secrets, render)
  const all: Resource[] = []
  const networks = new Set<string>()
  for (const c of COMPONENTS) {
    if (!c.hosts(config).length) continue // an optional component this cluster does not have
    const resources = c.resources(ctx)
    if (!ctx.inContainer(c.name)) {
      all.push(...resources)
      continue
    }
    const host = hostByName(config, placementHost(config, c.name))
    if (!networks.has(host.name)) {
      networks.add(host.name)
      all.push({kind: 'network', host: host.name, component: c.name, name: engineNames.network(config.name)})
    }
    all.push(...containerize(config, manifest, c.name, resources))
  }
  all.push(...firewallResources(config, manifest, all))
  const merged = new Map<string, PackagesResource>()
  const rest: Resource[] = []
  for (const r of all) {
    if (r.kind !== 'packages') {
      rest.push(r)
      continue
    }
    const prev = merged.get(r.host)
    const owners = Object.fromEntries(r.packages.map((p) => [p.name, r.component]))
    if (prev) {
      const added = r.packages.filter((p) => !prev.packages.some((q) => q.name === p.name))
      prev.packages = [...prev.packages, ...added]
      prev.owners = {...Object.fromEntries(added.map((p) => [p.name, r.component])), ...prev.owners}
    } else merged.set(r.host, {...r, packages: [...r.packages], owners})
  }
  // Packages from a suite beyond the OS's own: its sources entry and pin, written before apt runs.
  for (const p of offline ? [] : merged.values()) {
    const fromSuite = p.packages.find((x) => x.suite)
    if (fromSuite) rest.push(...aptSuiteFiles(config.name, manifest, p.host, p.owners?.[fromSuite.name] ?? p.component, p.packages))
  }
  // Offline, engines load the images the bundle carries instead of building them from a mirror.
  if (offline) for (const r of rest) if (r.kind === 'image') r.fromBundle = true
  const repos: Resource[] = offline
    ? [...merged.values()].map((p) => {
        p.offlineRepo = OFFLINE_REPO_DIR
        return {kind: 'artifact' as const, host: p.host, component: p.component, name: 'debs', version: offline.id, dir: OFFLINE_REPO_DIR, files: offline.debs}
      })
    : []
  return [...repos, ...merged.values(), ...rest]
}

/**
 * Every image a release can run on an engine, as install computes them (same tags): from
 * a stand-in cluster with each component that has an image recipe on one engine host.
 */
export function releaseImages(manifest: ReleaseManifest): ImageResource[] {
  const host: HostConfig = {name: 'engine', address: '192.0.2.1', port: 22, user: 'root', sudo: false, auth: {kind: 'agent'}, engine: {kind: 'socket', socketPath: '/nonexistent'}}
  const has = (c: ComponentName) => Boolean(imageRecipe(manifest, c))
  // Components without a recipe go on an SSH stand-in: they have no image to carry.
  const ssh: HostConfig = {name: 'ssh', address: '192.0.2.2', port: 22, user: 'root', sudo: false, auth: {kind: 'agent'}}
  const on = (c: ComponentName) => (has(c) ? 'engine' : 'ssh')
  const config: ClusterConfig = {
    file: '/nonexistent/cluster.yaml',
    name: 'bundle',
    domain: 'bundle.invalid',
    release: manifest.release,
    secretsFile: '/nonexistent/secrets.yaml',
    knownHostsFile: '/nonexistent/known_hosts',
    hosts: [host, ssh],
    components: {
      postgresql: {host: on('postgresql'), port: 5432},
      redis: {host: on('redis'), port: 6379},
      ejabberd: {host: on('ejabberd'), ports: {c2s: 5222, http: 5280, mqtt: 1883, api: 5281}},
      ...(has('kafka') ? {kafka: {hosts: ['engine'], port: 9092, controllerPort: 9093}} : {}),
      ...(has('minio') ? {minio: {hosts: ['engine'], drives: ['/data'], port: 9000, consolePort: 9001, buckets: []}} : {}),
    },
  }
  return desiredState(config, manifest, placeholderSecrets()).filter((r): r is ImageResource => r.kind === 'image')
}

/** Kinds that change an SSH host's system: on an engine they are the image's and the entrypoint's job. */
const SSH_ONLY_KINDS: ReadonlySet<Resource['kind']> = new Set(['system-user', 'directory', 'once', 'mount'])

/** The image recipe of a component: its manifest entry's, or for one shipped as an artifact (Kafka, MinIO), the artifact's. */
function imageRecipe(manifest: ReleaseManifest, name: ComponentName): string | undefined {
  return manifest.components[name]?.image?.build ?? manifest.artifacts?.[name]?.image?.build
}

function containerize(config: ClusterConfig, manifest: ReleaseManifest, name: ComponentName, resources: Resource[]): Resource[] {
  const host = hostByName(config, placementHost(config, name))
  const runtime = containerRuntime(component(name))
  const files = resources.filter((r): r is FileResource => r.kind === 'file')
  // The image carries the component's packages and its artifacts' files.
  const packages = resources.flatMap((r) => (r.kind === 'packages' ? r.packages : []))
  const artifacts = resources.flatMap((r): ImageArtifact[] => (r.kind === 'artifact' ? [{name: r.name, version: r.version, files: r.files}] : []))
  const out: Resource[] = []
  let image = ''
  for (const r of resources) {
    if (SSH_ONLY_KINDS.has(r.kind)) throw new Error(`bug: ${name} asks for a ${r.kind} on engine host ${host.name}; on an engine its image or entrypoint does that`)
    if (r.kind === 'packages' || r.kind === 'artifact') {
      if (image) continue
      const recipe = imageRecipe(manifest, name)
      if (!recipe) throw new UserError(`release ${manifest.release} names no image for ${name}`, [`Place ${name} on an SSH host, or use a release whose manifest has \`image: {build: ...}\` for it.`])
      const contextDir = join(templatesDir, recipe)
      const contextFiles = readdirSync(contextDir).sort()
      const h = createHash('sha256').update(JSON.stringify(packages))
      for (const f of contextFiles) h.update(`\0${f}\0`).update(readFileSync(join(contextDir, f)))
      // Only when there are any, so the tags of images without artifacts stay what they were.
      if (artifacts.length) h.update(JSON.stringify(artifacts.map((a) => [a.name, a.version, a.files.map((f) => [f.path, f.sha256, f.mode ?? ''])])))
      image = `localhost/imctl-${name}:${h.digest('hex').slice(0, 12)}`
      out.push({kind: 'image', host: host.name, component: name, tag: image, contextDir, contextFiles, packages, ...(artifacts.length ? {artifacts} : {})})
    } else if (r.kind === 'file') {
      if (r !== files[0]) continue
      if (!image) throw new Error(`bug: ${name} lists a file before its packages or artifacts, so its container would have no image`)
      const probe = containerSpec({config, host, component: name, image, runtime, configHash: ''})
      const hash = configHash(image, files, probe)
      const container: ContainerResource = {
        kind: 'container',
        host: host.name,
        component: name,
        name: probe.name,
        image,
        files,
        spec: containerSpec({config, host, component: name, image, runtime, configHash: hash}),
        configHash: hash,
      }
      out.push(container)
    } else if (r.kind === 'service') {
      out.push({kind: 'container-running', host: host.name, component: name, name: engineNames.container(config.name, name)})
    } else out.push(r)
  }
  return out
}

/** Hosts that have at least one resource, in cluster.yaml order. */
export function hostsInUse(config: ClusterConfig, resources: Resource[]): string[] {
  const used = new Set(resources.flatMap((r) => (r.kind === 'sql-schema' ? [r.host, r.dbHost] : [r.host])))
  return config.hosts.map((h) => h.name).filter((n) => used.has(n))
}
