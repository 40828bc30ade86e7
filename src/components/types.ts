import type {ClusterConfig, ComponentName, HostConfig} from '../config/model.js'
import type {ReleaseManifest} from '../config/manifest.js'
import type {ClusterSecrets} from '../config/secrets.js'
import type {Resource} from '../plan/resources.js'
import type {TemplateRenderer} from '../render/templates.js'
import type {RemoteCommand} from '../transport/command.js'

export interface Endpoint {
  address: string
  port: number
}

export interface ComponentContext {
  config: ClusterConfig
  manifest: ReleaseManifest
  secrets: ClusterSecrets
  render: TemplateRenderer
  host(name: string): HostConfig
  /** True when the component runs as a container (it is placed on an engine host). */
  inContainer(component: ComponentName): boolean
  /** Where `from` reaches `target`: an alias on the engine's cluster network, or a host address and port. */
  endpoint(target: ComponentName, from: ComponentName): Endpoint
  /** Where `from` reaches the PostgreSQL primary (through its local proxy in Patroni mode). */
  primaryEndpoint(from: ComponentName): Endpoint
}

/** A named volume (`imctl-<cluster>-<component>-<name>`) mounted at `path`. */
export interface ContainerVolume {
  name: string
  path: string
}

/** How a component runs as a container (images come from templates/images/<name>). */
export interface ContainerRuntime {
  /** Ports the service listens on inside the container; `publish` names the config port published on the host. */
  ports: {containerPort: number; publish: (config: ClusterConfig) => number | null}[]
  /** Named volumes that hold its data and survive every recreate (per config when they follow it, e.g. MinIO's drives). */
  volumes: ContainerVolume[] | ((config: ClusterConfig) => ContainerVolume[])
  /** The engine's health check (CMD form). */
  healthcheck: string[]
  /** Succeeds once the service answers after a start; retried. */
  ready: RemoteCommand
  /** Signal for a clean, fast stop. */
  stopSignal?: string
}

/** A pluggable part of the cluster: says what it needs on which host, as data. */
export interface Component {
  name: ComponentName
  /** Components that must be converged before this one's services start. */
  dependsOn: ComponentName[]
  /** Hosts this component runs on. */
  hosts(config: ClusterConfig): string[]
  /** Desired state; on an engine host packages, files and services become an image and a container. */
  resources(ctx: ComponentContext): Resource[]
  /** How it runs on an engine host; absent when it runs on SSH hosts only (validation refuses engines for it). */
  container?: ContainerRuntime
}

/** A runtime's volumes for this cluster. */
export function runtimeVolumes(runtime: ContainerRuntime, config: ClusterConfig): ContainerVolume[] {
  return typeof runtime.volumes === 'function' ? runtime.volumes(config) : runtime.volumes
}

/** The container runtime of a component that validation lets onto engine hosts. */
export function containerRuntime(c: Component): ContainerRuntime {
  if (!c.container) throw new Error(`bug: ${c.name} has no container runtime but was placed on an engine`)
  return c.container
}
