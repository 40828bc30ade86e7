import {createHash} from 'node:crypto'
import {runtimeVolumes, type ContainerRuntime} from '../components/types.js'
import type {ClusterConfig, ComponentName, HostConfig} from '../config/model.js'
import {engineNames, LABELS} from '../transport/engine-names.js'
import type {ContainerSpec, FileResource} from './resources.js'

const SECOND = 1_000_000_000

/**
 * The create body of a component's container. Pure: same inputs, same spec.
 * Published ports bind to the engine host's configured address, never 0.0.0.0.
 */
export function containerSpec(input: {
  config: ClusterConfig
  host: HostConfig
  component: ComponentName
  image: string
  runtime: ContainerRuntime
  configHash: string
}): ContainerSpec {
  const {config, host, component, image, runtime} = input
  const network = engineNames.network(config.name)
  const exposed: ContainerSpec['ExposedPorts'] = {}
  const bindings: ContainerSpec['HostConfig']['PortBindings'] = {}
  for (const p of runtime.ports) {
    const key = `${p.containerPort}/tcp`
    exposed[key] = {}
    const published = p.publish(config)
    if (published !== null) bindings[key] = [{HostIp: host.address, HostPort: String(published)}]
  }
  return {
    name: engineNames.container(config.name, component),
    Image: image,
    Hostname: component,
    Labels: {
      [LABELS.cluster]: config.name,
      [LABELS.component]: component,
      [LABELS.release]: config.release,
      [LABELS.configHash]: input.configHash,
    },
    ExposedPorts: exposed,
    Healthcheck: {Test: ['CMD', ...runtime.healthcheck], Interval: 10 * SECOND, Timeout: 5 * SECOND, Retries: 3, StartPeriod: 30 * SECOND},
    ...(runtime.stopSignal ? {StopSignal: runtime.stopSignal} : {}),
    HostConfig: {
      NetworkMode: network,
      Mounts: runtimeVolumes(runtime, config).map((v) => ({Type: 'volume' as const, Source: engineNames.volume(config.name, component, v.name), Target: v.path})),
      PortBindings: bindings,
      RestartPolicy: {Name: 'unless-stopped'},
    },
    NetworkingConfig: {EndpointsConfig: {[network]: {Aliases: [component]}}},
  }
}

/** What decides whether a container must be recreated: its image, its spec (minus this hash) and its files. */
export function configHash(image: string, files: FileResource[], specWithoutHash: object): string {
  const h = createHash('sha256')
  h.update(image)
  h.update(JSON.stringify(specWithoutHash))
  for (const f of [...files].sort((a, b) => a.path.localeCompare(b.path))) h.update(`\0${f.path}\0${f.owner}:${f.group}:${f.mode}\0${f.content}`)
  return h.digest('hex').slice(0, 16)
}
