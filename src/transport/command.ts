import type {ComponentName} from '../config/model.js'

/**
 * Remote actions are data: an argv, a description for humans, and optional stdin.
 * Builders return these; only a transport runs them. Shell quoting lives here alone.
 */
export interface RemoteCommand {
  argv: string[]
  /** What this does, in words a person reads in a plan or a progress line. */
  description: string
  /** Bytes fed to the command's stdin. May carry secrets: never logged or printed. */
  stdin?: string | Buffer
  /** A stream fed to stdin instead, for data too large to hold (restores), with backpressure. */
  stdinStream?: NodeJS.ReadableStream
  /** Run with root rights (sudo -n for a non-root login; as is for root). */
  root?: boolean
  /** Run as this system user (e.g. postgres), via sudo or runuser. */
  asUser?: string
  /** On a container engine: run inside this component's container. Ignored over SSH. */
  component?: ComponentName
  /** Exit codes that count as success (default [0]). */
  okExitCodes?: number[]
}

export interface ExecResult {
  exitCode: number | null
  stdout: string
  stderr: string
}

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/

/** Quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  if (word !== '' && SAFE.test(word)) return word
  return `'${word.replace(/'/g, `'\\''`)}'`
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ')
}

/** How a transport logged in: decides how root and other users are reached. */
export interface Privilege {
  /** The login user is root. */
  isRoot: boolean
}

/** The argv actually sent for a command, with sudo / runuser wrapping applied. */
export function wrapArgv(cmd: RemoteCommand, priv: Privilege): string[] {
  if (cmd.asUser) {
    return priv.isRoot
      ? ['runuser', '-u', cmd.asUser, '--', ...cmd.argv]
      : ['sudo', '-n', '-u', cmd.asUser, '--', ...cmd.argv]
  }
  if (cmd.root && !priv.isRoot) return ['sudo', '-n', '--', ...cmd.argv]
  return cmd.argv
}

/** The one command line sent over SSH for a command. */
export function commandLine(cmd: RemoteCommand, priv: Privilege): string {
  return shellJoin(wrapArgv(cmd, priv))
}

/** Runs a small POSIX shell script with positional arguments (never interpolated). */
export function shScript(script: string, args: string[] = []): string[] {
  return ['sh', '-c', script, 'sh', ...args]
}
