import {existsSync} from 'node:fs'
import {PassThrough} from 'node:stream'
import Docker from 'dockerode'
import {UserError} from '../errors.js'

/** The local container engine's Docker-compatible API: $DOCKER_HOST, podman's socket, or Docker's. */
export function localEngine(): {docker: Docker; where: string} {
  const env = process.env.DOCKER_HOST
  if (env?.startsWith('unix://')) return {docker: new Docker({socketPath: env.slice('unix://'.length)}), where: env}
  for (const socketPath of ['/run/podman/podman.sock', '/var/run/docker.sock']) {
    if (existsSync(socketPath)) return {docker: new Docker({socketPath}), where: `unix://${socketPath}`}
  }
  throw new UserError('no container engine API found (looked at $DOCKER_HOST, /run/podman/podman.sock, /var/run/docker.sock)', [
    'Run scripts/host-prereqs.sh (installs podman and starts its API), or start Docker, or set DOCKER_HOST=unix:///path/to.sock.',
  ])
}

/** The local engine, checked to answer: a socket file left by a stopped engine is a user's fix, not a crash. */
export async function reachableLocalEngine(): Promise<{docker: Docker; where: string}> {
  const engine = localEngine()
  try {
    await engine.docker.ping()
  } catch (e) {
    throw new UserError(`the container engine API at ${engine.where} does not answer (${(e as Error).message})`, [
      'Run scripts/host-prereqs.sh (starts podman\'s API), or `systemctl start podman.socket`, or start Docker.',
    ])
  }
  return engine
}

/** Runs a command in a container and returns its stdout (demultiplexed), throwing on a non-zero exit. */
export async function containerExec(container: Docker.Container, cmd: string[]): Promise<string> {
  const exec = await container.exec({Cmd: cmd, AttachStdout: true, AttachStderr: true})
  const stream = await exec.start({})
  const out: Buffer[] = []
  const err: Buffer[] = []
  await new Promise<void>((resolve, reject) => {
    container.modem.demuxStream(stream, new PassThrough().on('data', (b: Buffer) => out.push(b)), new PassThrough().on('data', (b: Buffer) => err.push(b)))
    stream.on('end', resolve)
    stream.on('error', reject)
  })
  const info = await exec.inspect()
  const stdout = Buffer.concat(out).toString('utf8')
  if (info.ExitCode !== 0) throw new Error(`${cmd.join(' ')} exited ${info.ExitCode}: ${Buffer.concat(err).toString('utf8').trim()}`)
  return stdout
}
