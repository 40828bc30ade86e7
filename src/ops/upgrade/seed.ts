/**
 * Data an upgrade test puts into a cluster before the upgrade and reads back after it:
 * XMPP users, a conversation in ejabberd's SQL message archive, Redis keys, Kafka records.
 * Everything goes through SSH tunnels, as imctl's health checks do.
 */
import {randomBytes} from 'node:crypto'
import {client as xmppClient, xml} from '@xmpp/client'
import {Redis} from 'ioredis'
import WebSocket from 'ws'
import {openKafka} from '../../components/kafka/client.js'
import {openEjabberdApi} from '../../components/ejabberd/api.js'
import {endpointFor} from '../../plan/desired.js'
import type {HostConnection} from '../../transport/types.js'
import type {ClusterModel} from '../cluster.js'

export const SEED_TOPIC = 'imctl.upgrade-test'

/** What was seeded: the reference the check compares with. */
export interface Seeded {
  users: {user: string; password: string}[]
  /** Message bodies of the conversation, oldest first, as the first user's archive holds them. */
  messages: string[]
  redis: Record<string, string>
  /** Kafka record values, in order; empty when the cluster has no Kafka. */
  kafka: string[]
}

export interface DataCheck {
  what: string
  ok: boolean
  detail: string
}

type XmppClient = ReturnType<typeof xmppClient> & {iqCaller: {request(el: unknown, timeout?: number): Promise<unknown>}}

async function withWebSocket<T>(model: ClusterModel, im: HostConnection, fn: (service: string) => Promise<T>): Promise<T> {
  ;(globalThis as {WebSocket?: unknown}).WebSocket ??= WebSocket
  const host = model.config.hosts.find((h) => h.name === model.config.components.ejabberd.host)!
  const tunnel = await im.tunnel(host.address, model.config.components.ejabberd.ports.http)
  try {
    return await fn(`ws://127.0.0.1:${tunnel.port}/ws`)
  } finally {
    await tunnel.close()
  }
}

async function login(service: string, domain: string, user: string, password: string): Promise<XmppClient> {
  const x = xmppClient({service, domain, username: user, password, resource: 'imctl-upgrade-test'}) as XmppClient
  x.on('error', () => {})
  x.reconnect?.stop()
  await x.start()
  return x
}

/** Every archived message body of the logged-in user (MAM, one page of up to 200), oldest first. */
async function archive(x: XmppClient): Promise<string[]> {
  const bodies: string[] = []
  const queryid = `q${randomBytes(4).toString('hex')}`
  x.on('stanza', (st) => {
    const result = (st as unknown as {getChild(n: string, ns?: string): any}).getChild('result', 'urn:xmpp:mam:2')
    if (!st.is('message') || result?.attrs.queryid !== queryid) return
    const body = result.getChild('forwarded')?.getChild('message')?.getChildText('body')
    if (body) bodies.push(body)
  })
  await x.iqCaller.request(xml('iq', {type: 'set'}, xml('query', {xmlns: 'urn:xmpp:mam:2', queryid}, xml('set', {xmlns: 'http://jabber.org/protocol/rsm'}, xml('max', {}, '200')))), 20_000)
  return bodies
}

async function redisClient(model: ClusterModel, im: HostConnection): Promise<{redis: Redis; close(): Promise<void>}> {
  const at = endpointFor(model.config, 'redis', 'ejabberd')
  const t = await im.tunnel(at.address, at.port, 'ejabberd')
  const redis = new Redis({host: '127.0.0.1', port: t.port, password: model.secrets.redis.password, lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 10_000})
  redis.on('error', () => {})
  await redis.connect()
  return {redis, close: async () => {
    redis.disconnect()
    await t.close()
  }}
}

