/** A real XMPP client for the tests: log in over WebSocket, send, and read the message archive (MAM). */
import {client, xml} from '@xmpp/client'
import WebSocket from 'ws'

type Client = ReturnType<typeof client> & {iqCaller: {request(el: unknown, timeout?: number): Promise<unknown>}}

/** `mechanism` forces a SASL mechanism: PLAIN over plain ws:// to a non-loopback address, which the client otherwise refuses. */
export async function login(service: string, domain: string, username: string, password: string, opts: {mechanism?: string} = {}): Promise<Client> {
  ;(globalThis as {WebSocket?: unknown}).WebSocket ??= WebSocket
  const {mechanism} = opts
  const credentials = mechanism ? async (authenticate: (c: {username: string; password: string}, m: string) => Promise<void>) => authenticate({username, password}, mechanism) : undefined
  const x = client({service, domain, resource: 'e2e', ...(credentials ? {credentials} : {username, password})}) as Client
  x.on('error', () => {})
  x.reconnect?.stop()
  await x.start()
  return x
}

export async function send(x: Client, to: string, body: string): Promise<void> {
  await x.send(xml('message', {to, type: 'chat'}, xml('body', {}, body)))
}

/** Every archived message body of the logged-in user, oldest first (one page of up to 100). */
export async function archive(x: Client): Promise<string[]> {
  const bodies: string[] = []
  const queryid = `q${Date.now()}`
  x.on('stanza', (st) => {
    if (!st.is('message')) return
    const result = (st as unknown as {getChild(n: string, ns?: string): any}).getChild('result', 'urn:xmpp:mam:2')
    if (result?.attrs.queryid !== queryid) return
    const body = result.getChild('forwarded')?.getChild('message')?.getChildText('body')
    if (body) bodies.push(body)
  })
  await x.iqCaller.request(
    xml('iq', {type: 'set'}, xml('query', {xmlns: 'urn:xmpp:mam:2', queryid}, xml('set', {xmlns: 'http://jabber.org/protocol/rsm'}, xml('max', {}, '100')))),
    20_000,
  )
  return bodies
}
