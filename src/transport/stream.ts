import {PassThrough, type Readable} from 'node:stream'
import {RemoteError} from '../errors.js'
import type {RemoteCommand} from './command.js'
import type {HostConnection} from './types.js'

/**
 * A command's stdout as a stream with backpressure; a non-zero exit surfaces as the
 * stream's error (a RemoteError with the end of its stderr) once the command ends.
 */
export async function commandOutput(conn: HostConnection, cmd: RemoteCommand): Promise<Readable> {
  if (conn.output) return conn.output(cmd)
  if (!conn.stream) throw new Error(`bug: ${conn.host.name} cannot stream`)
  const ch = await conn.stream(cmd)
  const out = new PassThrough()
  let stderr = ''
  ch.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')))
  ch.on('data', (b: Buffer) => {
    if (!out.write(b)) ch.pause()
  })
  out.on('drain', () => ch.resume())
  ch.on('close', async () => {
    const code = await ch.exited
    if (code === 0) out.end()
    else out.destroy(new RemoteError(conn.host.name, cmd.description, code ?? null, stderr.trim().split('\n').slice(-8).join('\n')))
  })
  return out
}
