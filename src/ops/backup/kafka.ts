import {once} from 'node:events'
import {createInterface} from 'node:readline'
import {PassThrough, type Readable} from 'node:stream'
import kafkajs, {type Admin, type IHeaders, type Kafka, type Message} from 'kafkajs'
import {HEALTH_TOPIC} from '../../components/kafka/health.js'
import {UserError} from '../../errors.js'

// kafkajs is CommonJS: its enums are reached through the default export.
const {ConfigResourceTypes, ConfigSource} = kafkajs

export const KAFKA_TOPICS = 'kafka-topics.json.gz.enc'
export const KAFKA_RECORDS = 'kafka-records.jsonl.gz.enc'

/** Kafka's internal topics and imctl's own health probe topic: recreated by their owners, not backed up. */
export function backedUpTopic(name: string): boolean {
  return !name.startsWith('__') && name !== HEALTH_TOPIC
}

/** imctl's own short-lived groups (health probes, the backup's reader): not backed up. */
export function backedUpGroup(groupId: string): boolean {
  return !/^imctl-(health|backup)-/.test(groupId)
}

export interface TopicSnapshot {
  name: string
  partitions: number
  replicationFactor: number
  /** The topic's own settings (set for it, not inherited from the broker). */
  configs: Record<string, string>
  /** Per partition, the first and next offset when the snapshot was taken. */
  offsets: {partition: number; low: string; high: string}[]
}

export interface GroupSnapshot {
  groupId: string
  protocolType: string
  offsets: {topic: string; partition: number; offset: string; metadata: string | null}[]
}

export interface KafkaSnapshot {
  topics: TopicSnapshot[]
  groups: GroupSnapshot[]
}

/**
 * Topic settings and consumer-group offsets. Groups are read first, then the
 * topics' end offsets, so every committed offset lies within the records a
 * backup of the data then reads.
 */
export async function snapshotKafka(admin: Admin): Promise<KafkaSnapshot> {
  const names = (await admin.listTopics()).filter(backedUpTopic).sort()
  const groupIds = (await admin.listGroups()).groups.filter((g) => backedUpGroup(g.groupId)).sort((a, b) => a.groupId.localeCompare(b.groupId))
  const groups: GroupSnapshot[] = []
  for (const g of groupIds) {
    const offsets = names.length ? await admin.fetchOffsets({groupId: g.groupId, topics: names}) : []
    groups.push({
      groupId: g.groupId,
      protocolType: g.protocolType,
      offsets: offsets.flatMap((t) => t.partitions.filter((p) => Number(p.offset) >= 0).map((p) => ({topic: t.topic, partition: p.partition, offset: p.offset, metadata: p.metadata ?? null}))),
    })
  }
  const meta = names.length ? (await admin.fetchTopicMetadata({topics: names})).topics : []
  const configs = names.length ? await admin.describeConfigs({resources: names.map((name) => ({type: ConfigResourceTypes.TOPIC, name})), includeSynonyms: false}) : {resources: []}
  const topics: TopicSnapshot[] = []
  for (const name of names) {
    const m = meta.find((t) => t.name === name)!
    const res = configs.resources.find((r) => r.resourceName === name)
    const own = (res?.configEntries ?? []).filter((e) => (e as {configSource?: number}).configSource === ConfigSource.TOPIC_CONFIG && e.configValue !== null && !e.isSensitive)
    const offsets = (await admin.fetchTopicOffsets(name)).map((o) => ({partition: o.partition, low: o.low, high: o.high})).sort((a, b) => a.partition - b.partition)
    topics.push({
      name,
      partitions: m.partitions.length,
      replicationFactor: m.partitions[0]?.replicas.length ?? 1,
      configs: Object.fromEntries(own.map((e) => [e.configName, e.configValue]).sort()),
      offsets,
    })
  }
  return {topics, groups}
}

export function snapshotCounts(s: KafkaSnapshot): Record<string, number> {
  return {
    topics: s.topics.length,
    partitions: s.topics.reduce((n, t) => n + t.partitions, 0),
    groups: s.groups.length,
    offsets: s.groups.reduce((n, g) => n + g.offsets.length, 0),
  }
}