/** Users, a conversation of `messages` chat messages (archived in SQL), `keys` Redis keys and, with Kafka, `records` records (acks=all). */
export async function seedData(model: ClusterModel, conns: Map<string, HostConnection>, n: {messages: number; keys: number; records: number}): Promise<Seeded> {
  const c = model.config.components
  const im = conns.get(c.ejabberd.host)!
  const domain = model.config.domain
  const tag = randomBytes(3).toString('hex')
  const users = ['alice', 'bob'].map((u) => ({user: `${u}-${tag}`, password: randomBytes(12).toString('base64url')}))
  const api = await openEjabberdApi(im, c.ejabberd.ports.api)
  try {
    for (const u of users) await api.call('register', {user: u.user, host: domain, password: u.password})
  } finally {
    await api.close()
  }
  const messages = Array.from({length: n.messages}, (_, i) => `upgrade test ${tag} message ${i + 1}`)
  const archived = await withWebSocket(model, im, async (service) => {
    const [a, b] = [await login(service, domain, users[0]!.user, users[0]!.password), await login(service, domain, users[1]!.user, users[1]!.password)]
    try {
      const got = new Set<string>()
      const all = new Promise<void>((resolve) =>
        b.on('stanza', (st) => {
          const body = st.is('message') ? st.getChildText('body') : null
          if (body) got.add(body)
          if (got.size === messages.length) resolve()
        }),
      )
      await b.send(xml('presence'))
      for (const m of messages) await a.send(xml('message', {to: `${users[1]!.user}@${domain}`, type: 'chat'}, xml('body', {}, m)))
      await Promise.race([all, new Promise((_, reject) => setTimeout(() => reject(new Error(`only ${got.size} of ${messages.length} messages delivered in 30 s`)), 30_000))])
      return await archive(a)
    } finally {
      await Promise.allSettled([a.stop(), b.stop()])
    }
  })
  if (archived.join('\n') !== messages.join('\n')) throw new Error(`the archive holds ${archived.length} of ${messages.length} seeded messages before the upgrade`)

  const redis: Record<string, string> = Object.fromEntries(Array.from({length: n.keys}, (_, i) => [`imctl-upgrade-test:${tag}:${i + 1}`, `value ${i + 1} ${randomBytes(4).toString('hex')}`]))
  const r = await redisClient(model, im)
  try {
    for (const [k, v] of Object.entries(redis)) await r.redis.set(k, v)
  } finally {
    await r.close()
  }

  const kafka: string[] = []
  if (c.kafka && n.records) {
    const k = await openKafka(model, conns, 'imctl-upgrade-test')
    const admin = k.kafka.admin()
    const producer = k.kafka.producer({idempotent: true, maxInFlightRequests: 1})
    try {
      await admin.connect()
      if (!(await admin.listTopics()).includes(SEED_TOPIC)) {
        await admin.createTopics({waitForLeaders: true, topics: [{topic: SEED_TOPIC, numPartitions: 3, replicationFactor: Math.min(3, c.kafka.hosts.length)}]})
      }
      await producer.connect()
      const values = Array.from({length: n.records}, (_, i) => `record ${tag} ${i + 1}`)
      await producer.send({topic: SEED_TOPIC, acks: -1, messages: values.map((value) => ({key: tag, value}))})
      kafka.push(...values)
    } finally {
      await Promise.allSettled([producer.disconnect(), admin.disconnect()])
      await k.close()
    }
  }
  return {users, messages, redis, kafka}
}

/** Reads every seeded thing back: users log in, the first one's archive, the Redis values, the Kafka records. */
export async function checkData(model: ClusterModel, conns: Map<string, HostConnection>, seeded: Seeded): Promise<DataCheck[]> {
  const c = model.config.components
  const im = conns.get(c.ejabberd.host)!
  const domain = model.config.domain
  const checks: DataCheck[] = []
  const check = async (what: string, fn: () => Promise<string>) => {
    try {
      checks.push({what, ok: true, detail: await fn()})
    } catch (e) {
      checks.push({what, ok: false, detail: (e as Error).message})
    }
  }
  await check(`${seeded.users.length} users log in over XMPP, and the first one's archive holds the ${seeded.messages.length} messages`, () =>
    withWebSocket(model, im, async (service) => {
      const clients = []
      try {
        for (const u of seeded.users) clients.push(await login(service, domain, u.user, u.password))
        const got = await archive(clients[0]!)
        if (got.join('\n') !== seeded.messages.join('\n')) throw new Error(`archive holds ${got.length} messages, ${got.filter((m) => seeded.messages.includes(m)).length} of the ${seeded.messages.length} seeded`)
        return `${got.length} archived messages equal`
      } finally {
        await Promise.allSettled(clients.map((x) => x.stop()))
      }
    }),
  )
  await check(`${Object.keys(seeded.redis).length} Redis keys`, async () => {
    const r = await redisClient(model, im)
    try {
      const keys = Object.keys(seeded.redis)
      const values = await r.redis.mget(...keys)
      const wrong = keys.filter((k, i) => values[i] !== seeded.redis[k])
      if (wrong.length) throw new Error(`${wrong.length} keys differ or are missing, e.g. ${wrong[0]}`)
      return `${keys.length} values equal`
    } finally {
      await r.close()
    }
  })
  if (seeded.kafka.length) {
    await check(`${seeded.kafka.length} Kafka records on ${SEED_TOPIC}`, async () => {
      const k = await openKafka(model, conns, 'imctl-upgrade-test')
      const consumer = k.kafka.consumer({groupId: `imctl-upgrade-test-${randomBytes(4).toString('hex')}`, sessionTimeout: 10_000, heartbeatInterval: 1000})
      const got: string[] = []
      try {
        await consumer.connect()
        await consumer.subscribe({topic: SEED_TOPIC, fromBeginning: true})
        const all = new Promise<void>((resolve) => {
          void consumer.run({eachMessage: async ({message}) => {
            const v = message.value?.toString()
            if (v && seeded.kafka.includes(v)) got.push(v)
            if (new Set(got).size >= seeded.kafka.length) resolve()
          }})
        })
        await Promise.race([all, new Promise((r) => setTimeout(r, 60_000))])
        const missing = seeded.kafka.filter((v) => !got.includes(v))
        if (missing.length) throw new Error(`${missing.length} of ${seeded.kafka.length} records not consumed, e.g. ${missing[0]}`)
        return `${seeded.kafka.length} records consumed back`
      } finally {
        await consumer.disconnect().catch(() => {})
        await k.close()
      }
    })
  }
  return checks
}
