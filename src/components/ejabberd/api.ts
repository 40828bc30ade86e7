import type {HostConnection} from '../../transport/types.js'

/** ejabberd's admin API (mod_http_api), reached on the IM host's loopback through SSH. */
export interface EjabberdApi {
  call<T = unknown>(command: string, args: Record<string, unknown>): Promise<T>
  close(): Promise<void>
}

export class EjabberdApiError extends Error {
  constructor(readonly command: string, readonly status: number, readonly body: string) {
    super(`ejabberd API ${command} answered ${status}: ${body.slice(0, 300)}`)
  }
}

export async function openEjabberdApi(conn: HostConnection, apiPort: number, timeoutMs = 10_000): Promise<EjabberdApi> {
  const tunnel = await conn.tunnel('127.0.0.1', apiPort, 'ejabberd')
  return {
    async call<T>(command: string, args: Record<string, unknown>): Promise<T> {
      const res = await fetch(`http://127.0.0.1:${tunnel.port}/api/${command}`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify(args),
        signal: AbortSignal.timeout(timeoutMs),
      })
      const text = await res.text()
      if (!res.ok) throw new EjabberdApiError(command, res.status, text)
      return (text ? JSON.parse(text) : null) as T
    },
    close: () => tunnel.close(),
  }
}