/** One record as a JSON line: where it was (topic, partition, offset) and all it carries. Bytes are base64. */
export interface RecordLine {
  t: string
  p: number
  o: string
  ts: string
  k: string | null
  v: string | null
  /** Headers in order, a name once per value. */
  h: [string, string][]
}

export function headerPairs(headers: IHeaders | undefined): [string, string][] {
  const b64 = (v: Buffer | string) => (typeof v === 'string' ? Buffer.from(v) : v).toString('base64')
  return Object.entries(headers ?? {}).flatMap(([name, v]) => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map((x): [string, string] => [name, b64(x)])))
}

export function headersOf(pairs: [string, string][]): IHeaders {
  const out: Record<string, Buffer[]> = {}
  for (const [name, v] of pairs) (out[name] ??= []).push(Buffer.from(v, 'base64'))
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.length === 1 ? v[0]! : v]))
}

/**
 * Every record of the snapshot's topics up to the end offsets it recorded, as JSON
 * lines, read by a consumer of a throwaway group that commits nothing. Each
 * partition is paused once its end is reached; records written after the snapshot
 * are left out. Backpressure reaches the consumer: it fetches as fast as the
 * artifact is written.
 */
export function dumpRecords(kafka: Kafka, snapshot: KafkaSnapshot, groupId: string, counts: Record<string, number>): Readable {
  const out = new PassThrough()
  counts.records = 0
  const pending = new Map<string, bigint>()
  for (const t of snapshot.topics) {
    counts[`${t.name}.records`] = 0
    for (const o of t.offsets) if (BigInt(o.high) > BigInt(o.low)) pending.set(`${t.name}/${o.partition}`, BigInt(o.high))
  }
  const topics = [...new Set([...pending.keys()].map((k) => k.slice(0, k.lastIndexOf('/'))))]
  if (!topics.length) {
    out.end()
    return out
  }
  const consumer = kafka.consumer({groupId, sessionTimeout: 30_000, heartbeatInterval: 3000, allowAutoTopicCreation: false})
  let lastProgress = Date.now()
  const run = async () => {
    await consumer.connect()
    await consumer.subscribe({topics, fromBeginning: true})
    let finished!: () => void
    const done = new Promise<void>((resolve) => (finished = resolve))
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch: async ({batch, heartbeat, pause}) => {
        const key = `${batch.topic}/${batch.partition}`
        const end = pending.get(key)
        if (end === undefined) return
        for (const m of batch.messages) {
          if (BigInt(m.offset) >= end || out.destroyed) break
          const line: RecordLine = {t: batch.topic, p: batch.partition, o: m.offset, ts: m.timestamp, k: m.key ? m.key.toString('base64') : null, v: m.value ? m.value.toString('base64') : null, h: headerPairs(m.headers)}
          if (!out.write(JSON.stringify(line) + '\n')) await drained(out)
          counts.records! += 1
          counts[`${batch.topic}.records`]! += 1
        }
        lastProgress = Date.now()
        await heartbeat()
        if (BigInt(batch.lastOffset()) + 1n >= end) {
          pending.delete(key)
          pause()
          if (!pending.size) finished()
        }
      },
    })
    const stalled = setInterval(() => {
      if (Date.now() - lastProgress > 120_000) out.destroy(new Error(`reading Kafka records made no progress for 2 minutes; still waiting for ${[...pending.keys()].join(', ')}`))
    }, 5000)
    try {
      await Promise.race([done, once(out, 'close')])
    } finally {
      clearInterval(stalled)
    }
    if (!out.destroyed) out.end()
  }
  run()
    .catch((e) => out.destroy(e as Error))
    .finally(() => consumer.disconnect().catch(() => {}))
  return out
}

/** Resolves when the stream takes more, or is gone (then the writer stops at its next check). */
function drained(out: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done)
      out.off('close', done)
      resolve()
    }
    out.on('drain', done)
    out.on('close', done)
  })
}

