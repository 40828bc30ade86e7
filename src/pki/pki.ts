import {execFileSync} from 'node:child_process'
import {generateKeyPairSync, randomBytes, X509Certificate} from 'node:crypto'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {isIP} from 'node:net'
import {join} from 'node:path'
import type {ClusterConfig, ComponentName, TlsConfig} from '../config/model.js'
import {hostByName} from '../config/model.js'
import {UserError} from '../errors.js'

/**
 * The cluster's PKI: a CA (imctl's own or the user's) and one server certificate
 * per component and host, kept as PEM files in the PKI directory beside the
 * secrets file (keys 0600). Certificates are signed by the openssl binary of
 * this machine; keys and passwords never appear in its argv (only file paths).
 */

/** Components whose servers get a certificate (the ones that listen for other hosts). */
export const TLS_COMPONENTS = ['postgresql', 'redis', 'ejabberd'] as const
export type TlsComponent = (typeof TLS_COMPONENTS)[number]

export interface ServerCertificate {
  component: TlsComponent
  host: string
  /** PEM. */
  cert: string
  /** PEM (PKCS#8): a secret. */
  key: string
  /** Hex, as openssl and Node print it. */
  serial: string
  /** Subject alternative names, e.g. ['DNS:db1', 'IP:10.0.0.11']. */
  names: string[]
}

/** A client certificate: a PostgreSQL role logs in with it (pg_hba `cert`), the role's name as CN. */
export interface ClientCertificate {
  role: ClientRole
  /** PEM. */
  cert: string
  /** PEM (PKCS#8): a secret. */
  key: string
  serial: string
}

/**
 * Roles that log in to PostgreSQL with a client certificate instead of a password (with `tls:`):
 * ejabberd, so that its database password is nowhere on its host (p1_pgsql's crash reports print
 * the connection options into the logs).
 */
export const CLIENT_ROLES = ['ejabberd'] as const
export type ClientRole = (typeof CLIENT_ROLES)[number]

export interface ClusterPki {
  /** PEM of every CA the hosts trust: the current one first, during a CA rotation also the previous one. */
  caBundle: string
  /** PEM of the CA that signs now. */
  caCert: string
  servers: ServerCertificate[]
  clients: ClientCertificate[]
}

export function clientCertificate(pki: ClusterPki, role: ClientRole): ClientCertificate {
  const c = pki.clients.find((x) => x.role === role)
  if (!c) throw new Error(`bug: no client certificate for ${role}`)
  return c
}

export function serverCertificate(pki: ClusterPki, component: TlsComponent, host: string): ServerCertificate {
  const s = pki.servers.find((x) => x.component === component && x.host === host)
  if (!s) throw new Error(`bug: no certificate for ${component} on ${host}`)
  return s
}

/** The names a component's server certificate must carry on a host: its name, its address, and for ejabberd the XMPP domain. */
export function wantedNames(config: ClusterConfig, component: TlsComponent, hostName: string): string[] {
  const host = hostByName(config, hostName)
  const names = [`DNS:${host.name}`, isIP(host.address) ? `IP:${host.address}` : `DNS:${host.address}`]
  if (component === 'ejabberd') names.push(`DNS:${config.domain}`)
  // Loopback: local tools (psql, redis-cli) on the host itself verify it too.
  names.push('DNS:localhost', 'IP:127.0.0.1')
  return names
}

/** Which (component, host) pairs need a server certificate. */
export function certificateSlots(config: ClusterConfig): {component: TlsComponent; host: string}[] {
  return TLS_COMPONENTS.map((component) => ({component, host: config.components[component].host}))
}

const CA_CERT = 'ca.crt'
const CA_KEY = 'ca.key'
/** The CA certificate that signed before the last CA rotation: trusted beside the new one until `cert rotate --finish-ca`. */
const PREVIOUS_CA_CERT = 'ca.previous.crt'

function certFile(dir: string, component: string, host: string, ext: 'crt' | 'key'): string {
  return join(dir, `${component}-${host}.${ext}`)
}

function clientFile(dir: string, role: ClientRole, ext: 'crt' | 'key'): string {
  return join(dir, `client-${role}.${ext}`)
}

/** The subject of a role's client certificate: PostgreSQL's `cert` method takes the CN as the role. */
export function clientSubject(role: ClientRole): string {
  return `/O=imctl/CN=${role}`
}

/** Reads the PKI, making what is missing or no longer right: the CA (when imctl's), and each certificate that is missing, names other hosts, was signed by another CA or has less than a third of its validity left. */
export interface PkiOptions {
  now?: Date
  /** Issue every server certificate anew (cert rotate). */
  reissue?: boolean
  /** Keep certificates of the CA that signed before a CA rotation (its first pass: hosts learn to trust the new CA first). */
  acceptPreviousCa?: boolean
}

