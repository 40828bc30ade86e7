import {Command, Flags, Interfaces} from '@oclif/core'
import {RemoteError, UserError} from '../errors.js'
import type {S3EndpointOptions} from '../ops/backup/s3-endpoint.js'

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

export const backupToFlag = Flags.string({description: "Where the sets are: a directory (default: backups/ beside cluster.yaml), or s3://imctl-backups[/PREFIX] on the cluster's own MinIO (written with the imctl-backup key), or s3://BUCKET[/PREFIX] with --s3-endpoint."})

export const backupKeyFlag = Flags.string({description: 'Backup key file (default: ~/.config/imctl/<cluster>.backup-key).'})

/**
 * An S3-compatible endpoint outside the cluster for `--to s3://BUCKET/PREFIX`.
 * No secret goes on the command line: the keys come from AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) or from --s3-credentials.
 */
export const s3EndpointFlags = {
  's3-endpoint': Flags.string({description: "With --to s3://BUCKET/PREFIX: an S3-compatible endpoint outside the cluster (https://s3.example.com, http://10.0.0.5:9000) instead of the cluster's own MinIO. Keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --s3-credentials."}),
  's3-region': Flags.string({description: 'Region of the S3 endpoint (default: $AWS_REGION, else us-east-1).', dependsOn: ['s3-endpoint']}),
  's3-credentials': Flags.string({description: "A credentials file in AWS's format (mode 0600: [default] with aws_access_key_id and aws_secret_access_key), instead of the environment.", dependsOn: ['s3-endpoint']}),
  's3-ca': Flags.string({description: "PEM file of the CA that signed the endpoint's TLS certificate (default: $AWS_CA_BUNDLE, else the system's CAs). Certificates are always verified.", dependsOn: ['s3-endpoint']}),
  's3-path-style': Flags.boolean({description: 'Address buckets as paths (MinIO and most S3-compatible servers); --no-s3-path-style for virtual-hosted buckets.', allowNo: true, default: true}),
}

/** The endpoint options from those flags, or undefined without --s3-endpoint. */
export function s3Options(flags: {'s3-endpoint'?: string; 's3-region'?: string; 's3-credentials'?: string; 's3-ca'?: string; 's3-path-style'?: boolean}): S3EndpointOptions | undefined {
  if (!flags['s3-endpoint']) return undefined
  return {
    endpoint: flags['s3-endpoint'],
    ...(flags['s3-region'] ? {region: flags['s3-region']} : {}),
    ...(flags['s3-credentials'] ? {credentialsFile: flags['s3-credentials']} : {}),
    ...(flags['s3-ca'] ? {caFile: flags['s3-ca']} : {}),
    pathStyle: flags['s3-path-style'] ?? true,
  }
}