/**
 * Runs `fn` again while Kafka's group coordinator is not ready, for up to `ms`: a
 * fresh broker creates and loads its offsets topic at the first group request and
 * answers "not the correct coordinator" or "loading" meanwhile, longer than the
 * client's own retries on a busy machine.
 */
export async function whileCoordinatorLoads<T>(fn: () => Promise<T>, ms = 120_000, pauseMs = 2000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      return await fn()
    } catch (e) {
      if (Date.now() > deadline || !/coordinator/i.test((e as Error).message ?? '')) throw e
      await new Promise((r) => setTimeout(r, pauseMs))
    }
  }
}

/** Groups of the set that have members now: their offsets cannot be set while they consume. */
export async function activeGroups(admin: Admin, groupIds: string[]): Promise<{groupId: string; state: string; members: string[]}[]> {
  if (!groupIds.length) return []
  const {groups} = await admin.describeGroups(groupIds)
  return groups.filter((g) => g.members.length > 0).map((g) => ({groupId: g.groupId, state: g.state, members: g.members.map((m) => `${m.clientId}@${m.clientHost}`)}))
}

export function refuseActiveGroups(active: {groupId: string; state: string; members: string[]}[]): void {
  if (!active.length) return
  throw new UserError(
    `consumer groups still have members, so their offsets cannot be restored: ${active.map((g) => `${g.groupId} (${g.state}; ${g.members.length} member${g.members.length === 1 ? '' : 's'}: ${g.members.slice(0, 3).join(', ')})`).join('; ')}`,
    ['Stop the consumers of these groups (a group accepts new offsets only with no members), then run the restore again: nothing was changed.'],
  )
}

/** Where a restore records which topics it created or found empty, so a re-run fills them up instead of leaving them half-filled. */
export interface RestoreMarker {
  read(): Promise<string[] | null>
  write(topics: string[]): Promise<void>
}

export interface KafkaRestoreResult {
  topicsCreated: string[]
  topicsKept: string[]
  recordsWritten: number
  offsetsSet: number
  notes: string[]
}

/**
 * The committed offset a group had, in the restored topic: the number of restored
 * records before it (records written anew get offsets from 0, and the set may
 * lack the records retention had already deleted). `before` counts per committed offset.
 */
export class OffsetMap {
  private readonly targets = new Map<string, {offset: bigint; before: number}[]>()

  constructor(snapshot: KafkaSnapshot) {
    for (const g of snapshot.groups)
      for (const o of g.offsets) {
        const list = this.targets.get(`${o.topic}/${o.partition}`) ?? []
        if (!list.some((x) => x.offset === BigInt(o.offset))) list.push({offset: BigInt(o.offset), before: 0})
        this.targets.set(`${o.topic}/${o.partition}`, list)
      }
  }

  /** A record of the set at this original offset. */
  saw(topic: string, partition: number, offset: string): void {
    const o = BigInt(offset)
    for (const t of this.targets.get(`${topic}/${partition}`) ?? []) if (o < t.offset) t.before++
  }

  translate(topic: string, partition: number, offset: string): string {
    return String(this.targets.get(`${topic}/${partition}`)?.find((t) => t.offset === BigInt(offset))?.before ?? offset)
  }
}

/**
 * Restores topics, records and group offsets: missing topics are created with
 * their partitions, replication factor (at most the brokers there are) and
 * settings; records go back in order, per partition, into the topics this restore
 * created or found empty (a re-run continues after what is there); then each
 * group's offsets are set, translated to the restored records' offsets. Topics
 * that exist with records are left as they are and keep the offsets as recorded.
 */
