/**
 * Benchmark: the full stack (PostgreSQL, Redis, ejabberd, Kafka on 3 hosts, MinIO on 2
 * with 2 drives each) installed from an offline bundle on fresh 3-host sandboxes whose
 * network has no route out, split into two phases, each against a baseline measured in
 * the same run (these machines are noisy: we report medians and ratios, never a time).
 *
 *   upload:   the sum of a host's `upload …` steps (imctl's JSON, `ms`), the max over hosts
 *             (hosts are parallel lanes)
 *             vs. the same bundle folders to the same hosts, `tar -cf - … | ssh host tar -xf -`, in parallel
 *   install:  imctl's wall time minus its upload phase
 *             vs. plain apt-get update + install of the same packages from that uploaded copy,
 *             apt seeing only it (the options of src/plan/offline.ts), all hosts in parallel
 *
 * The bundle is made once at the start; its time is reported, not compared.
 *
 * Usage: node --import tsx bench/bundle-install.ts [--runs N] [--json]
 *        (needs root, the sandbox prerequisites, and IMCTL_CACHE_DIR with the artifacts built)
 */
import {execFile, spawn} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {cpus, hostname, loadavg, tmpdir, totalmem} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {bundleCacheDir} from '../src/ops/bundle/open.js'
import {OFFLINE_LISTS, OFFLINE_SOURCES, offlineAptOptions, offlineSourcesList} from '../src/plan/offline.js'
import {shellJoin, shellQuote} from '../src/transport/command.js'
import {editConfig, imctl} from '../test/e2e/harness.js'
import {median, timeIt} from './stats.js'

const run = promisify(execFile)
const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 3
const asJson = process.argv.includes('--json')
const RELEASE = 'ejabberd-23.01-debian12'
const DRIVES = ['/srv/minio/d1', '/srv/minio/d2']
const FULL_STACK = `  kafka:\n    hosts: [h1, h2, h3]\n  minio:\n    hosts: [h2, h3]\n    drives: [${DRIVES.join(', ')}]\n`
/** Where the baseline unpacks the bundle's folders on each host. */
const BASELINE_DIR = '/var/tmp/imctl-bench-bundle'
const BASELINE_DOES_NOT = [
  'check any file against the bundle\'s sha256 list, or resume an interrupted upload',
  'connect through imctl, take the lock, observe the hosts or plan',
  'verify the bundle file (imctl hashes it at every install)',
  'write any configuration, create users or directories, format Kafka\'s storage',
  'enable or start PostgreSQL, Redis, ejabberd, Kafka or MinIO, or wait for them to be healthy',
  'create the XMPP admin account, MinIO buckets, or write the audit log',
]

interface BenchSandbox {
  name: string
  dir: string
  config: string
  hosts: {name: string; address: string}[]
}

/** What imctl's plan uploads and installs on each host: the baseline does exactly that. */
interface HostWork {
  host: string
  address: string
  /** Folders of the extracted bundle (`debs`, `artifacts/<name>-<version>`). */
  groups: string[]
  packages: string[]
}

interface Row {
  first: 'imctl' | 'baseline'
  imctlWall: number
  imctlUpload: number
  imctlInstall: number
  baselineUpload: number
  baselineInstall: number
  uploadPerHost: Record<string, number>
  /** What the baseline pushed to and installed on each host (from imctl's plan). */
  baselineWork: Record<string, {folders: string[]; packages: number}>
}


const sshArgs = (sb: BenchSandbox, address: string) => ['-i', join(sb.dir, 'id_ed25519'), '-o', `UserKnownHostsFile=${join(sb.dir, 'known_hosts')}`, '-o', 'BatchMode=yes', `root@${address}`]

