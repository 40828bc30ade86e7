/**
 * Benchmark: PostgreSQL backup and restore throughput of `imctl backup` against
 * pg_dump / pg_restore in directory format with the same parallel jobs, run directly
 * over SSH on the same data, in the same run (these machines are noisy: medians and
 * the median of per-run ratios).
 *
 *   backup:  imctl backup create (every store and database, encrypted)
 *            vs  ssh host 'pg_dump -Fd -j N -f DIR -d ejabberd && tar -C DIR -c .' > file
 *   restore: imctl backup restore (verify, every store and database, swap, health)
 *            vs  ssh host 'tar -x -C DIR && pg_restore -j N -Fd -d NEWDB DIR' < file
 *
 * N is what imctl uses: the host's cores, at most 8. The rows go into 4 tables so the jobs have work to share.
 *
 * Usage: node --import tsx bench/backup.ts [--runs N] [--rows N]   (needs root and the sandbox prerequisites)
 */
import {execFile, spawn} from 'node:child_process'
import {createReadStream, createWriteStream, mkdtempSync, statSync} from 'node:fs'
import {cpus, hostname, tmpdir, totalmem} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {pgJobs} from '../src/ops/backup/postgres.js'
import {createSandbox, imctl} from '../test/e2e/harness.js'

const run = promisify(execFile)
const arg = (name: string, def: number) => Number(process.argv[process.argv.indexOf(name) + 1]) || def
const runs = arg('--runs', 3)
const rows = arg('--rows', 300_000)

const sb = await createSandbox('bench-bk', 1)
const work = mkdtempSync(join(tmpdir(), 'imctl-bench-bk-'))
const ssh = ['-i', join(sb.dir, 'id_ed25519'), '-o', `UserKnownHostsFile=${join(sb.dir, 'known_hosts')}`, '-o', 'BatchMode=yes', `root@${sb.hosts[0]!.address}`]
const timeIt = async (fn: () => Promise<unknown>) => {
  const t0 = performance.now()
  await fn()
  return (performance.now() - t0) / 1000
}
const sshTo = (cmd: string, out: string) =>
  new Promise<void>((resolve, reject) => {
    const p = spawn('ssh', [...ssh, cmd], {stdio: ['ignore', 'pipe', 'inherit']})
    p.stdout.pipe(createWriteStream(out))
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd}: exit ${code}`))))
  })
const sshFrom = (cmd: string, input: string) =>
  new Promise<void>((resolve, reject) => {
    const p = spawn('ssh', [...ssh, cmd], {stdio: ['pipe', 'ignore', 'inherit']})
    createReadStream(input).pipe(p.stdin)
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd}: exit ${code}`))))
  })

try {
  const inst = await imctl(['install', '-c', sb.config, '--json'])
  if (inst.exitCode !== 0) throw new Error(inst.stdout)
  const tables = [1, 2, 3, 4].map((t) => `CREATE TABLE bench_rows_${t} AS SELECT g AS id, md5(g::text) || repeat('x', 64) AS body, now() - (g || ' s')::interval AS at FROM generate_series(1, ${Math.ceil(rows / 4)}) g; ALTER TABLE bench_rows_${t} OWNER TO ejabberd;`).join(' ')
  await run('ssh', [...ssh, `runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d ejabberd -c "${tables}"`])
  const jobs = pgJobs(Number((await run('ssh', [...ssh, 'nproc'])).stdout.trim()))
  const bin = (await run('ssh', [...ssh, `runuser -u postgres -- psql -XAt -c "SELECT setting FROM pg_config WHERE name = 'BINDIR'"`])).stdout.trim()
  const dir = '/var/lib/postgresql/bench-direct'
  const dbBytes = (await run('ssh', [...ssh, `runuser -u postgres -- psql -XAt -c "SELECT pg_database_size('ejabberd')"`])).stdout.trim()
  const key = join(work, 'key')
  const sets = join(work, 'sets')
  const r = {backup: [] as number[], dump: [] as number[], restore: [] as number[], pgRestore: [] as number[]}
  for (let i = 1; i <= runs; i++) {
    const dumpFile = join(work, `direct-${i}.tar`)
    r.dump.push(await timeIt(() => sshTo(`rm -rf ${dir} && runuser -u postgres -- ${bin}/pg_dump -Fd -j ${jobs} -f ${dir} -d ejabberd && tar -C ${dir} -cf - . && rm -rf ${dir}`, dumpFile)))
    let id = ''
    r.backup.push(
      await timeIt(async () => {
        const b = await imctl(['backup', 'create', '-c', sb.config, '--to', sets, '--key', key, '--json'])
        if (b.exitCode !== 0) throw new Error(b.stdout)
        id = b.json.result.id
      }),
    )
    r.pgRestore.push(
      await timeIt(async () => {
        await run('ssh', [...ssh, `runuser -u postgres -- psql -q -c "DROP DATABASE IF EXISTS bench_direct" -c "CREATE DATABASE bench_direct OWNER ejabberd"`])
        await sshFrom(`rm -rf ${dir} && runuser -u postgres -- mkdir -m 700 ${dir} && runuser -u postgres -- tar -C ${dir} -xf - && runuser -u postgres -- ${bin}/pg_restore --exit-on-error -j ${jobs} -Fd -d bench_direct ${dir} && rm -rf ${dir}`, dumpFile)
      }),
    )
    r.restore.push(
      await timeIt(async () => {
        const x = await imctl(['backup', 'restore', id, '-c', sb.config, '--to', sets, '--key', key, '--json'])
        if (x.exitCode !== 0) throw new Error(x.stdout)
      }),
    )
    // Keep the host's disk in check: drop what the restore kept aside.
    await run('ssh', [...ssh, `runuser -u postgres -- psql -XAt -c "SELECT 'DROP DATABASE ' || quote_ident(datname) FROM pg_database WHERE datname LIKE '%\\_before\\_%'" | runuser -u postgres -- psql -q`])
    await new Promise((res) => setTimeout(res, 1100))
    process.stderr.write(`run ${i}/${runs}: ${JSON.stringify({dump: r.dump.at(-1), backup: r.backup.at(-1), pgRestore: r.pgRestore.at(-1), restore: r.restore.at(-1)})}\n`)
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const fmt = (x: number) => x.toFixed(2)
  const dumpSize = statSync(join(work, 'direct-1.tar')).size
  console.log(`imctl backup benchmark — ${new Date().toISOString()} — ${hostname()}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`)
  console.log(`data: ${rows} extra rows in 4 tables, database ${(Number(dbBytes) / 2 ** 20).toFixed(1)} MiB, pg_dump -Fd as a tar ${(dumpSize / 2 ** 20).toFixed(1)} MiB; ${jobs} jobs; runs: ${runs}; seconds, median [min–max]`)
  const line = (name: string, a: number[], b: number[]) =>
    console.log(`${name.padEnd(50)} imctl ${fmt(median(a))} [${fmt(Math.min(...a))}–${fmt(Math.max(...a))}]  direct ${fmt(median(b))} [${fmt(Math.min(...b))}–${fmt(Math.max(...b))}]  ratio ${fmt(median(a.map((x, i) => x / b[i]!)))}`)
  line(`backup create (all stores) vs pg_dump -Fd -j ${jobs} + tar over ssh`, r.backup, r.dump)
  line(`backup restore (all stores, health) vs tar + pg_restore -j ${jobs}`, r.restore, r.pgRestore)
} finally {
  await sb.destroy()
}
