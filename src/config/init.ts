import {existsSync, mkdirSync, writeFileSync} from 'node:fs'
import {dirname, relative, resolve} from 'node:path'
import {Document, YAMLMap, YAMLSeq} from 'yaml'
import {UserError} from '../errors.js'
import {parseClusterConfig} from './load.js'
import {ensureSecrets} from './secrets.js'
import {secretSections} from './model.js'

export interface HostAnswer {
  name: string
  address: string
  port?: number
  user?: string
  sudo?: boolean
  /** A key file path, or 'agent'. */
  key?: string
  jump?: {address: string; port?: number; user?: string}
}

export interface InitAnswers {
  name: string
  domain: string
  release: string
  hosts: HostAnswer[]
  placement: {postgresql: string; redis: string; ejabberd: string}
  secretsFile?: string
  knownHostsFile?: string
}

/** cluster.yaml as text, with a header that points editors at the schema. */
export function clusterYaml(a: InitAnswers, schemaPath?: string): string {
  const doc = new Document({
    apiVersion: 'imctl/v1',
    name: a.name,
    domain: a.domain,
    release: a.release,
    ...(a.secretsFile ? {secretsFile: a.secretsFile} : {}),
    ...(a.knownHostsFile ? {knownHostsFile: a.knownHostsFile} : {}),
    hosts: a.hosts.map((h) => ({
      name: h.name,
      address: h.address,
      ...(h.port && h.port !== 22 ? {port: h.port} : {}),
      ...(h.user && h.user !== 'root' ? {user: h.user} : {}),
      ...(h.sudo ? {sudo: true} : {}),
      auth: !h.key || h.key === 'agent' ? {agent: true} : {key: h.key},
      ...(h.jump ? {jump: {address: h.jump.address, ...(h.jump.port && h.jump.port !== 22 ? {port: h.jump.port} : {}), ...(h.jump.user ? {user: h.jump.user} : {})}} : {}),
    })),
    components: {
      postgresql: {host: a.placement.postgresql},
      redis: {host: a.placement.redis},
      ejabberd: {host: a.placement.ejabberd},
    },
  })
  // Short mappings read best on one line.
  for (const item of (doc.get('hosts') as YAMLSeq).items) {
    const auth = (item as YAMLMap).get('auth') as YAMLMap
    auth.flow = true
    const jump = (item as YAMLMap).get('jump') as YAMLMap | undefined
    if (jump) jump.flow = true
  }
  for (const c of ['postgresql', 'redis', 'ejabberd']) ((doc.get('components') as YAMLMap).get(c) as YAMLMap).flow = true
  const header =
    (schemaPath ? `# yaml-language-server: $schema=${schemaPath}\n` : '') +
    '# imctl cluster definition. Secrets are never stored here: see secretsFile.\n'
  return header + doc.toString()
}

export interface InitResult {
  configFile: string
  secretsFile: string
  secretsCreated: string[]
}

/** Writes cluster.yaml (validated first) and creates its secrets file (0600). */
export function writeClusterFiles(file: string, a: InitAnswers, opts: {force?: boolean; schemaPath?: string} = {}): InitResult {
  const abs = resolve(file)
  if (existsSync(abs) && !opts.force) {
    throw new UserError(`${file} already exists`, ['Pass --force to overwrite it (its secrets file is kept), or choose another --config path.'])
  }
  const text = clusterYaml(a, opts.schemaPath)
  const config = parseClusterConfig(text, abs) // the same validation as `imctl validate`
  mkdirSync(dirname(abs), {recursive: true})
  writeFileSync(abs, text, {mode: 0o644})
  const {created} = ensureSecrets(config.secretsFile, secretSections(config))
  return {configFile: abs, secretsFile: config.secretsFile, secretsCreated: created}
}

/** How cluster.yaml points editors at the schema: relative inside the same tree, else absolute. */
export function schemaPathFrom(configFile: string, schemaFile: string): string {
  const rel = relative(dirname(resolve(configFile)), schemaFile)
  return rel.startsWith('..') && !resolve(configFile).startsWith(resolve(schemaFile, '..', '..')) ? schemaFile : rel
}
