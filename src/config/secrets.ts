import {randomBytes} from 'node:crypto'
import {chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync} from 'node:fs'
import {dirname} from 'node:path'
import {parse, stringify} from 'yaml'
import {UserError} from '../errors.js'
import type {ClusterPki} from '../pki/pki.js'

/** Every generated credential of a cluster. Lives only in the secrets file (0600). */
export interface ClusterSecrets {
  postgresql: {ejabberd_password: string}
  redis: {password: string}
  ejabberd: {admin_password: string}
  /** Present when the cluster has Kafka; `cluster_id` is KRaft's (not secret, but generated once and kept). */
  kafka?: {cluster_id: string; broker_password: string; imctl_password: string}
  /** Present when the cluster has MinIO. */
  minio?: {root_password: string; backup_secret: string; archive_secret: string; health_secret: string}
  /** Present when ejabberd runs on 2 or more nodes: the Erlang cookie they all share. */
  ejabberd_cluster?: {erlang_cookie: string}
  /** Present with `tls:`: the CA and the issued certificates, read from the PKI directory (never from the secrets file). */
  tls?: ClusterPki
  /** Present with `ejabberd.jwt` enabled: the HS256 key (32 random bytes, base64url) that signs login tokens. */
  ejabberd_jwt?: {key: string}
  /** Present when PostgreSQL runs under Patroni: its superuser, replication and REST API (write endpoints) passwords. */
  patroni?: {superuser_password: string; replication_password: string; restapi_password: string}
}

type Sections = Required<Omit<ClusterSecrets, 'tls'>>
const SHAPE: {[K in keyof Sections]: (keyof Sections[K])[]} = {
  postgresql: ['ejabberd_password'],
  redis: ['password'],
  ejabberd: ['admin_password'],
  kafka: ['cluster_id', 'broker_password', 'imctl_password'],
  minio: ['root_password', 'backup_secret', 'archive_secret', 'health_secret'],
  ejabberd_cluster: ['erlang_cookie'],
  ejabberd_jwt: ['key'],
  patroni: ['superuser_password', 'replication_password', 'restapi_password'],
}
/** Sections every cluster has; the others only with their component. */
const ALWAYS = ['postgresql', 'redis', 'ejabberd']

/** A password of 32 URL-safe characters: no quoting trouble in any config format. */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url')
}

/** KRaft's cluster id: 16 random bytes, URL-safe base64 without padding (22 characters). */
function generateValue(section: string, key: string): string {
  if (section === 'ejabberd_cluster' && key === 'erlang_cookie') return erlangCookie()
  // HS256 wants a key as long as its hash (RFC 7518 3.2): 256 bits.
  if (section === 'ejabberd_jwt' && key === 'key') return randomBytes(32).toString('base64url')
  return section === 'kafka' && key === 'cluster_id' ? randomBytes(16).toString('base64url') : generatePassword()
}

/** An Erlang cookie: 32 upper-case letters and digits, like the ones Erlang makes itself (an atom needs no quoting then). */
function erlangCookie(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
  return [...randomBytes(32)].map((b) => alphabet[b % alphabet.length]).join('')
}

/** Reads the secrets file; `components` names the optional components whose secrets must be there. */
export function loadSecrets(file: string, components: string[] = []): ClusterSecrets {
  if (!existsSync(file)) {
    throw new UserError(`secrets file ${file} does not exist`, [
      'Run `imctl init` (or `imctl secrets generate`) to create it.',
      'If you moved it, set `secretsFile:` in cluster.yaml.',
    ])
  }
  const mode = statSync(file).mode & 0o777
  if (mode & 0o077) {
    throw new UserError(`secrets file ${file} is readable by others (mode ${mode.toString(8)})`, [`Run: chmod 600 ${file}`])
  }
  const data = (parse(readFileSync(file, 'utf8')) ?? {}) as Partial<Record<string, Record<string, unknown>>>
  const missing: string[] = []
  for (const [section, keys] of Object.entries(SHAPE)) {
    if (!ALWAYS.includes(section) && !components.includes(section)) continue
    for (const key of keys as string[]) {
      const v = data[section]?.[key]
      if (typeof v !== 'string' || v.length < 12) missing.push(`${section}.${key}`)
    }
  }
  if (missing.length) {
    throw new UserError(`secrets file ${file} lacks ${missing.join(', ')}`, [
      'Run `imctl secrets generate` to add the missing values (existing ones are kept).',
    ])
  }
  return data as unknown as ClusterSecrets
}

/** A full set of placeholder values, for rendering before any secret exists. */
export function placeholderSecrets(): ClusterSecrets {
  const data: Record<string, Record<string, string>> = {}
  for (const [section, keys] of Object.entries(SHAPE)) {
    data[section] = Object.fromEntries((keys as string[]).map((k) => [k, `<${section}.${k}>`]))
  }
  return data as unknown as ClusterSecrets
}

/** Creates the secrets file or fills in what it lacks; never changes an existing value. */
export function ensureSecrets(file: string, components: string[] = []): {secrets: ClusterSecrets; created: string[]} {
  const data = existsSync(file)
    ? ((parse(readFileSync(file, 'utf8')) ?? {}) as Record<string, Record<string, string>>)
    : {}
  const created: string[] = []
  for (const [section, keys] of Object.entries(SHAPE)) {
    if (!ALWAYS.includes(section) && !components.includes(section)) continue
    data[section] ??= {}
    for (const key of keys as string[]) {
      const v = data[section]![key]
      if (typeof v !== 'string' || v.length < 12) {
        data[section]![key] = generateValue(section, key)
        created.push(`${section}.${key}`)
      }
    }
  }
  if (created.length) writePrivateFile(file, '# imctl cluster secrets: keep private (mode 0600), back up apart from the hosts.\n' + stringify(data))
  else chmodSync(file, 0o600)
  return {secrets: data as unknown as ClusterSecrets, created}
}

/** Writes a file only its owner can read, atomically (temp + rename). */
export function writePrivateFile(file: string, content: string): void {
  mkdirSync(dirname(file), {recursive: true, mode: 0o700})
  const tmp = `${file}.tmp-${process.pid}`
  writeFileSync(tmp, content, {mode: 0o600})
  chmodSync(tmp, 0o600)
  renameSync(tmp, file)
}

/** All secret values, for redacting them from any text shown to people. */
export function secretValues(s: ClusterSecrets): string[] {
  const {tls, ...sections} = s
  // Of the PKI only the private keys are secret.
  return [...Object.values(sections).flatMap((section) => Object.values(section as Record<string, string>)), ...(tls?.servers.map((c) => c.key) ?? []), ...(tls?.clients.map((c) => c.key) ?? [])]
}

export function redact(text: string, secrets: string[]): string {
  let out = text
  for (const s of secrets) if (s) out = out.split(s).join('********')
  return out
}
