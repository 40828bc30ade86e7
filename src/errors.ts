/** An error the user can act on: says what went wrong and what to do next. */
export class UserError extends Error {
  constructor(message: string, readonly nextSteps: string[] = [], readonly exitCode = 2) {
    super(message)
    this.name = 'UserError'
  }
}

/** Several user errors found at once (config validation reports them all). */
export class ValidationError extends UserError {
  constructor(readonly problems: ConfigProblem[], file: string) {
    super(
      `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'} found; no host was contacted\n` +
        problems.map((p) => `  ${formatProblem(p)}`).join('\n'),
      ['Fix the lines above and run `imctl validate` again.'],
    )
    this.name = 'ValidationError'
  }
}

export interface ConfigProblem {
  file: string
  line: number
  column: number
  /** Dotted path in the document, e.g. `hosts[1].address`. */
  path: string
  message: string
  /** What to write instead. */
  hint?: string
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.path ? p.path + ': ' : ''}${p.message}${p.hint ? ` (${p.hint})` : ''}`
}

/** A command on a host failed: names host, what, exit code and the end of stderr. */
export class RemoteError extends Error {
  constructor(
    readonly host: string,
    readonly what: string,
    readonly exitCode: number | null,
    readonly stderrTail: string,
  ) {
    super(
      `${host}: ${what} failed (exit ${exitCode ?? 'signal'})` + (stderrTail ? `:\n${indent(stderrTail)}` : ''),
    )
    this.name = 'RemoteError'
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')
}

/** Keeps the last lines of a command's stderr for an error message. */
export function tail(text: string, lines = 12): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}
