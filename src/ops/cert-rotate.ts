import {loadClusterConfig} from '../config/load.js'
import type {ClusterConfig} from '../config/model.js'
import {UserError} from '../errors.js'
import type {IoHost} from '../io.js'
import {ensurePki, finishCaRotation, rotateCa} from '../pki/pki.js'
import {installService, type InstallResult} from './install.js'

export interface CertRotateOptions {
  configFile: string
  /** Also replace imctl's CA: hosts trust the new one beside the old before any server shows a certificate of it. */
  ca?: boolean
  /** Stop trusting the CA of the last CA rotation (once every client has the new one). */
  finishCa?: boolean
  acceptNewHostKeys?: boolean
  io: IoHost
}

export interface CertRotateResult {
  cluster: string
  /** Each server certificate's serial before and after, per component and host; then each client certificate's. */
  certificates: {component: string; host: string; before: string; after: string}[]
  /** The install passes that brought the hosts there, in order (what each changed). */
  passes: {why: string; result: InstallResult}[]
}

/**
 * `imctl cert rotate`: issue every server certificate anew and converge, as install
 * does; services that can (PostgreSQL, Redis, stunnel, ejabberd) reload their
 * certificates without a restart, so clients see no failed request.
 */
export async function certRotateService(opts: CertRotateOptions): Promise<CertRotateResult> {
  const config = requireTls(loadClusterConfig(opts.configFile, {checkKeyFiles: true}))
  const run = (why: string, pki: {acceptPreviousCa?: boolean} = {}) => {
    opts.io.notify({type: 'info', message: why})
    return installService({configFile: opts.configFile, acceptNewHostKeys: opts.acceptNewHostKeys ?? false, io: opts.io, command: 'imctl cert rotate', pki}).then((result) => {
      if (result.failed || result.skipped) throw new UserError(`cert rotate stopped: ${why} failed on some host (${result.failed} failed, ${result.skipped} skipped)`, ['Fix the cause (see `imctl plan`), then run `imctl install`: it finishes the rotation.'])
      return {why, result}
    })
  }
  const passes: CertRotateResult['passes'] = []
  const before = ensurePki(config)
  if (opts.finishCa) {
    if (!finishCaRotation(config)) throw new UserError('there is no CA rotation to finish', ['`imctl cert rotate --ca` starts one.'])
    passes.push(await run('hosts stop trusting the previous CA'))
  } else {
    if (opts.ca) {
      rotateCa(config)
      // First every host trusts both CAs, while the servers still show certificates of the old one.
      passes.push(await run('hosts trust the new CA beside the old', {acceptPreviousCa: true}))
      // ejabberd's TLS library (Erlang's ssl) re-reads a changed CA file only when its PEM cache is
      // cleaned, every 2 minutes by default: until then its new database connections know the old CA only.
      const wait = caOverlapSeconds()
      if (wait > 0) {
        opts.io.notify({type: 'info', message: `waiting ${wait} s until ejabberd has read the new CA file (Erlang's PEM cache)`})
        await new Promise((r) => setTimeout(r, wait * 1000))
      }
    }
    ensurePki(config, {reissue: true})
    passes.push(await run('servers switch to their new certificates'))
  }
  const after = ensurePki(config)
  return {
    cluster: config.name,
    certificates: [
      ...before.servers.map((b) => ({component: b.component, host: b.host, before: b.serial, after: after.servers.find((a) => a.component === b.component && a.host === b.host)?.serial ?? ''})),
      // Client certificates (a role's login to PostgreSQL) are used on the role's hosts: `host` is the component's.
      ...before.clients.map((b) => ({component: `${b.role} (PostgreSQL login)`, host: config.components[b.role].host, before: b.serial, after: after.clients.find((a) => a.role === b.role)?.serial ?? ''})),
    ],
    passes,
  }
}

/** Seconds between the two passes of a CA rotation: Erlang's PEM cache interval (120 s) and a margin; IMCTL_CERT_CA_OVERLAP_SECONDS overrides it. */
function caOverlapSeconds(): number {
  const env = process.env.IMCTL_CERT_CA_OVERLAP_SECONDS
  return env !== undefined && /^\d+$/.test(env) ? Number(env) : 130
}

function requireTls(config: ClusterConfig): ClusterConfig {
  if (!config.tls) throw new UserError(`cluster ${config.name} has no \`tls:\` section: there are no certificates to rotate`, ['Add `tls: {ca: imctl}` to cluster.yaml and run `imctl install`.'])
  return config
}
