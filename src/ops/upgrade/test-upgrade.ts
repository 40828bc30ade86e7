import {randomBytes} from 'node:crypto'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {listReleases, loadManifest} from '../../config/manifest.js'
import {ensureSecrets} from '../../config/secrets.js'
import {UserError} from '../../errors.js'
import type {IoHost} from '../../io.js'
import {createSandbox, destroySandbox} from '../../sandbox/sandbox.js'
import {closeAll, connectHosts, loadCluster, usedHosts} from '../cluster.js'
import {classifyHealth, runHealthChecks} from '../health.js'
import {installService} from '../install.js'
import {findUpgradePath} from './path.js'
import {checkData, seedData, type DataCheck} from './seed.js'
import {upgradeService, type UpgradeResult} from './upgrade.js'

export interface TestUpgradeOptions {
  from: string
  to: string
  /** Place Kafka on 3 hosts even when both releases have the same Kafka. */
  kafka?: boolean
  /** Leave the sandbox running (for a look after a failure). */
  keep?: boolean
  io: IoHost
  /** Passed on to the upgrade (IMCTL_TEST_UPGRADE_FAIL_AFTER), to see a rollback. */
  failAfter?: string
}

export interface TestPhase {
  phase: 'sandbox' | 'install' | 'seed' | 'upgrade' | 'check' | 'destroy'
  ok: boolean
  ms: number
  detail: string
}

export interface TestUpgradeResult {
  from: string
  to: string
  path: string[]
  sandbox: string
  kafka: boolean
  passed: boolean
  phases: TestPhase[]
  upgrade?: Pick<UpgradeResult, 'status' | 'release' | 'failure' | 'downtime' | 'timeline' | 'ms'>
  data: DataCheck[]
  /** Where the sandbox is, when kept. */
  kept?: string
  ms: number
}

/**
 * `imctl test upgrade --from A --to B`, for CI: a throwaway sandbox installed with A, seeded
 * (users, an archived conversation, Redis keys, Kafka records when Kafka is placed), upgraded
 * to B with `imctl upgrade`, every seeded thing read back, health; the sandbox is removed
 * whatever happened (unless keep). Passed only if the upgrade reached B and everything checks.
 */
export async function testUpgradeService(opts: TestUpgradeOptions): Promise<TestUpgradeResult> {
  const t0 = Date.now()
  for (const r of [opts.from, opts.to]) if (!listReleases().includes(r)) throw new UserError(`unknown release ${JSON.stringify(r)}`, [`Use one of: ${listReleases().join(', ')}.`])
  const path = findUpgradePath(opts.from, opts.to, listReleases(), loadManifest)
  if (!path || path.length < 2) throw new UserError(`no upgrade path from ${opts.from} to ${opts.to}`, ['See `imctl upgrade plan` and each release\'s upgradeFrom in manifests/.'])
  const kVersion = (r: string) => loadManifest(r).artifacts?.kafka?.version
  const kafka = Boolean(opts.kafka) || (kVersion(opts.from) !== undefined && kVersion(opts.from) !== kVersion(opts.to))
  const name = `upg-${randomBytes(3).toString('hex')}`
  const dir = mkdtempSync(join(tmpdir(), `imctl-${name}-`))
  const result: TestUpgradeResult = {from: opts.from, to: opts.to, path, sandbox: name, kafka, passed: false, phases: [], data: [], ms: 0}
  const phase = async <T>(p: TestPhase['phase'], fn: () => Promise<{value: T; detail: string}>): Promise<T> => {
    const t = Date.now()
    opts.io.notify({type: 'info', message: `test upgrade: ${p}`})
    try {
      const {value, detail} = await fn()
      result.phases.push({phase: p, ok: true, ms: Date.now() - t, detail})
      return value
    } catch (e) {
      result.phases.push({phase: p, ok: false, ms: Date.now() - t, detail: (e as Error).message})
      throw e
    }
  }
  try {
    const configFile = await phase('sandbox', async () => {
      const sb = await createSandbox({name, hosts: kafka ? 3 : 1, dir, release: opts.from, io: opts.io})
      if (kafka) {
        writeFileSync(sb.configFile, `${readFileSync(sb.configFile, 'utf8')}  kafka: {hosts: [h1, h2, h3]}\n`)
        ensureSecrets(sb.secretsFile, ['kafka'])
      }
      return {value: sb.configFile, detail: `${sb.hosts.length} hosts on ${sb.network}${kafka ? ', Kafka on all three' : ''}`}
    })
    await phase('install', async () => {
      const r = await installService({configFile, io: opts.io, command: `imctl test upgrade (install ${opts.from})`})
      if (r.failed || r.skipped) throw new Error(`install of ${opts.from} failed: ${r.applied.filter((a) => a.status === 'failed').map((a) => `${a.host}: ${a.what}: ${a.error}`).join('; ')}`)
      return {value: r, detail: `${opts.from}: ${r.changed} steps`}
    })
    const model = loadCluster(configFile)
    const conns = await connectHosts(model.config, usedHosts(model), {io: opts.io})
    let seeded
    try {
      seeded = await phase('seed', async () => {
        const s = await seedData(model, conns, {messages: 10, keys: 50, records: kafka ? 200 : 0})
        return {value: s, detail: `${s.users.length} users, ${s.messages.length} archived messages, ${Object.keys(s.redis).length} Redis keys${s.kafka.length ? `, ${s.kafka.length} Kafka records` : ''}`}
      })
    } finally {
      await closeAll(conns)
    }
    const up = await phase('upgrade', async () => {
      const r = await upgradeService({configFile, to: opts.to, backupTo: join(dir, 'backups'), keyFile: join(dir, 'backup-key'), io: opts.io, ...(opts.failAfter ? {failAfter: opts.failAfter} : {})})
      result.upgrade = {status: r.status, release: r.release, ...(r.failure ? {failure: r.failure} : {}), downtime: r.downtime, timeline: r.timeline, ms: r.ms}
      if (r.status !== 'upgraded') throw new Error(`upgrade ${r.status}${r.failure ? ` at ${r.failure.at}: ${r.failure.error}` : ''}`)
      return {value: r, detail: `${r.path.join(' -> ')} in ${(r.ms / 1000).toFixed(0)} s`}
    }).catch(() => undefined)
    // The data must be intact whether the upgrade went through or was rolled back.
    await phase('check', async () => {
      const after = loadCluster(configFile)
      const c2 = await connectHosts(after.config, usedHosts(after), {io: opts.io})
      try {
        result.data = await checkData(after, c2, seeded)
        const health = classifyHealth(await runHealthChecks(after, c2, 20))
        result.data.push({what: `health on ${after.config.release}`, ok: health.status === 'healthy', detail: health.status === 'healthy' ? `${health.checks.length} checks passed` : health.checks.filter((h) => !h.ok).map((h) => `${h.host} ${h.component} ${h.check}: ${h.detail}`).join('; ')})
      } finally {
        await closeAll(c2)
      }
      const bad = result.data.filter((d) => !d.ok)
      if (bad.length) throw new Error(bad.map((d) => `${d.what}: ${d.detail}`).join('; '))
      return {value: null, detail: `${result.data.length} checks passed on ${after.config.release}`}
    })
    result.passed = up?.status === 'upgraded'
  } catch {
    result.passed = false
  } finally {
    if (opts.keep) result.kept = dir
    else await phase('destroy', async () => {
      const d = await destroySandbox(name, dir)
      return {value: d, detail: `${d.removedContainers.length} containers, network ${d.removedNetwork ? 'removed' : 'gone already'}`}
    }).catch(() => undefined)
  }
  return {...result, ms: Date.now() - t0}
}
