/**
 * Proof that an offline bundle installs a release on a host with no network:
 *   node --import tsx scripts/prove-offline-bundle.ts [--release R] [--bundle FILE] [--keep]
 * (after `npm run build`; root, podman, scripts/host-prereqs.sh). It
 *  1. makes the bundle with `imctl bundle create` (or takes --bundle) and checks it with `bundle verify`;
 *  2. flips one byte of a copy and shows that `bundle verify` names the damaged file;
 *  3. opens it (verify + extract into a cache) as the install side will;
 *  4. starts a sandbox host on an INTERNAL network, shows its own apt cannot reach anything,
 *     copies the bundle's repository in and runs src/plan/offline.ts's commands there;
 *  5. checks every package of the release is installed at the bundle's version, and that apt
 *     started no network method (a tripwire wraps apt's http/ftp/mirror/rsh methods);
 *  6. does the same in a bare minbase container with no network at all (--network none).
 * Prints sizes and timings, and writes them to WORK/proof.json. Everything it starts it removes
 * (with --keep: the sandbox, the bundle and its extracted copy stay). About 2 to 3 minutes here.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {closeSync, copyFileSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync, writeSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {parseArgs} from 'node:util'
import {openBundle} from '../src/ops/bundle/open.js'
import {installPackagesOffline, offlineAptOptions} from '../src/plan/offline.js'
import {wrapArgv, type RemoteCommand} from '../src/transport/command.js'
import {baseImageRef} from '../src/transport/engine-images.js'

const root = resolve(import.meta.dirname, '..')
const {values: flags} = parseArgs({options: {release: {type: 'string', default: 'ejabberd-23.01-debian12'}, bundle: {type: 'string'}, keep: {type: 'boolean', default: false}, name: {type: 'string', default: 'bt'}}})
const release = flags.release!
const work = mkdtempSync(join(tmpdir(), 'imctl-prove-bundle-'))
const sandboxDir = join(work, 'sandbox')
const REPO = '/var/lib/imctl/bundle/debs'
const timings: Record<string, number> = {}
const facts: Record<string, unknown> = {release, work}

function log(m: string): void {
  process.stdout.write(`${m}\n`)
}

function fail(m: string): never {
  log(`FAILED: ${m}`)
  process.exit(1)
}

async function timed<T>(what: string, f: () => T | Promise<T>): Promise<T> {
  const t = Date.now()
  const r = await f()
  timings[what] = Math.round((Date.now() - t) / 100) / 10
  log(`  [${timings[what]} s] ${what}`)
  return r
}

function imctl(args: string[]): {status: number | null; json: any; stderr: string} {
  const r = spawnSync(process.execPath, [join(root, 'bin/run.js'), ...args, '--json'], {cwd: root, encoding: 'utf8', env: {...process.env, CI: 'true', IMCTL_CACHE_DIR: join(work, 'cache')}, maxBuffer: 64 << 20})
  let json: any = null
  try {
    json = JSON.parse(r.stdout)
  } catch {
    fail(`imctl ${args.join(' ')} printed no JSON:\n${r.stdout}\n${r.stderr}`)
  }
  return {status: r.status, json, stderr: r.stderr}
}

/** Runs argv in the sandbox host's container (root), with stdin; returns status and output. */
function onHost(container: string, argv: string[], stdin?: string | Buffer): {status: number | null; out: string} {
  const r = spawnSync('podman', ['exec', '-i', container, ...argv], {input: stdin ?? '', encoding: 'utf8', maxBuffer: 64 << 20})
  return {status: r.status, out: `${r.stdout}${r.stderr}`}
}

function sh(container: string, script: string): string {
  const r = onHost(container, ['sh', '-c', script])
  if (r.status !== 0) fail(`on ${container}: ${script}\n${r.out}`)
  return r.out
}

/** Offset of a tar entry's data in the file (512-byte headers, ustar sizes in octal). */
function dataOffset(file: string, name: string): {offset: number; size: number} {
  const fd = openSync(file, 'r')
  const header = Buffer.alloc(512)
  try {
    let off = 0
    for (;;) {
      if (readSync(fd, header, 0, 512, off) < 512) break
      const entry = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '')
      const prefix = header.subarray(345, 500).toString('utf8').replace(/\0.*$/s, '')
      const size = parseInt(header.subarray(124, 136).toString('utf8').replace(/\0.*$/s, '').trim() || '0', 8)
      if (!entry) break
      if ((prefix ? `${prefix}/${entry}` : entry) === name) return {offset: off + 512, size}
      off += 512 + Math.ceil(size / 512) * 512
    }
  } finally {
    closeSync(fd)
  }
  return fail(`no ${name} in ${file}`)
}

/** Runs built commands on a container as root, stopping at the first failure. */
function runAll(container: string, cmds: RemoteCommand[]): void {
  for (const cmd of cmds) {
    const r = onHost(container, wrapArgv(cmd, {isRoot: true}), cmd.stdin as string | undefined)
    if (r.status !== 0) fail(`${cmd.description}: exit ${r.status}\n${r.out.split('\n').slice(-20).join('\n')}`)
    log(`    ok: ${cmd.description}`)
  }
}