async function createOfflineSandbox(name: string, made: BenchSandbox[]): Promise<BenchSandbox> {
  const dir = mkdtempSync(join(tmpdir(), `imctl-bench-${name}-`))
  const sb: BenchSandbox = {name, dir, config: join(dir, 'cluster.yaml'), hosts: []}
  made.push(sb) // registered before it exists, so a half-made sandbox is destroyed too
  // A previous run that died may have left this sandbox behind.
  await imctl(['sandbox', 'destroy', '--name', name, '--json'])
  const r = await imctl(['sandbox', 'create', '--name', name, '--hosts', '3', '--offline', '--drives', DRIVES.join(','), '--dir', dir, '--json'])
  if (r.exitCode !== 0) throw new Error(`sandbox create ${name} failed: ${r.stdout}\n${r.stderr}`)
  sb.config = r.json.result.configFile
  sb.hosts = r.json.result.hosts
  editConfig(sb.config, (t) => t + FULL_STACK)
  const gen = await imctl(['secrets', 'generate', '-c', sb.config, '--json'])
  if (gen.exitCode !== 0) throw new Error(`secrets generate failed: ${gen.stdout}\n${gen.stderr}`)
  return sb
}

async function destroyAll(made: BenchSandbox[]): Promise<void> {
  for (const sb of made) {
    const r = await imctl(['sandbox', 'destroy', '--name', sb.name, '--dir', sb.dir, '--json']).catch((e: Error) => ({exitCode: 1, stdout: e.message}))
    if (r.exitCode !== 0) process.stderr.write(`could not destroy sandbox ${sb.name}: ${r.stdout}\n`)
    rmSync(sb.dir, {recursive: true, force: true})
  }
  made.length = 0
}

/** Read-only `imctl plan --bundle` on the baseline's hosts: which folders and packages each one gets. */
async function planWork(sb: BenchSandbox, bundle: string, bundleDir: string): Promise<HostWork[]> {
  const r = await imctl(['plan', '-c', sb.config, '--bundle', bundle, '--accept-new-host-keys', '--json'], {timeoutMs: 900_000})
  if (r.exitCode !== 0) throw new Error(`plan failed: ${r.stdout}\n${r.stderr}`)
  const steps: {host: string; what: string}[] = r.json.result.steps
  return sb.hosts.map((h) => {
    const work: HostWork = {host: h.name, address: h.address, groups: [], packages: []}
    for (const s of steps.filter((x) => x.host === h.name)) {
      const up = /^upload (\S+) (\S+) \(\d+ files\) to \S+$/.exec(s.what)
      if (up) {
        const group = up[1] === 'debs' ? 'debs' : `artifacts/${up[1]}-${up[2]}`
        if (!existsSync(join(bundleDir, group))) throw new Error(`${h.name}: imctl uploads ${up[1]} ${up[2]}, but ${join(bundleDir, group)} does not exist`)
        work.groups.push(group)
      }
      const inst = /^install (.+) from the bundle$/.exec(s.what)
      if (inst) work.packages.push(...inst[1]!.split(' '))
    }
    if (work.packages.length && !work.groups.includes('debs')) throw new Error(`${h.name}: packages to install but no upload of the bundle's repository in the plan`)
    return work
  })
}

/** `tar -C DIR -cf - GROUPS | ssh root@host 'mkdir -p X && tar -C X -xf -'` */
function pushFolders(sb: BenchSandbox, bundleDir: string, w: HostWork): Promise<void> {
  return new Promise((resolve, reject) => {
    const tar = spawn('tar', ['-C', bundleDir, '-cf', '-', ...w.groups], {stdio: ['ignore', 'pipe', 'inherit']})
    const ssh = spawn('ssh', [...sshArgs(sb, w.address), `mkdir -p ${BASELINE_DIR} && tar -C ${BASELINE_DIR} -xf -`], {stdio: ['pipe', 'ignore', 'inherit']})
    tar.stdout.pipe(ssh.stdin)
    let pending = 2
    const done = (what: string) => (code: number | null) => {
      if (code !== 0) reject(new Error(`${w.host}: ${what} exited ${code}`))
      else if (--pending === 0) resolve()
    }
    tar.on('error', reject).on('close', done('tar'))
    ssh.on('error', reject).on('close', done('ssh tar -x'))
  })
}

/** The same apt calls imctl makes (apt sees only the uploaded repository), and nothing else. */
function aptFromUpload(w: HostWork): string {
  const repo = `${BASELINE_DIR}/debs`
  return [
    shellJoin(['mkdir', '-p', `${OFFLINE_LISTS}/partial`]),
    `printf %s ${shellQuote(offlineSourcesList(repo))} > ${OFFLINE_SOURCES}`,
    shellJoin(['apt-get', 'update', '-qq', ...offlineAptOptions()]),
    shellJoin(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...offlineAptOptions(), ...w.packages]) + ' >/dev/null',
  ].join(' && ')
}