export function ensurePki(config: ClusterConfig, opts: PkiOptions = {}): ClusterPki {
  const tls = config.tls
  if (!tls) throw new Error('bug: ensurePki on a cluster without tls')
  mkdirSync(tls.dir, {recursive: true, mode: 0o700})
  chmodSync(tls.dir, 0o700)
  const ca = ensureCa(config, tls)
  const caX = new X509Certificate(ca.cert)
  const previous = join(tls.dir, PREVIOUS_CA_CERT)
  const previousPem = existsSync(previous) ? readFileSync(previous, 'utf8') : ''
  const issuers = [caX, ...(opts.acceptPreviousCa && previousPem ? [new X509Certificate(previousPem)] : [])]
  const now = opts.now ?? new Date()
  const servers = certificateSlots(config).map(({component, host}) => {
    const names = wantedNames(config, component, host)
    const crtPath = certFile(tls.dir, component, host, 'crt')
    const keyPath = certFile(tls.dir, component, host, 'key')
    if (opts.reissue || !issuers.some((i) => certStillGood(crtPath, keyPath, names, i, now))) issue(tls, ca, {subject: `/O=imctl/CN=${component}.${host}`, names, usage: 'serverAuth,clientAuth'}, crtPath, keyPath)
    const cert = readFileSync(crtPath, 'utf8')
    return {component, host, cert, key: readKey(keyPath), serial: new X509Certificate(cert).serialNumber, names}
  })
  const clients = CLIENT_ROLES.map((role) => {
    const crtPath = clientFile(tls.dir, role, 'crt')
    const keyPath = clientFile(tls.dir, role, 'key')
    const subject = clientSubject(role)
    if (opts.reissue || !issuers.some((i) => certStillGood(crtPath, keyPath, [], i, now, subject))) issue(tls, ca, {subject, names: [], usage: 'clientAuth'}, crtPath, keyPath)
    const cert = readFileSync(crtPath, 'utf8')
    return {role, cert, key: readKey(keyPath), serial: new X509Certificate(cert).serialNumber}
  })
  const caBundle = ca.cert + previousPem
  return {caBundle, caCert: ca.cert, servers, clients}
}

/** Replaces imctl's CA with a new one; the old certificate stays trusted (ca.previous.crt) until `finishCaRotation`. */
export function rotateCa(config: ClusterConfig): void {
  const tls = config.tls!
  if (tls.ca.kind !== 'imctl') throw new UserError('this cluster uses your own CA: imctl cannot replace it', ['Give `tls.ca` a new cert and key, then run `imctl cert rotate`.'])
  const dir = tls.dir
  if (existsSync(join(dir, PREVIOUS_CA_CERT))) throw new UserError('the last CA rotation is not finished: hosts still trust the CA before it', ['Run `imctl cert rotate --finish-ca` first, then rotate the CA again.'])
  renameSync(join(dir, CA_CERT), join(dir, PREVIOUS_CA_CERT))
  rmSync(join(dir, CA_KEY))
  ensureCa(config, tls)
}

/** Stops trusting the CA that signed before the last CA rotation. */
export function finishCaRotation(config: ClusterConfig): boolean {
  const previous = join(config.tls!.dir, PREVIOUS_CA_CERT)
  if (!existsSync(previous)) return false
  rmSync(previous)
  return true
}

function ensureCa(config: ClusterConfig, tls: TlsConfig): {cert: string; certPath: string; keyPath: string} {
  if (tls.ca.kind === 'file') {
    checkKeyMode(tls.ca.key)
    return {cert: normalizePem(readFileSync(tls.ca.cert, 'utf8')), certPath: tls.ca.cert, keyPath: tls.ca.key}
  }
  const certPath = join(tls.dir, CA_CERT)
  const keyPath = join(tls.dir, CA_KEY)
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    writeKey(keyPath)
    const tmp = `${certPath}.tmp`
    openssl(['req', '-x509', '-new', '-key', keyPath, '-sha256', '-days', '3650', '-subj', `/O=imctl/CN=imctl CA ${config.name} ${new Date().toISOString().slice(0, 10)}`,
      '-set_serial', `0x${serialHex()}`, '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', tmp])
    renameSync(tmp, certPath)
  }
  checkKeyMode(keyPath)
  return {cert: normalizePem(readFileSync(certPath, 'utf8')), certPath, keyPath}
}

/** What a certificate says: its subject, its subject alternative names (none for a client) and extended key usage. */
interface Identity {
  subject: string
  names: string[]
  usage: 'serverAuth,clientAuth' | 'clientAuth'
}

