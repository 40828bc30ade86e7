/** Shared fixtures for the unit tests (not a test file itself). */
import {readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseClusterConfig} from '../../src/config/load.js'
import {loadManifest} from '../../src/config/manifest.js'
import type {ClusterConfig} from '../../src/config/model.js'
import {secretValues, type ClusterSecrets} from '../../src/config/secrets.js'
import {desiredState} from '../../src/plan/desired.js'
import type {Resource} from '../../src/plan/resources.js'

export const repoRoot = resolve(fileURLToPath(import.meta.url), '../../..')
export const fixturesDir = join(repoRoot, 'test/fixtures')

export const RELEASE = 'ejabberd-23.01-debian12'

/** Fixed secrets: distinctive, so a leak is easy to spot in any text. */
export const SECRETS: ClusterSecrets = {
  postgresql: {ejabberd_password: 'pg-Secret-4f7a2c9e1b'},
  redis: {password: 'redis-Secret-8d3e6f0a2c'},
  ejabberd: {admin_password: 'admin-Secret-1c5b9d7e3f'},
}
export const SECRET_VALUES = secretValues(SECRETS)

/** db1 (postgresql), cache1 (redis, admin+sudo), im1 (ejabberd). */
export const THREE_HOSTS_YAML = readFileSync(join(fixturesDir, 'valid-agent-cluster.yaml'), 'utf8')

/** Everything on one host. */
export const ONE_HOST_YAML = `apiVersion: imctl/v1
name: solo
domain: chat.example.org
release: ${RELEASE}
hosts:
  - name: box
    address: 192.168.50.7
    auth: {agent: true}
components:
  postgresql: {host: box}
  redis: {host: box}
  ejabberd: {host: box}
`

export function configFrom(yaml: string): ClusterConfig {
  return parseClusterConfig(yaml, '/tmp/imctl-unit/cluster.yaml')
}

export function resourcesFor(yaml: string): Resource[] {
  const config = configFrom(yaml)
  return desiredState(config, loadManifest(config.release), SECRETS)
}
