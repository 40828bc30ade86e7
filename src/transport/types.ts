import type {Duplex, Readable} from 'node:stream'
import type {ComponentName, HostConfig} from '../config/model.js'
import type {ExecResult, RemoteCommand} from './command.js'

export interface Tunnel {
  /** A port on 127.0.0.1 of this machine that leads to the target. */
  port: number
  close(): Promise<void>
}

/** One open connection to one host. The only way the core reaches a host. */
export interface HostConnection {
  readonly kind: 'ssh' | 'engine'
  readonly host: HostConfig
  /** Runs a command; throws RemoteError unless its exit code is accepted. */
  exec(cmd: RemoteCommand): Promise<ExecResult>
  /** Like exec, with stdout kept as bytes. */
  execBuffer(cmd: RemoteCommand): Promise<{exitCode: number | null; stdout: Buffer; stderr: string}>
  /**
   * Forwards a local port through this host to dstHost:dstPort, as seen from this
   * host (on an engine: from inside the container of component `from`).
   */
  tunnel(dstHost: string, dstPort: number, from?: ComponentName): Promise<Tunnel>
  /**
   * A command's stdout as a stream with backpressure; a non-zero exit is the stream's
   * error (engine hosts: an exec inside `cmd.component`'s container). SSH hosts get the
   * same from `stream` through commandOutput.
   */
  output?(cmd: RemoteCommand): Promise<Readable>
  /** A command's live byte stream (SSH only): stdout as the stream, stderr on `.stderr`. */
  stream?(cmd: RemoteCommand): Promise<Duplex & {stderr?: NodeJS.ReadableStream; exited?: Promise<number | null>}>
  close(): Promise<void>
}
