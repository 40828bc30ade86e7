// Minimal typing of the parts of @xmpp/client that imctl uses (the package ships none).
declare module '@xmpp/client' {
  export interface Element {
    is(name: string): boolean
    getChildText(name: string): string | null
    attrs: Record<string, string>
  }
  export interface XmppClient {
    on(event: 'stanza', fn: (stanza: Element) => void): void
    on(event: 'error' | 'offline' | 'online', fn: (arg: unknown) => void): void
    start(): Promise<unknown>
    stop(): Promise<void>
    send(el: Element): Promise<void>
    reconnect?: {stop(): void}
  }
  export function client(opts: {service: string; domain: string; username?: string; password?: string; resource?: string}): XmppClient
  export function xml(name: string, attrs?: Record<string, string>, ...children: (Element | string)[]): Element
}
