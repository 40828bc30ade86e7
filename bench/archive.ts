/**
 * Benchmark: `imctl archive run` against the raw path on the same data, in the same
 * run (these machines are noisy: medians and the median of per-run ratios).
 *
 *   imctl:  archive run --older-than 90d (export through gzip to MinIO, read back, compare, delete in batches)
 *   raw:    on the database host, psql COPY (SELECT row_to_json …) TO STDOUT | gzip | mc pipe into the same bucket
 *
 * The raw path neither verifies nor deletes: the ratio is what the proof costs.
 * Each run seeds the table afresh (not timed); the raw path goes first, as it leaves the rows in place.
 *
 * Usage: node --import tsx bench/archive.ts [--runs N] [--rows N]   (needs root, the sandbox prerequisites and the MinIO artifact)
 */
import {execFile} from 'node:child_process'
import {cpus, hostname, totalmem} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {seedArchiveSql} from '../test/e2e/archive-seed.js'
import {createSandbox, editConfig, imctl} from '../test/e2e/harness.js'

const run = promisify(execFile)
const arg = (name: string, def: number) => Number(process.argv[process.argv.indexOf(name) + 1]) || def
const runs = arg('--runs', 3)
const rows = arg('--rows', 300_000)
const DOMAIN = 'bench-arc.imctl.test'

const sb = await createSandbox('bench-arc', 1)
const ssh = ['-i', join(sb.dir, 'id_ed25519'), '-o', `UserKnownHostsFile=${join(sb.dir, 'known_hosts')}`, '-o', 'BatchMode=yes', `root@${sb.hosts[0]!.address}`]
const onHost = async (cmd: string, input?: string) => {
  const p = run('ssh', [...ssh, cmd], {maxBuffer: 1 << 26})
  if (input !== undefined) {
    p.child.stdin!.end(input)
  }
  return (await p).stdout.trim()
}
const timeIt = async (fn: () => Promise<unknown>) => {
  const t0 = performance.now()
  await fn()
  return (performance.now() - t0) / 1000
}

try {
  editConfig(sb.config, (t) => `${t}  minio:\n    hosts: [h1]\n`)
  const gen = await imctl(['secrets', 'generate', '-c', sb.config, '--json'])
  if (gen.exitCode !== 0) throw new Error(gen.stdout)
  const inst = await imctl(['install', '-c', sb.config, '--json'])
  if (inst.exitCode !== 0) throw new Error(inst.stdout)
  const mc = await onHost('ls -d /opt/imctl/minio-*/mc | head -1')
  const psql = 'runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d ejabberd'
  const r = {imctl: [] as number[], raw: [] as number[]}
  let moved = ''
  for (let i = 1; i <= runs; i++) {
    await onHost(psql, 'TRUNCATE public.archive;\n' + seedArchiveSql({rows, days: 365, domain: DOMAIN, other: 'other.imctl.test'}) + 'VACUUM ANALYZE public.archive;\n')
    const cutoff = (Date.now() - 90 * 86_400_000) * 1000
    r.raw.push(
      await timeIt(() =>
        onHost(`set -o pipefail; ${psql} -c "COPY (SELECT row_to_json(a) FROM public.archive a WHERE timestamp < ${cutoff} ORDER BY server_host, timestamp, id) TO STDOUT" | gzip | ${mc} --config-dir /etc/imctl/minio-mc -q pipe imctl/imctl-archive/bench/raw-${i}.jsonl.gz`),
      ),
    )
    r.imctl.push(
      await timeIt(async () => {
        const x = await imctl(['archive', 'run', '--older-than', '90d', '-c', sb.config, '--json'])
        if (x.exitCode !== 0) throw new Error(x.stdout + x.stderr)
        moved = `${x.json.result.rows} rows, ${x.json.result.objects} objects, ${(x.json.result.bytes / 2 ** 20).toFixed(1)} MiB gzipped`
      }),
    )
    process.stderr.write(`run ${i}/${runs}: ${JSON.stringify({raw: r.raw.at(-1), imctl: r.imctl.at(-1)})}\n`)
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const fmt = (x: number) => x.toFixed(2)
  console.log(`imctl archive benchmark — ${new Date().toISOString()} — ${hostname()}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`)
  console.log(`data: ${rows} rows seeded over 365 days, moved per run: ${moved}; runs: ${runs}; seconds, median [min–max]`)
  console.log(
    `${'archive run (export, verify, delete) vs COPY | gzip | mc pipe'.padEnd(62)} imctl ${fmt(median(r.imctl))} [${fmt(Math.min(...r.imctl))}–${fmt(Math.max(...r.imctl))}]  raw ${fmt(median(r.raw))} [${fmt(Math.min(...r.raw))}–${fmt(Math.max(...r.raw))}]  ratio ${fmt(median(r.imctl.map((x, i) => x / r.raw[i]!)))}`,
  )
} finally {
  await sb.destroy()
}