async function timeImctl(sb: BenchSandbox, bundle: string): Promise<Pick<Row, 'imctlWall' | 'imctlUpload' | 'imctlInstall' | 'uploadPerHost'>> {
  let result: any
  const wall = await timeIt(async () => {
    const r = await imctl(['install', '-c', sb.config, '--bundle', bundle, '--accept-new-host-keys', '--json'], {timeoutMs: 1_800_000})
    if (r.exitCode !== 0 || r.json.result?.failed || r.json.result?.skipped) throw new Error(`install failed (exit ${r.exitCode}): ${r.stdout}\n${r.stderr.slice(-2000)}`)
    result = r.json.result
  })
  const applied: {host: string; what: string; ms?: number}[] = result.applied
  if (applied.some((s) => typeof s.ms !== 'number')) throw new Error('this imctl reports no step times (`ms` in `applied`): run `npm run build` on a tree that has them')
  const uploadPerHost: Record<string, number> = {}
  for (const s of applied) if (s.what.startsWith('upload ')) uploadPerHost[s.host] = (uploadPerHost[s.host] ?? 0) + s.ms! / 1000
  if (!Object.keys(uploadPerHost).length) throw new Error('the install uploaded nothing: were the hosts fresh?')
  // Lanes run in parallel, so the upload phase is the slowest host's uploads. Other hosts'
  // non-upload steps may overlap it: "install" is wall minus that, as one would read a timeline.
  const upload = Math.max(...Object.values(uploadPerHost))
  return {imctlWall: wall, imctlUpload: upload, imctlInstall: wall - upload, uploadPerHost}
}

async function timeBaseline(sb: BenchSandbox, work: HostWork[], bundleDir: string): Promise<Pick<Row, 'baselineUpload' | 'baselineInstall'>> {
  const withFiles = work.filter((w) => w.groups.length)
  const baselineUpload = await timeIt(() => Promise.all(withFiles.map((w) => pushFolders(sb, bundleDir, w))))
  const baselineInstall = await timeIt(() =>
    Promise.all(work.filter((w) => w.packages.length).map((w) => run('ssh', [...sshArgs(sb, w.address), aptFromUpload(w)], {maxBuffer: 64 << 20}))),
  )
  return {baselineUpload, baselineInstall}
}

/**
 * One run: two fresh offline sandboxes, both made (and planned) before anything is timed,
 * because making one while the other is timed would take the same cores. imctl installs
 * on one, the baseline works on the other (on the same hosts it would find everything
 * already there). Which side goes first alternates between runs, so drift in the machine's
 * load and a warm page cache do not always favour the same side.
 */
async function measure(i: number, bundle: string, bundleDir: string): Promise<Row> {
  const made: BenchSandbox[] = []
  try {
    const a = await createOfflineSandbox(`bench-bun-a${i}`, made)
    const b = await createOfflineSandbox(`bench-bun-b${i}`, made)
    const work = await planWork(b, bundle, bundleDir)
    const baselineWork = Object.fromEntries(work.map((w) => [w.host, {folders: w.groups, packages: w.packages.length}]))
    const first = i % 2 ? 'baseline' : 'imctl'
    if (first === 'baseline') {
      const base = await timeBaseline(b, work, bundleDir)
      return {first, ...base, ...(await timeImctl(a, bundle)), baselineWork}
    }
    const im = await timeImctl(a, bundle)
    return {first, ...im, ...(await timeBaseline(b, work, bundleDir)), baselineWork}
  } finally {
    await destroyAll(made)
  }
}

// Ctrl-C reaches imctl and ssh too; the run then fails and `finally` still destroys its
// sandboxes. A second Ctrl-C stops at once.
process.once('SIGINT', () => process.stderr.write('\ninterrupted: destroying the sandboxes (Ctrl-C again to stop at once)\n'))

