import type {ComponentName} from '../config/model.js'

/** Names of what imctl creates on an engine for a cluster: one prefix, easy to find and clean. */
export const engineNames = {
  network: (cluster: string) => `imctl-${cluster}`,
  container: (cluster: string, component: ComponentName) => `imctl-${cluster}-${component}`,
  volume: (cluster: string, component: ComponentName, name: string) => `imctl-${cluster}-${component}-${name}`,
  /** imctl's own state (lock, audit log) on an engine: a container and its volume. */
  state: (cluster: string) => `imctl-${cluster}-imctl-state`,
}

export const LABELS = {
  cluster: 'io.imctl.cluster',
  component: 'io.imctl.component',
  release: 'io.imctl.release',
  configHash: 'io.imctl.config-hash',
  role: 'io.imctl.role',
} as const
