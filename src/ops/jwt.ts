import {createHmac} from 'node:crypto'
import {loadClusterConfig} from '../config/load.js'
import {secretSections} from '../config/model.js'
import {loadSecrets} from '../config/secrets.js'
import {UserError} from '../errors.js'

/** Where ejabberd reads the key that checks login tokens (`jwt_key`). */
export const JWT_KEY_FILE = '/etc/ejabberd/jwt.jwk'

/** The key as a JWK, the form ejabberd's jwt_key takes: a symmetric (oct) key for HS256. */
export function jwkFile(key: string): string {
  return `${JSON.stringify({kty: 'oct', alg: 'HS256', use: 'sig', k: key})}\n`
}

/** An HS256 token (RFC 7519) over `claims`; `key` is base64url, as in the secrets file and the JWK. */
export function signJwt(claims: Record<string, unknown>, key: string): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const input = `${part({alg: 'HS256', typ: 'JWT'})}.${part(claims)}`
  return `${input}.${createHmac('sha256', Buffer.from(key, 'base64url')).update(input).digest('base64url')}`
}

export interface JwtSignResult {
  jid: string
  expires: string
  token: string
}

/** A login token for `user` (local part or full JID of the cluster's domain), valid for `ttlMs`. */
export function jwtSignService(opts: {configFile: string; user: string; ttlMs: number; now?: Date}): JwtSignResult {
  const config = loadClusterConfig(opts.configFile)
  const jwt = config.components.ejabberd.jwt
  if (!jwt) throw new UserError('JWT login is off in this cluster', ['Add `jwt: {enabled: true}` under components.ejabberd in cluster.yaml, then run `imctl secrets generate` and `imctl install`.'])
  const jid = opts.user.includes('@') ? opts.user : `${opts.user}@${config.domain}`
  const [local, domain] = jid.split('@')
  if (!local || domain !== config.domain || !/^[^\s/"&'<>:]+$/.test(local)) {
    throw new UserError(`${JSON.stringify(opts.user)} is not a user of ${config.domain}`, [`Give a user name such as alice, or alice@${config.domain}.`])
  }
  if (!(opts.ttlMs >= 1000)) throw new UserError('a token valid for less than a second is expired when it is used', ['Give --ttl such as 15m or 1h.'])
  const key = loadSecrets(config.secretsFile, secretSections(config)).ejabberd_jwt!.key
  const now = opts.now ?? new Date()
  const exp = Math.floor((now.getTime() + opts.ttlMs) / 1000)
  return {jid, expires: new Date(exp * 1000).toISOString(), token: signJwt({[jwt.jidField]: jid, iat: Math.floor(now.getTime() / 1000), exp}, key)}
}