const startedAt = new Date()
const load = loadavg()
const work = mkdtempSync(join(tmpdir(), 'imctl-bench-bundle-'))
let bundleDir = ''
let removeBundleDir = false
try {
  const bundle = join(work, `${RELEASE}.bundle`)
  let made: any
  const createSeconds = await timeIt(async () => {
    const r = await imctl(['bundle', 'create', '--release', RELEASE, '--out', bundle, '--json'], {timeoutMs: 1_800_000})
    if (r.exitCode !== 0) throw new Error(`bundle create failed: ${r.stdout}\n${r.stderr.slice(-2000)}`)
    made = r.json.result
  })
  // imctl extracts a bundle once into its cache, in a folder named by its sha256.
  bundleDir = join(bundleCacheDir(), String(made.sha256).slice(0, 16))
  removeBundleDir = !existsSync(bundleDir)
  process.stderr.write(`bundle: ${(made.size / 2 ** 20).toFixed(1)} MiB in ${createSeconds.toFixed(1)} s\n`)

  const rows: Row[] = []
  for (let i = 1; i <= runs; i++) {
    rows.push(await measure(i, bundle, bundleDir))
    process.stderr.write(`run ${i}/${runs}: ${JSON.stringify(rows.at(-1))}\n`)
  }

  const stats = (xs: number[]) => ({median: median(xs), min: Math.min(...xs), max: Math.max(...xs)})
  const phase = (im: (r: Row) => number, base: (r: Row) => number) => ({
    imctl: stats(rows.map(im)),
    baseline: stats(rows.map(base)),
    ratio: median(rows.map((r) => im(r) / base(r))),
  })
  const report = {
    date: startedAt.toISOString(),
    machine: {host: hostname(), cores: cpus().length, cpu: cpus()[0]?.model ?? '?', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadAverageAtStart: load.map((x) => Number(x.toFixed(2)))},
    bundle: {release: RELEASE, bytes: made.size, files: made.files, groups: made.groups, createSeconds: Number(createSeconds.toFixed(2))},
    runs,
    seconds: {
      upload: phase((r) => r.imctlUpload, (r) => r.baselineUpload),
      install: phase((r) => r.imctlInstall, (r) => r.baselineInstall),
      imctlWall: stats(rows.map((r) => r.imctlWall)),
    },
    baseline: {
      upload: `tar -cf - <the same bundle folders> | ssh root@host tar -xf -, every host in parallel`,
      install: `apt-get update + apt-get install of the same packages from that copy, apt seeing only it (src/plan/offline.ts), every host in parallel`,
      doesNot: BASELINE_DOES_NOT,
    },
    perRun: rows,
  }

  if (asJson) {
    console.log(JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(3)) : v), 2))
  } else {
    const fmt = (x: number) => x.toFixed(2)
    const range = (s: {median: number; min: number; max: number}) => `${fmt(s.median)} [${fmt(s.min)}–${fmt(s.max)}]`
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`
    const m = report.machine
    console.log(`imctl offline bundle install benchmark — ${report.date} — ${m.host}, ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, node ${m.node}, load average at start ${m.loadAverageAtStart.join(' ')}`)
    console.log(`bundle ${RELEASE}: ${mib(made.size)}, ${made.files} files (${made.groups.map((g: {group: string; bytes: number}) => `${g.group} ${mib(g.bytes)}`).join(', ')}); made once in ${fmt(createSeconds)} s (not compared)`)
    console.log(`runs: ${runs}; full stack on fresh offline 3-host sandboxes; seconds, median [min–max]; ratio = imctl / baseline, median of per-run ratios`)
    const line = (name: string, p: ReturnType<typeof phase>) => console.log(`${name.padEnd(50)} imctl ${range(p.imctl)}  baseline ${range(p.baseline)}  ratio ${fmt(p.ratio)}`)
    line('upload phase (vs tar | ssh tar -x per host)', report.seconds.upload)
    line('install phase (vs plain apt-get from the upload)', report.seconds.install)
    console.log(`${'whole install (upload + install), not compared'.padEnd(50)} imctl ${range(report.seconds.imctlWall)}`)
    console.log(`the baselines do not: ${BASELINE_DOES_NOT.join('; ')}`)
  }
} finally {
  rmSync(work, {recursive: true, force: true})
  if (removeBundleDir) rmSync(bundleDir, {recursive: true, force: true})
}
