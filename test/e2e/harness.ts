/**
 * End-to-end harness: runs the built CLI (bin/run.js) as a user would, against
 * sandbox hosts on this machine's container engine. Everything it creates
 * carries the sandbox prefix and is removed by destroy().
 */
import {execFileSync, spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {parse} from 'yaml'

export const root = resolve(import.meta.dirname, '..', '..')
const bin = join(root, 'bin', 'run.js')

export interface CliRun {
  exitCode: number | null
  stdout: string
  stderr: string
  json: {status: number; result?: any; error?: {message: string; nextSteps?: string[]}; warnings: string[]}
}

/** Every byte any imctl run printed, to check that no secret ever appears. */
export const transcript: string[] = []

export function imctl(args: string[], opts: {env?: NodeJS.ProcessEnv; timeoutMs?: number} = {}): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {cwd: root, env: {...process.env, ...opts.env, CI: 'true'}, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b) => (stdout += b))
    child.stderr.on('data', (b) => (stderr += b))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000)
    child.on('error', reject)
    child.on('close', (exitCode) => {
      clearTimeout(timer)
      transcript.push(stdout, stderr)
      let json: CliRun['json'] = {status: -1, warnings: []}
      if (args.includes('--json')) {
        try {
          json = JSON.parse(stdout)
        } catch {
          return reject(new Error(`imctl ${args.join(' ')} printed no JSON (exit ${exitCode}):\n${stdout}\n${stderr}`))
        }
      }
      resolvePromise({exitCode, stdout, stderr, json})
    })
  })
}

export interface Sandbox {
  name: string
  dir: string
  config: string
  hosts: {name: string; address: string; container: string}[]
  secrets: string[]
  /** Runs a command on a sandbox host through the engine (not through imctl). */
  onHost(host: string, script: string): string
  destroy(): Promise<void>
}

export async function createSandbox(name: string, hosts = 3, extraArgs: string[] = []): Promise<Sandbox> {
  const dir = mkdtempSync(join(tmpdir(), `imctl-e2e-${name}-`))
  // A previous run that died may have left this sandbox behind.
  await imctl(['sandbox', 'destroy', '--name', name, '--json'])
  const run = await imctl(['sandbox', 'create', '--name', name, '--hosts', String(hosts), '--dir', dir, '--json', ...extraArgs])
  if (run.exitCode !== 0) throw new Error(`sandbox create failed: ${run.stdout}\n${run.stderr}`)
  const result = run.json.result
  const secretsDoc = parse(readFileSync(result.secretsFile, 'utf8')) as Record<string, Record<string, string>>
  const secrets = Object.values(secretsDoc).flatMap((s) => Object.values(s))
  return {
    name,
    dir,
    config: result.configFile,
    hosts: result.hosts,
    secrets,
    onHost(host, script) {
      const c = result.hosts.find((h: {name: string}) => h.name === host).container
      return execFileSync('podman', ['exec', c, 'sh', '-c', script], {encoding: 'utf8'})
    },
    async destroy() {
      await imctl(['sandbox', 'destroy', '--name', name, '--dir', dir, '--json'])
    },
  }
}

/** Edits the sandbox's cluster.yaml as a sysadmin would. */
export function editConfig(file: string, edit: (text: string) => string): void {
  writeFileSync(file, edit(readFileSync(file, 'utf8')))
}

/** Starts an ssh-agent holding the key; returns its socket and a stop function. */
export function startAgent(keyFile: string): {sock: string; stop(): void} {
  const sock = join(mkdtempSync(join(tmpdir(), 'imctl-agent-')), 'agent.sock')
  const out = execFileSync('ssh-agent', ['-a', sock], {encoding: 'utf8'})
  const pid = /SSH_AGENT_PID=(\d+)/.exec(out)?.[1]
  execFileSync('ssh-add', ['-q', keyFile], {env: {...process.env, SSH_AUTH_SOCK: sock}})
  return {sock, stop: () => pid && process.kill(Number(pid))}
}

/** Starts imctl and SIGKILLs it as soon as `when()` is true (polled), or after `maxMs`. */
export function imctlKilledWhen(args: string[], when: (output: string) => boolean, opts: {env?: NodeJS.ProcessEnv; maxMs: number}): Promise<{killed: boolean; output: string}> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [bin, ...args], {cwd: root, env: {...process.env, ...opts.env, CI: 'true'}, stdio: ['ignore', 'pipe', 'pipe']})
    let output = ''
    let killed = false
    const poll = setInterval(() => {
      if (!killed && child.exitCode === null && when(output)) {
        killed = true
        child.kill('SIGKILL')
      }
    }, 10)
    child.stdout.on('data', (b) => (output += b))
    child.stderr.on('data', (b) => (output += b))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.maxMs)
    child.on('close', () => {
      clearInterval(poll)
      clearTimeout(timer)
      transcript.push(output)
      resolvePromise({killed, output})
    })
  })
}

/** Every container, volume and the network of an engine cluster on this machine's podman: what losing the engine host's data leaves. */
export function removeEngineCluster(cluster: string): void {
  const podman = (...args: string[]) => execFileSync('podman', args, {encoding: 'utf8'})
  const ids = podman('ps', '-aq', '--filter', `label=io.imctl.cluster=${cluster}`).split('\n').filter(Boolean)
  if (ids.length) podman('rm', '-f', ...ids)
  const vols = podman('volume', 'ls', '-q', '--filter', `name=imctl-${cluster}-`).split('\n').filter(Boolean)
  if (vols.length) podman('volume', 'rm', '-f', ...vols)
  if (podman('network', 'ls', '--format', '{{.Name}}').split('\n').includes(`imctl-${cluster}`)) podman('network', 'rm', `imctl-${cluster}`)
}
