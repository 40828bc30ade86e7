import {existsSync} from 'node:fs'
import {relative} from 'node:path'
import {loadClusterConfig} from '../config/load.js'
import {loadManifest} from '../config/manifest.js'

export interface ValidateResult {
  file: string
  valid: true
  cluster: string
  release: string
  hosts: number
  secretsFile: string | null
}

/** `imctl validate`: throws ValidationError (every problem, file:line:column) or describes the valid config. */
export function validateService(configFile: string): ValidateResult {
  const config = loadClusterConfig(configFile, {checkKeyFiles: true})
  loadManifest(config.release)
  return {
    file: relative(process.cwd(), config.file) || config.file,
    valid: true,
    cluster: config.name,
    release: config.release,
    hosts: config.hosts.length,
    secretsFile: existsSync(config.secretsFile) ? config.secretsFile : null,
  }
}
