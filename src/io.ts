/**
 * The core never touches the terminal: it reports to, and asks through, this host.
 * The CLI provides one backed by listr2/inquirer; tests provide a recording one.
 */
export type ProgressEvent =
  | {type: 'host-start'; host: string}
  | {type: 'step-start'; host: string; stepId: string; what: string}
  | {type: 'step-done'; host: string; stepId: string; what: string; status: 'changed' | 'failed' | 'skipped'; error?: string}
  | {type: 'host-done'; host: string; status: 'ok' | 'failed'; changed: number}
  | {type: 'info'; message: string}
  | {type: 'warning'; message: string}

export interface IoHost {
  notify(event: ProgressEvent): void
  /**
   * Asks the user to trust a new SSH host key. Must resolve to the safe answer
   * (false) when nobody can be asked (CI, --json, no TTY).
   */
  confirmHostKey(endpoint: string, keyType: string, fingerprint: string): Promise<boolean>
}

export const silentIo: IoHost = {
  notify: () => {},
  confirmHostKey: async () => false,
}
