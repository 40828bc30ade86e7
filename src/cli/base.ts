import {Command, Flags, Interfaces} from '@oclif/core'
import {RemoteError, UserError} from '../errors.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>

/** Every result on stdout with --json has this one shape. */
export interface JsonEnvelope<T> {
  status: number
  result?: T
  error?: {name: string; message: string; nextSteps?: string[]}
  warnings: string[]
}

/**
 * Parses shared flags, prints results (human or --json) and turns typed errors
 * into messages that say what to do next, with distinct exit codes.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = false
  static override baseFlags = {
    json: Flags.boolean({description: 'Print one JSON document on stdout (never prompts).', default: false}),
  }

  protected flags!: BaseFlags<T>
  protected warnings: string[] = []

  /** True when nobody can be asked anything: --json, CI, or no terminal. */
  protected get nonInteractive(): boolean {
    return this.flags.json || Boolean(process.env.CI) || !process.stdin.isTTY || !process.stdout.isTTY
  }

  public override async init(): Promise<void> {
    await super.init()
    const {flags} = await this.parse({flags: this.ctor.flags, baseFlags: (this.ctor as typeof BaseCommand).baseFlags, args: this.ctor.args, strict: this.ctor.strict})
    this.flags = flags as BaseFlags<T>
    if (!process.stdout.isTTY || process.env.NO_COLOR) process.env.FORCE_COLOR = '0'
  }

  /** Prints the result: JSON envelope, or the human text. */
  protected output<R>(result: R, human: (r: R) => string, status = 0): void {
    if (this.flags.json) {
      const env: JsonEnvelope<R> = {status, result, warnings: this.warnings}
      process.stdout.write(JSON.stringify(env, null, 2) + '\n')
    } else {
      const text = human(result)
      if (text) process.stdout.write(text.endsWith('\n') ? text : text + '\n')
    }
    if (status !== 0) process.exitCode = status
  }

  protected warn2(message: string): void {
    this.warnings.push(message)
    if (!this.flags?.json) process.stderr.write(`warning: ${message}\n`)
  }

  protected override async catch(err: Error & {exitCode?: number; oclif?: {exit: number}}): Promise<unknown> {
    if (err.oclif && !(err instanceof UserError)) {
      // oclif's own parse errors (unknown flag, missing arg) keep their handling, but in JSON too.
      if (!this.flags?.json && !process.argv.includes('--json')) return super.catch(err)
    }
    const json = this.flags?.json ?? process.argv.includes('--json')
    const exit = err instanceof UserError ? err.exitCode : err instanceof RemoteError ? 4 : err.oclif?.exit ?? 1
    const nextSteps = err instanceof UserError ? err.nextSteps : err instanceof RemoteError ? ['Fix the cause on that host, then run the same command again: it resumes where it stopped.'] : undefined
    if (json) {
      const env: JsonEnvelope<never> = {status: exit, error: {name: err.name, message: err.message, ...(nextSteps ? {nextSteps} : {})}, warnings: this.warnings}
      process.stdout.write(JSON.stringify(env, null, 2) + '\n')
    } else {
      const kind = err instanceof UserError || err instanceof RemoteError ? 'error' : 'internal error (please report it)'
      process.stderr.write(`${kind}: ${err.message}\n`)
      for (const s of nextSteps ?? []) process.stderr.write(`  → ${s}\n`)
      if (!(err instanceof UserError || err instanceof RemoteError) && err.stack) process.stderr.write(`${err.stack}\n`)
    }
    process.exitCode = exit
    return undefined
  }
}

export const configFlag = Flags.string({
  char: 'c',
  description: 'Path of the cluster definition.',
  default: 'cluster.yaml',
  env: 'IMCTL_CONFIG',
})

export const acceptKeysFlag = Flags.boolean({
  description: 'Pin the SSH host keys of hosts seen for the first time without asking (a changed key still fails).',
  default: false,
})

export const backupToFlag = Flags.string({description: "Where the sets are: a directory (default: backups/ beside cluster.yaml), or s3://imctl-backups[/PREFIX] on the cluster's own MinIO (written with the imctl-backup key)."})

export const backupKeyFlag = Flags.string({description: 'Backup key file (default: ~/.config/imctl/<cluster>.backup-key).'})
