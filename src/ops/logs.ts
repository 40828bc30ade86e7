import type {Writable} from 'node:stream'
import {PassThrough} from 'node:stream'
import {UserError} from '../errors.js'
import type {IoHost} from '../io.js'
import type {ComponentName} from '../config/model.js'
import {COMPONENTS, component as componentByName} from '../components/registry.js'
import {EngineConnection, engineNames} from '../transport/engine.js'
import {closeAll, connectHosts, loadCluster} from './cluster.js'

export interface LogsOptions {
  configFile: string
  component: string
  host?: string
  follow: boolean
  lines: number
  acceptNewHostKeys?: boolean
  io: IoHost
  out: Writable
  err: Writable
  /** Stops following. */
  signal?: AbortSignal
}

/** `imctl logs`: journald on SSH hosts, the container's log on engines. */
export async function logsService(opts: LogsOptions): Promise<void> {
  const names = COMPONENTS.map((c) => c.name) as string[]
  if (!names.includes(opts.component)) throw new UserError(`unknown component ${JSON.stringify(opts.component)}`, [`Use one of: ${names.join(', ')}.`])
  const component = opts.component as ComponentName
  const model = loadCluster(opts.configFile)
  const placedOn = componentByName(component).hosts(model.config)
  if (!placedOn.length) throw new UserError(`${component} is not part of this cluster`, [`Add it under \`components:\` in ${model.config.file}, or pick another component.`])
  if (opts.host && !placedOn.includes(opts.host)) throw new UserError(`${component} does not run on ${opts.host} but on ${placedOn.join(', ')}`, [`Use --host ${placedOn[0]}, or leave --host out.`])
  const placed = opts.host ?? placedOn[0]!
  const host = model.config.hosts.find((h) => h.name === placed)!
  const conns = await connectHosts(model.config, [host], opts)
  try {
    const conn = conns.get(host.name)!
    if (conn instanceof EngineConnection) {
      const c = conn.docker.getContainer(engineNames.container(model.config.name, component))
      if (!opts.follow) {
        // Without follow the engine answers with one multiplexed buffer.
        const buf = (await c.logs({follow: false, stdout: true, stderr: true, tail: opts.lines, timestamps: true})) as unknown as Buffer
        for (const frame of demuxFrames(buf)) (frame.stream === 2 ? opts.err : opts.out).write(frame.data)
        return
      }
      const stream = (await c.logs({follow: true, stdout: true, stderr: true, tail: opts.lines, timestamps: true})) as unknown as NodeJS.ReadableStream
      const out = new PassThrough()
      const err = new PassThrough()
      out.pipe(opts.out, {end: false})
      err.pipe(opts.err, {end: false})
      c.modem.demuxStream(stream, out, err)
      await new Promise<void>((resolve) => {
        stream.on('end', resolve)
        opts.signal?.addEventListener('abort', () => {
          ;(stream as unknown as {destroy?: () => void}).destroy?.()
          resolve()
        })
      })
      return
    }
    const unit = model.resources.find((r) => r.kind === 'service' && r.component === component && r.host === host.name)
    if (unit?.kind !== 'service') throw new Error(`bug: no unit for ${component}`)
    const ch = await conn.stream!({argv: ['journalctl', '-u', unit.unit, '-n', String(opts.lines), '--no-pager', '-o', 'short-iso', ...(opts.follow ? ['-f'] : [])], root: true, description: `read the journal of ${unit.unit}`})
    ch.pipe(opts.out, {end: false})
    ch.stderr?.pipe(opts.err, {end: false})
    await new Promise<void>((resolve) => {
      ch.on('close', () => resolve())
      opts.signal?.addEventListener('abort', () => {
        ch.destroy()
        resolve()
      })
    })
  } finally {
    await closeAll(conns)
  }
}

/** Splits Docker's multiplexed log format (8-byte headers: stream, size) into frames; raw text when there is no header. */
export function demuxFrames(buf: Buffer): {stream: number; data: Buffer}[] {
  const frames: {stream: number; data: Buffer}[] = []
  let i = 0
  while (i + 8 <= buf.length && [0, 1, 2].includes(buf[i]!) && buf[i + 1] === 0 && buf[i + 2] === 0 && buf[i + 3] === 0) {
    const size = buf.readUInt32BE(i + 4)
    frames.push({stream: buf[i]!, data: buf.subarray(i + 8, i + 8 + size)})
    i += 8 + size
  }
  if (i < buf.length) frames.push({stream: 1, data: buf.subarray(i)})
  return frames
}
