/**
 * Benchmark: cold install and no-change re-run of the reference cluster on a
 * 3-host sandbox, each against a baseline measured in the same run, because
 * these machines are noisy: we report medians and the ratio imctl / baseline.
 *
 *   cold:    imctl install on fresh hosts
 *            vs. the same packages installed by plain `ssh host apt-get install`, all hosts in parallel
 *   re-run:  imctl install on the converged cluster (connect, lock, observe, plan: 0 changes)
 *            vs. one plain `ssh host true` per host, in parallel (the connection floor)
 *
 * Usage: node --import tsx bench/install.ts [--runs N]   (needs root and the sandbox prerequisites)
 */
import {execFile} from 'node:child_process'
import {cpus, hostname, totalmem} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {createSandbox, imctl, type Sandbox} from '../test/e2e/harness.js'
import {median, timeIt} from './stats.js'

const run = promisify(execFile)
const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 3
const PACKAGES: Record<string, string> = {
  h1: 'postgresql-15 postgresql-client-15',
  h2: 'redis-server',
  h3: 'ejabberd erlang-p1-pgsql erlang-redis-client',
}

function ssh(sb: Sandbox, host: string, cmd: string) {
  const h = sb.hosts.find((x) => x.name === host)!
  return run('ssh', ['-i', join(sb.dir, 'id_ed25519'), '-o', `UserKnownHostsFile=${join(sb.dir, 'known_hosts')}`, '-o', 'BatchMode=yes', `root@${h.address}`, cmd], {maxBuffer: 64 << 20})
}


async function coldPair(i: number): Promise<{imctl: number; baseline: number; rerun: number; floor: number}> {
  const a = await createSandbox(`bench-a${i}`)
  const b = await createSandbox(`bench-b${i}`)
  try {
    const baseline = await timeIt(() =>
      Promise.all(Object.entries(PACKAGES).map(([h, p]) => ssh(b, h, `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${p} >/dev/null`))),
    )
    const cold = await timeIt(async () => {
      const r = await imctl(['install', '-c', a.config, '--json'])
      if (r.exitCode !== 0) throw new Error(`install failed: ${r.stdout}`)
    })
    const rerun = await timeIt(async () => {
      const r = await imctl(['install', '-c', a.config, '--json'])
      if (r.json.result?.changes !== 0) throw new Error(`re-run was not converged: ${r.stdout}`)
    })
    const floor = await timeIt(() => Promise.all(Object.keys(PACKAGES).map((h) => ssh(a, h, 'true'))))
    return {imctl: cold, baseline, rerun, floor}
  } finally {
    await a.destroy()
    await b.destroy()
  }
}

const rows: Awaited<ReturnType<typeof coldPair>>[] = []
for (let i = 1; i <= runs; i++) {
  rows.push(await coldPair(i))
  process.stderr.write(`run ${i}/${runs}: ${JSON.stringify(rows.at(-1))}\n`)
}
const fmt = (x: number) => x.toFixed(2)
console.log(`imctl install benchmark — ${new Date().toISOString()} — ${hostname()}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`)
console.log(`runs: ${runs}; times in seconds, median [min–max]; ratio = imctl / baseline, median of per-run ratios`)
const line = (name: string, a: number[], b: number[]) => {
  const ratios = a.map((x, i) => x / b[i]!)
  console.log(`${name.padEnd(40)} imctl ${fmt(median(a))} [${fmt(Math.min(...a))}–${fmt(Math.max(...a))}]  baseline ${fmt(median(b))} [${fmt(Math.min(...b))}–${fmt(Math.max(...b))}]  ratio ${fmt(median(ratios))}`)
}
line('cold install (vs plain ssh apt-get)', rows.map((r) => r.imctl), rows.map((r) => r.baseline))
line('no-change re-run (vs ssh true per host)', rows.map((r) => r.rerun), rows.map((r) => r.floor))
