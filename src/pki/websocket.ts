import {checkServerIdentity, type PeerCertificate} from 'node:tls'
import WebSocket, {type ClientOptions} from 'ws'

/**
 * WebSocket clients (the XMPP client library opens them through the global
 * `WebSocket`, with no TLS options) that trust the cluster's CA for the URLs
 * registered here and check the server's name, not the tunnel's 127.0.0.1.
 */
const trusted = new Map<string, {ca: string; name: string}>()

class ClusterWebSocket extends WebSocket {
  constructor(url: string | URL, protocols?: string | string[]) {
    const t = trusted.get(new URL(String(url)).host)
    // ws hands these to tls.connect, whose checkServerIdentity returns an Error (ws's typing says boolean).
    const opts = t ? ({ca: t.ca, checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(t.name, cert)} as unknown as ClientOptions) : undefined
    super(url, protocols, opts)
  }
}

/** `wss://HOST:PORT/...` (host:port as given) trusts `ca` and wants a certificate for `name`; returns the undo. */
export function trustWebSocket(hostPort: string, ca: string, name: string): () => void {
  ;(globalThis as {WebSocket?: unknown}).WebSocket = ClusterWebSocket
  trusted.set(hostPort, {ca, name})
  return () => trusted.delete(hostPort)
}