export async function restoreKafka(
  kafka: Kafka,
  admin: Admin,
  snapshot: KafkaSnapshot,
  records: (() => Promise<Readable>) | null,
  marker: RestoreMarker,
  say: (what: string) => void,
): Promise<KafkaRestoreResult> {
  const result: KafkaRestoreResult = {topicsCreated: [], topicsKept: [], recordsWritten: 0, offsetsSet: 0, notes: []}
  const existing = new Set(await admin.listTopics())
  const brokers = (await admin.describeCluster()).brokers.length
  const missing = snapshot.topics.filter((t) => !existing.has(t.name))
  const ours = new Set((await marker.read()) ?? [])
  for (const t of snapshot.topics) {
    if (!existing.has(t.name)) ours.add(t.name)
    else if (!ours.has(t.name) && records) {
      const offsets = await admin.fetchTopicOffsets(t.name)
      if (offsets.every((o) => o.high === '0')) ours.add(t.name)
    }
  }
  for (const t of snapshot.topics) if (!ours.has(t.name)) result.topicsKept.push(t.name)
  await marker.write([...ours].sort())

  if (missing.length) {
    for (const t of missing) if (t.replicationFactor > brokers) result.notes.push(`topic ${t.name}: replication factor ${brokers} instead of ${t.replicationFactor}, as the cluster has ${brokers} broker${brokers === 1 ? '' : 's'}`)
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((t) => ({topic: t.name, numPartitions: t.partitions, replicationFactor: Math.min(t.replicationFactor, brokers), configEntries: Object.entries(t.configs).map(([name, value]) => ({name, value}))})),
    })
    result.topicsCreated = missing.map((t) => t.name)
    say(`topics created: ${result.topicsCreated.join(', ')}`)
  }

  const map = new OffsetMap(snapshot)
  if (records) {
    // Where each of our partitions ends now: a re-run after a cut restore continues from there.
    const skip = new Map<string, number>()
    for (const name of ours) for (const o of await admin.fetchTopicOffsets(name)) skip.set(`${name}/${o.partition}`, Number(o.high))
    const producer = kafka.producer({idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false})
    await producer.connect()
    try {
      const batches = new Map<string, Message[]>()
      const flush = async (key: string) => {
        const messages = batches.get(key)
        if (!messages?.length) return
        batches.delete(key)
        await producer.send({topic: key.slice(0, key.lastIndexOf('/')), acks: -1, messages})
        result.recordsWritten += messages.length
      }
      for await (const text of createInterface({input: await records(), crlfDelay: Infinity})) {
        if (!text) continue
        const r = JSON.parse(text) as RecordLine
        map.saw(r.t, r.p, r.o)
        if (!ours.has(r.t)) continue
        const key = `${r.t}/${r.p}`
        const left = skip.get(key) ?? 0
        if (left > 0) {
          skip.set(key, left - 1)
          continue
        }
        const list = batches.get(key) ?? []
        list.push({partition: r.p, key: r.k === null ? null : Buffer.from(r.k, 'base64'), value: r.v === null ? null : Buffer.from(r.v, 'base64'), headers: headersOf(r.h), timestamp: r.ts})
        batches.set(key, list)
        if (list.length >= 500) await flush(key)
      }
      for (const key of [...batches.keys()]) await flush(key)
    } finally {
      await producer.disconnect().catch(() => {})
    }
    say(`${result.recordsWritten} records written into ${[...ours].length} topics`)
  }

  const partitionsOf = new Map((await admin.fetchTopicMetadata({topics: snapshot.topics.map((t) => t.name)})).topics.map((t) => [t.name, t.partitions.length]))
  for (const g of snapshot.groups) {
    const byTopic = new Map<string, {partition: number; offset: string}[]>()
    for (const o of g.offsets) {
      if (o.partition >= (partitionsOf.get(o.topic) ?? 0)) {
        result.notes.push(`group ${g.groupId}: ${o.topic} has no partition ${o.partition} here; its offset was not set`)
        continue
      }
      const offset = records && ours.has(o.topic) ? map.translate(o.topic, o.partition, o.offset) : o.offset
      byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), {partition: o.partition, offset}])
    }
    for (const [topic, partitions] of byTopic) {
      await admin.setOffsets({groupId: g.groupId, topic, partitions})
      result.offsetsSet += partitions.length
    }
  }
  if (snapshot.groups.length) say(`${result.offsetsSet} committed offsets of ${snapshot.groups.length} consumer groups set`)
  return result
}
