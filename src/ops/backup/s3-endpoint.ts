import {existsSync, readFileSync, statSync} from 'node:fs'
import {resolve} from 'node:path'
import type {S3EndpointSpec} from '../../components/minio/s3.js'
import {UserError} from '../../errors.js'

/**
 * `--s3-endpoint` and its companions: backup sets in an S3-compatible store
 * outside the cluster. What is given on the command line holds no secret:
 * the keys come from AWS's environment variables or from a credentials file.
 */
export interface S3EndpointOptions {
  endpoint: string
  /** Default: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1. */
  region?: string
  /** A file (mode 0600) in AWS's credentials format; else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. */
  credentialsFile?: string
  /** PEM CA bundle for the endpoint's TLS certificate (default: $AWS_CA_BUNDLE, else Node's CA list). */
  caFile?: string
  /** Buckets as paths (default) rather than as host names. */
  pathStyle?: boolean
}

export interface S3Credentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
}

/** http(s)://host[:port][/path]: no credentials, query or fragment in it (it is shown and may end up in a unit file). */
export function checkEndpointUrl(url: string): string {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new UserError(`--s3-endpoint ${url}: not a URL`, ['Write https://s3.example.com or http://127.0.0.1:9000.'])
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new UserError(`--s3-endpoint ${url}: write an http:// or https:// URL`)
  if (u.username || u.password) throw new UserError('--s3-endpoint: the URL carries credentials, which must never be in a command line', ['Put the keys into AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a credentials file given with --s3-credentials (mode 0600).'])
  if (u.search || u.hash) throw new UserError(`--s3-endpoint ${url}: no query or fragment, only scheme, host, port and path`)
  return url.replace(/\/+$/, '')
}

/**
 * A credentials file: AWS's format (`[profile]` sections with aws_access_key_id,
 * aws_secret_access_key, aws_session_token), or plain KEY=value lines with the
 * environment variables' names. The profile is `profile`, else `default`, else
 * the only one there. Null when none of them has both keys.
 */
export function parseCredentialsFile(text: string, profile?: string): S3Credentials | null {
  const sections = new Map<string, Record<string, string>>()
  let current = ''
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (!line || line.startsWith('#') || line.startsWith(';')) continue
    const section = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line)
    if (section) {
      current = section[1]!
      continue
    }
    const eq = line.indexOf('=')
    if (eq < 0) continue
    const name = line.slice(0, eq).trim().toLowerCase().replace(/^export\s+/, '')
    let value = line.slice(eq + 1).trim()
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1)
    const entry = sections.get(current) ?? {}
    entry[name] = value
    sections.set(current, entry)
  }
  const named = [...sections.keys()].filter((k) => k !== '')
  const pick = profile !== undefined ? [profile] : ['default', ...(named.length === 1 ? named : []), '']
  for (const p of pick) {
    const s = sections.get(p)
    if (s?.aws_access_key_id && s.aws_secret_access_key) {
      return {accessKeyId: s.aws_access_key_id, secretAccessKey: s.aws_secret_access_key, ...(s.aws_session_token ? {sessionToken: s.aws_session_token} : {})}
    }
  }
  return null
}

/** A file that holds a secret must be the owner's alone (no bits for group or others). */
export function checkSecretFile(file: string, what: string): void {
  if (!existsSync(file)) throw new UserError(`${what} ${file} does not exist`)
  const mode = statSync(file).mode & 0o777
  if (mode & 0o077) throw new UserError(`${what} ${file} has mode ${mode.toString(8).padStart(4, '0')}: others may read the secret in it`, [`chmod 600 ${file}`])
}

/** The keys: from the credentials file when given, else from AWS's environment variables. */
export function loadS3Credentials(opts: S3EndpointOptions, env: NodeJS.ProcessEnv = process.env): {credentials: S3Credentials; source: string} {
  if (opts.credentialsFile) {
    const file = resolve(opts.credentialsFile)
    checkSecretFile(file, 'the S3 credentials file')
    const credentials = parseCredentialsFile(readFileSync(file, 'utf8'), env.AWS_PROFILE)
    if (!credentials) {
      throw new UserError(`the S3 credentials file ${file} has no aws_access_key_id and aws_secret_access_key${env.AWS_PROFILE ? ` in profile ${env.AWS_PROFILE}` : ''}`, [
        'Write it as AWS does: a [default] section with aws_access_key_id = … and aws_secret_access_key = … (and aws_session_token when the keys are temporary).',
      ])
    }
    return {credentials, source: file}
  }
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    return {credentials: {accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? {sessionToken: env.AWS_SESSION_TOKEN} : {})}, source: 'environment'}
  }
  throw new UserError(`--s3-endpoint ${opts.endpoint}: no credentials`, [
    'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys) in the environment,',
    'or give a credentials file (mode 0600, AWS format) with --s3-credentials FILE.',
  ])
}

/** Everything the S3 client needs, checked: the URL, the region, the keys and the CA bundle. */
export function resolveS3Endpoint(opts: S3EndpointOptions, env: NodeJS.ProcessEnv = process.env): S3EndpointSpec {
  const endpoint = checkEndpointUrl(opts.endpoint)
  const caFile = opts.caFile ?? env.AWS_CA_BUNDLE
  let ca: Buffer | undefined
  if (caFile) {
    if (!existsSync(caFile)) throw new UserError(`the CA file ${caFile} does not exist`, ['Give the PEM file of the CA that signed the endpoint\'s certificate with --s3-ca.'])
    ca = readFileSync(caFile)
    if (!ca.toString('utf8').includes('-----BEGIN CERTIFICATE-----')) throw new UserError(`the CA file ${caFile} holds no PEM certificate`)
  }
  return {
    endpoint,
    region: opts.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    credentials: loadS3Credentials(opts, env).credentials,
    ...(ca ? {ca} : {}),
    pathStyle: opts.pathStyle ?? true,
  }
}

/** The flags that bring these options back, for a scheduled run (paths made absolute; no secret among them). */
export function s3EndpointArgs(opts: S3EndpointOptions): string[] {
  return [
    '--s3-endpoint',
    checkEndpointUrl(opts.endpoint),
    ...(opts.region ? ['--s3-region', opts.region] : []),
    ...(opts.credentialsFile ? ['--s3-credentials', resolve(opts.credentialsFile)] : []),
    ...(opts.caFile ? ['--s3-ca', resolve(opts.caFile)] : []),
    ...(opts.pathStyle === false ? ['--no-s3-path-style'] : []),
  ]
}

/** A TLS failure of the endpoint, said so that the fix is plain. */
export function tlsHint(message: string): string | undefined {
  if (/self[- ]signed|unable to (get|verify)|certificate|UNABLE_TO_VERIFY|CERT_/i.test(message)) return 'The endpoint\'s TLS certificate was not trusted: give the CA that signed it with --s3-ca FILE (PEM). Certificates are always verified.'
  if (/ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH/.test(message)) return 'The endpoint did not answer: check --s3-endpoint (scheme, host and port) and that this machine reaches it.'
  return undefined
}
