import type {ClusterConfig, ComponentName, HostConfig} from '../config/model.js'
import type {ReleaseManifest} from '../config/manifest.js'
import type {ClusterSecrets} from '../config/secrets.js'
import type {Resource} from '../plan/resources.js'
import type {TemplateRenderer} from '../render/templates.js'

export interface ComponentContext {
  config: ClusterConfig
  manifest: ReleaseManifest
  secrets: ClusterSecrets
  render: TemplateRenderer
  host(name: string): HostConfig
}

/** A pluggable part of the cluster: says what it needs on which host, as data. */
export interface Component {
  name: ComponentName
  /** Components that must be converged before this one's services start. */
  dependsOn: ComponentName[]
  /** Hosts this component runs on. */
  hosts(config: ClusterConfig): string[]
  resources(ctx: ComponentContext): Resource[]
}