/** dpkg's view of the release's packages; each must be installed at the version the bundle carries. */
function installedAsBundled(container: string, packages: {name: string; version: string}[]): string {
  const query = sh(container, `dpkg-query -W -f '\${Package} \${Version} \${db:Status-Status}\\n' ${packages.map((p) => p.name).join(' ')}`)
  for (const p of packages) {
    if (!query.includes(`${p.name} ${p.version} installed`)) fail(`${p.name} ${p.version} is not installed on ${container}:\n${query}`)
  }
  return query
}

async function main(): Promise<void> {
  log(`Offline bundle proof for ${release} (work folder ${work})`)

  // 1. make and verify the bundle
  const bundle = flags.bundle ? resolve(flags.bundle) : join(work, `${release}.bundle`)
  if (!flags.bundle) {
    const made = await timed('bundle create', () => imctl(['bundle', 'create', '--release', release, '--out', bundle]))
    if (made.status !== 0) fail(`bundle create: ${JSON.stringify(made.json.error)}`)
    facts.create = made.json.result
    log(`  ${made.json.result.files} files, ${made.json.result.size} bytes, sha256 ${made.json.result.sha256}`)
    for (const g of made.json.result.groups) log(`    ${g.group}: ${g.files} files, ${g.bytes} bytes`)
  }
  const verified = await timed('bundle verify', () => imctl(['bundle', 'verify', bundle]))
  if (verified.status !== 0 || !verified.json.result.ok) fail(`bundle verify: ${JSON.stringify(verified.json)}`)
  facts.verify = verified.json.result
  const bundleJson = JSON.parse(execFileSync('tar', ['-xOf', bundle, 'bundle.json'], {encoding: 'utf8', maxBuffer: 64 << 20}))
  const packages: {name: string; version: string}[] = bundleJson.debs.packages

  // 2. one flipped byte in a copy: verify names the file
  const debs = bundleJson.groups.find((g: {kind: string}) => g.kind === 'debs')
  const victim = `debs/${[...debs.files].sort((a: {size: number}, b: {size: number}) => b.size - a.size)[0].path}`
  const damaged = join(work, 'damaged.bundle')
  await timed('copy the bundle', () => copyFileSync(bundle, damaged))
  const {offset, size} = dataOffset(damaged, victim)
  const at = offset + Math.floor(size / 2)
  const fd = openSync(damaged, 'r+')
  const one = Buffer.alloc(1)
  readSync(fd, one, 0, 1, at)
  one[0] = one[0]! ^ 0x01
  writeSync(fd, one, 0, 1, at)
  closeSync(fd)
  const bad = await timed('bundle verify of the damaged copy', () => imctl(['bundle', 'verify', damaged]))
  const message: string = bad.json.error?.message ?? ''
  if (bad.status !== 1 || !message.includes(`damaged: ${victim}:`)) fail(`verify of a damaged copy: exit ${bad.status}, ${message}`)
  log(`  flipped byte ${at} (inside ${victim}); verify exit ${bad.status}: ${message.split('\n').slice(0, 2).join(' | ')}`)
  facts.damaged = {file: victim, byte: at, exitCode: bad.status, message}
  rmSync(damaged)

  // 3. open it as the install side will (verify + extract once, then reuse)
  const io = {notify: () => {}, confirmHostKey: async () => false}
  const cacheDir = join(work, 'cache', 'bundles')
  const opened = await timed('openBundle (verify and extract)', () => openBundle(bundle, io, {cacheDir}))
  await timed('openBundle again (stamp reused)', () => openBundle(bundle, io, {cacheDir}))

  // 4. a host with no route out
  imctl(['sandbox', 'destroy', '--name', flags.name!, '--dir', sandboxDir])
  const sb = await timed('sandbox create --offline (1 host)', () => imctl(['sandbox', 'create', '--name', flags.name!, '--hosts', '1', '--offline', '--dir', sandboxDir]))
  if (sb.status !== 0) fail(`sandbox create: ${JSON.stringify(sb.json.error)}`)
  const host: string = sb.json.result.hosts[0].container
  try {
    // A tripwire on every apt method that talks to a network: it records its use, then runs the real one.
    sh(
      host,
      'cd /usr/lib/apt/methods && for m in http ftp mirror rsh; do [ -f "$m" ] && [ ! -L "$m" ] || continue; mv "$m" "$m.real";' +
        ` printf '#!/bin/bash\\necho "$0" >> /var/tmp/apt-network-methods\\nexec -a "$0" /usr/lib/apt/methods/%s.real "$@"\\n' "$m" > "$m"; chmod 755 "$m"; done`,
    )
    const plain = await timed("the host's own apt-get update (must fail: no route out)", () => onHost(host, ['timeout', '60', 'apt-get', 'update']))
    const tripped = sh(host, 'cat /var/tmp/apt-network-methods 2>/dev/null; rm -f /var/tmp/apt-network-methods').trim()
    const plainFailed = plain.status !== 0 || /^(Err|W: Failed|E: )/m.test(plain.out)
    if (!plainFailed || !tripped) fail(`the host reached a network source, or the tripwire did not fire:\n${plain.out}\ntripwire: ${tripped}`)
    log(`  host apt-get update: ${plain.out.split('\n').filter((l) => /^(Err|W:|E:)/.test(l))[0] ?? plain.out.trim().split('\n')[0]}`)
    log(`  tripwire saw: ${tripped.split('\n').join(', ')}`)
    facts.hostOwnApt = {exitCode: plain.status, methods: tripped.split('\n')}
    const listsBefore = sh(host, "find /var/lib/apt/lists -mindepth 1 -printf '%P %s %T@\\n' | sort")

    // 5. the bundle's repository in, the builders' commands run
    sh(host, `mkdir -p ${REPO.replace(/\/[^/]+$/, '')}`)
    await timed(`podman cp the debs folder (${opened.debs.files.length} files) into the host`, () => execFileSync('podman', ['cp', opened.debs.dir, `${host}:${REPO}`]))
    const names = packages.map((p) => p.name)
    const cmds = installPackagesOffline(REPO, names)
    await timed(`install ${names.length} packages from the bundle (${cmds.length} commands)`, () => runAll(host, cmds))

    // What apt did: only file: sources, no network method, the host's own lists untouched.
    const verbose = onHost(host, ['apt-get', 'update', ...offlineAptOptions()])
    const fetched = verbose.out.split('\n').filter((l) => /^(Get|Hit|Ign|Err):/.test(l))
    const net = fetched.filter((l) => !l.includes(` file:${REPO} `))
    const trippedAfter = sh(host, 'cat /var/tmp/apt-network-methods 2>/dev/null || true').trim()
    const listsAfter = sh(host, "find /var/lib/apt/lists -mindepth 1 -printf '%P %s %T@\\n' | sort")
    if (net.length || trippedAfter || listsAfter !== listsBefore) fail(`apt went beyond the bundle:\n${net.join('\n')}\ntripwire: ${trippedAfter}\nlists: ${listsAfter}`)
    log(`  apt's sources during the install: ${[...new Set(fetched.map((l) => l.split(' ')[1]))].join(', ')}; network methods started: none; /var/lib/apt/lists unchanged`)
    facts.aptSources = fetched

    const query = installedAsBundled(host, packages)
    const hostUpgraded = sh(host, "grep '^Upgrade:' /var/log/apt/history.log || true").trim()
    log(`  upgraded on the host from the bundle: ${hostUpgraded.replace(/^Upgrade: /, '') || 'nothing'}`)
    facts.hostUpgraded = hostUpgraded
    log(`  installed, at the bundle's versions:\n${query.trim().split('\n').map((l) => `    ${l}`).join('\n')}`)
    const java = onHost(host, ['java', '-version']).out.split('\n')[0]
    const active = onHost(host, ['systemctl', 'is-active', 'postgresql@15-main', 'redis-server', 'ejabberd']).out.trim().split('\n')
    log(`  java -version: ${java}; postgresql@15-main, redis-server, ejabberd: ${active.join(', ')}`)
    facts.installed = query.trim().split('\n')
    facts.services = active
    facts.java = java
  } finally {
    if (!flags.keep) imctl(['sandbox', 'destroy', '--name', flags.name!, '--dir', sandboxDir])
  }

  // 6. the least a Debian 12 host can be: debootstrap's minbase, with no network interface at all
  const bare = `imctl-sbx-${flags.name}-minbase`
  spawnSync('podman', ['rm', '-f', bare])
  execFileSync('podman', ['run', '-d', '--network', 'none', '--name', bare, '-v', `${opened.debs.dir}:${REPO}:ro`, baseImageRef, 'sleep', 'infinity'])
  try {
    const cmds = installPackagesOffline(REPO, packages.map((p) => p.name))
    await timed('install the same packages in a bare minbase container (--network none)', () => runAll(bare, cmds))
    const query = installedAsBundled(bare, packages)
    const upgraded = sh(bare, "grep '^Upgrade:' /var/log/apt/history.log || true").trim()
    log(`  minbase: all ${packages.length} installed at the bundle's versions; upgraded from the bundle: ${upgraded.replace(/^Upgrade: /, '') || 'nothing'}`)
    facts.minbase = {installed: query.trim().split('\n'), upgraded}
  } finally {
    spawnSync('podman', ['rm', '-f', '-t', '0', bare])
  }

  facts.timings = timings
  facts.sizes = {bundleBytes: statSync(bundle).size, groups: verified.json.result.groups, files: verified.json.result.files}
  writeFileSync(join(work, 'proof.json'), JSON.stringify(facts, null, 2))
  log(`PROVED. Sizes and timings in ${join(work, 'proof.json')}`)
  // The bundle and its extracted copy are big: kept only with --keep (a --bundle given is never removed).
  if (!flags.keep) {
    rmSync(join(work, 'cache'), {recursive: true, force: true})
    if (!flags.bundle) rmSync(bundle, {force: true})
  }
}

main().catch((e) => fail((e as Error).stack ?? String(e)))