function issue(tls: TlsConfig, ca: {certPath: string; keyPath: string}, id: Identity, crtPath: string, keyPath: string): void {
  const work = mkdtempSync(join(tls.dir, '.issue-'))
  try {
    const key = join(work, 'server.key')
    writeKey(key)
    const csr = join(work, 'server.csr')
    const ext = join(work, 'ext.cnf')
    writeFileSync(ext, [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${id.usage}`,
      ...(id.names.length ? [`subjectAltName=${id.names.join(',')}`] : []),
      '',
    ].join('\n'))
    openssl(['req', '-new', '-key', key, '-subj', id.subject, '-out', csr])
    const crt = join(work, 'server.crt')
    openssl(['x509', '-req', '-in', csr, '-CA', ca.certPath, '-CAkey', ca.keyPath, '-set_serial', `0x${serialHex()}`, '-days', String(tls.days), '-sha256', '-extfile', ext, '-out', crt])
    // The key first: a certificate is never paired with a key it was not issued for.
    renameSync(key, keyPath)
    renameSync(crt, crtPath)
  } finally {
    rmSync(work, {recursive: true, force: true})
  }
}

function certStillGood(crtPath: string, keyPath: string, names: string[], ca: X509Certificate, now: Date, subject?: string): boolean {
  if (!existsSync(crtPath) || !existsSync(keyPath)) return false
  let x: X509Certificate
  try {
    x = new X509Certificate(readFileSync(crtPath))
  } catch {
    return false
  }
  if (!x.checkIssued(ca) || !x.verify(ca.publicKey)) return false
  const have = (x.subjectAltName ?? '').split(', ').map((n) => n.replace(/^IP Address:/, 'IP:')).sort()
  if (names.length ? JSON.stringify(have) !== JSON.stringify([...names].sort()) : x.subjectAltName) return false
  // A subject as openssl's -subj takes it, e.g. /O=imctl/CN=ejabberd (Node prints one attribute a line).
  if (subject && `/${x.subject.split('\n').join('/')}` !== subject) return false
  const from = Date.parse(x.validFrom)
  const to = Date.parse(x.validTo)
  return now.getTime() < to - (to - from) / 3
}

function writeKey(path: string): void {
  const {privateKey} = generateKeyPairSync('ec', {namedCurve: 'prime256v1'})
  const tmp = `${path}.tmp`
  writeFileSync(tmp, privateKey.export({type: 'pkcs8', format: 'pem'}), {mode: 0o600})
  renameSync(tmp, path)
}

function readKey(path: string): string {
  checkKeyMode(path)
  return readFileSync(path, 'utf8')
}

function checkKeyMode(path: string): void {
  const mode = statSync(path).mode & 0o777
  if (mode & 0o077) throw new UserError(`private key ${path} is readable by others (mode ${mode.toString(8)})`, [`Run: chmod 600 ${path}`])
}

function normalizePem(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`
}

/** A positive 127-bit serial, as RFC 5280 wants (unique, unpredictable, at most 20 bytes). */
function serialHex(): string {
  const b = randomBytes(16)
  b[0] = b[0]! & 0x7f
  return b.toString('hex')
}

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, {stdio: ['ignore', 'ignore', 'pipe']})
  } catch (e) {
    const err = e as {code?: string; stderr?: Buffer}
    if (err.code === 'ENOENT') throw new UserError('openssl is not installed on this machine: imctl signs the cluster\'s certificates with it', ['Install it (Debian: apt-get install openssl), then run again.'])
    throw new Error(`openssl ${args[0]} failed: ${err.stderr?.toString().trim().split('\n').slice(-3).join(' ') ?? String(e)}`)
  }
}

/** ComponentName narrowing for callers that hold a general name. */
export function isTlsComponent(c: ComponentName): c is TlsComponent {
  return (TLS_COMPONENTS as readonly string[]).includes(c)
}

/** Stand-ins for rendering before any certificate exists (`config render` without a secrets file). */
export function placeholderPki(config: ClusterConfig): ClusterPki {
  const servers = certificateSlots(config).map(({component, host}) => ({component, host, cert: `<tls.${component}.${host}.crt>\n`, key: `<tls.${component}.${host}.key>\n`, serial: '0', names: wantedNames(config, component, host)}))
  const clients = CLIENT_ROLES.map((role) => ({role, cert: `<tls.client.${role}.crt>\n`, key: `<tls.client.${role}.key>\n`, serial: '0'}))
  return {caBundle: '<tls.ca.crt>\n', caCert: '<tls.ca.crt>\n', servers, clients}
}
