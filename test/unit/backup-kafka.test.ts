import assert from 'node:assert/strict'
import {Readable} from 'node:stream'
import {describe, it} from 'node:test'
import type {Admin, Kafka, Message} from 'kafkajs'
import {backedUpGroup, backedUpTopic, headerPairs, headersOf, OffsetMap, restoreKafka, type KafkaSnapshot, type RecordLine, type RestoreMarker} from '../../src/ops/backup/kafka.js'

/** A Kafka cluster in memory: topics with partitions of records, and group offsets; every call recorded. */
class FakeKafka {
  topics = new Map<string, {configs: Record<string, string>; rf: number; partitions: Message[][]}>()
  offsets = new Map<string, Map<string, string>>()
  calls: string[] = []
  /** Fails the producer's send after this many sends (a cut restore). */
  failAfterSends = Infinity

  get admin(): Admin {
    const self = this
    return {
      listTopics: async () => [...self.topics.keys()],
      describeCluster: async () => ({brokers: [{nodeId: 1, host: 'h1', port: 9092}], controller: 1, clusterId: 'x'}),
      fetchTopicOffsets: async (t: string) => self.topics.get(t)!.partitions.map((p, partition) => ({partition, offset: String(p.length), high: String(p.length), low: '0'})),
      fetchTopicMetadata: async ({topics}: {topics: string[]}) => ({topics: topics.filter((t) => self.topics.has(t)).map((name) => ({name, partitions: self.topics.get(name)!.partitions.map((_, i) => ({partitionId: i, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0, offlineReplicas: []}))}))}),
      createTopics: async ({topics}: {topics: {topic: string; numPartitions: number; replicationFactor: number; configEntries: {name: string; value: string}[]}[]}) => {
        for (const t of topics) {
          self.calls.push(`createTopic ${t.topic} ${t.numPartitions}x${t.replicationFactor} ${t.configEntries.map((e) => `${e.name}=${e.value}`).join(',')}`)
          self.topics.set(t.topic, {configs: Object.fromEntries(t.configEntries.map((e) => [e.name, e.value])), rf: t.replicationFactor, partitions: Array.from({length: t.numPartitions}, () => [])})
        }
        return true
      },
      setOffsets: async ({groupId, topic, partitions}: {groupId: string; topic: string; partitions: {partition: number; offset: string}[]}) => {
        const g = self.offsets.get(groupId) ?? new Map()
        for (const p of partitions) g.set(`${topic}/${p.partition}`, p.offset)
        self.offsets.set(groupId, g)
      },
    } as unknown as Admin
  }

  get kafka(): Kafka {
    const self = this
    let sends = 0
    return {
      producer: () => ({
        connect: async () => {},
        disconnect: async () => {},
        send: async ({topic, messages}: {topic: string; messages: Message[]}) => {
          if (sends++ >= self.failAfterSends) throw new Error('connection lost')
          for (const m of messages) self.topics.get(topic)!.partitions[m.partition!]!.push(m)
          self.calls.push(`send ${topic} ${messages.length}`)
        },
      }),
    } as unknown as Kafka
  }
}

/** chat-events: 2 partitions; partition 0 lost its first 2 records to retention before the backup (low 2). */
const snapshot: KafkaSnapshot = {
  topics: [
    {name: 'chat-events', partitions: 2, replicationFactor: 3, configs: {'retention.ms': '604800000'}, offsets: [{partition: 0, low: '2', high: '6'}, {partition: 1, low: '0', high: '3'}]},
    {name: 'profiles', partitions: 1, replicationFactor: 1, configs: {'cleanup.policy': 'compact'}, offsets: [{partition: 0, low: '0', high: '0'}]},
  ],
  groups: [
    {groupId: 'indexer', protocolType: 'consumer', offsets: [{topic: 'chat-events', partition: 0, offset: '5', metadata: null}, {topic: 'chat-events', partition: 1, offset: '3', metadata: null}]},
    {groupId: 'auditor', protocolType: 'consumer', offsets: [{topic: 'chat-events', partition: 0, offset: '2', metadata: null}]},
  ],
}
const lines: RecordLine[] = [
  ...[2, 3, 4, 5].map((o): RecordLine => ({t: 'chat-events', p: 0, o: String(o), ts: String(1000 + o), k: Buffer.from(`k${o}`).toString('base64'), v: Buffer.from(`v${o}`).toString('base64'), h: [['n', Buffer.from(String(o)).toString('base64')]]})),
  ...[0, 1, 2].map((o): RecordLine => ({t: 'chat-events', p: 1, o: String(o), ts: String(2000 + o), k: null, v: o === 1 ? null : Buffer.from(`w${o}`).toString('base64'), h: []})),
]
const recordsText = lines.map((l) => JSON.stringify(l)).join('\n') + '\n'

function memoryMarker(): RestoreMarker & {value: string[] | null} {
  const m = {
    value: null as string[] | null,
    read: async () => m.value,
    write: async (t: string[]) => {
      m.value = t
    },
  }
  return m
}

describe('Kafka backups: what is kept and how it comes back', () => {
  it('leaves out Kafka internals, the health probe topic and imctl\'s own groups', () => {
    assert.deepEqual(['__consumer_offsets', 'imctl.health', 'chat-events'].filter(backedUpTopic), ['chat-events'])
    assert.deepEqual(['imctl-health-ab12', 'imctl-backup-20261126t1Z', 'indexer'].filter(backedUpGroup), ['indexer'])
  })

  it('keeps headers in order, a name once per value, bytes exact', () => {
    const pairs = headerPairs({a: Buffer.from([0, 255]), n: ['1', Buffer.from('x')], none: undefined})
    assert.deepEqual(pairs, [['a', 'AP8='], ['n', 'MQ=='], ['n', 'eA==']])
    assert.deepEqual(headersOf(pairs), {a: Buffer.from([0, 255]), n: [Buffer.from('1'), Buffer.from('x')]})
  })

  it('translates a committed offset to the number of restored records before it', () => {
    const map = new OffsetMap(snapshot)
    for (const l of lines) map.saw(l.t, l.p, l.o)
    assert.equal(map.translate('chat-events', 0, '5'), '3') // records 2, 3, 4 come before it
    assert.equal(map.translate('chat-events', 0, '2'), '0')
    assert.equal(map.translate('chat-events', 1, '3'), '3')
  })

  it('creates missing topics with their settings, writes the records in order and sets translated offsets', async () => {
    const k = new FakeKafka()
    const said: string[] = []
    const r = await restoreKafka(k.kafka, k.admin, snapshot, async () => Readable.from([recordsText]), memoryMarker(), (w) => said.push(w))
    assert.deepEqual(k.calls.filter((c) => c.startsWith('create')), ['createTopic chat-events 2x1 retention.ms=604800000', 'createTopic profiles 1x1 cleanup.policy=compact'])
    assert.deepEqual(r.notes, ['topic chat-events: replication factor 1 instead of 3, as the cluster has 1 broker'])
    assert.deepEqual(k.topics.get('chat-events')!.partitions.map((p) => p.map((m) => `${m.key?.toString() ?? '-'}:${m.value?.toString() ?? 'null'}@${m.timestamp}`)), [
      ['k2:v2@1002', 'k3:v3@1003', 'k4:v4@1004', 'k5:v5@1005'],
      ['-:w0@2000', '-:null@2001', '-:w2@2002'],
    ])
    assert.deepEqual(k.topics.get('chat-events')!.partitions[0]![0]!.headers, {n: Buffer.from('2')})
    assert.deepEqual(Object.fromEntries([...k.offsets].map(([g, m]) => [g, Object.fromEntries(m)])), {indexer: {'chat-events/0': '3', 'chat-events/1': '3'}, auditor: {'chat-events/0': '0'}})
    assert.equal(r.recordsWritten, 7)
  })

  it('after a cut restore, a re-run continues each partition where it stopped: no record twice, none missing', async () => {
    const k = new FakeKafka()
    const marker = memoryMarker()
    // Given a restore cut after its first send (partition 1's three records went, partition 0's did not)
    k.failAfterSends = 1
    await assert.rejects(restoreKafka(k.kafka, k.admin, snapshot, async () => Readable.from([recordsText.split('\n').slice(4).join('\n'), recordsText.split('\n').slice(0, 4).join('\n') + '\n']), marker, () => {}), /connection lost/)
    assert.deepEqual(marker.value, ['chat-events', 'profiles'])
    // When it runs again
    k.failAfterSends = Infinity
    const r = await restoreKafka(k.kafka, k.admin, snapshot, async () => Readable.from([recordsText]), marker, () => {})
    // Then every partition holds each record once, in order
    assert.deepEqual(k.topics.get('chat-events')!.partitions.map((p) => p.map((m) => m.timestamp)), [['1002', '1003', '1004', '1005'], ['2000', '2001', '2002']])
    assert.equal(r.recordsWritten, 4)
    assert.deepEqual(r.topicsCreated, [])
  })

  it('leaves a topic that exists with records as it is and keeps the offsets as recorded', async () => {
    const k = new FakeKafka()
    k.topics.set('chat-events', {configs: {}, rf: 1, partitions: [[{value: 'live'}], []]})
    const r = await restoreKafka(k.kafka, k.admin, snapshot, async () => Readable.from([recordsText]), memoryMarker(), () => {})
    assert.deepEqual(r.topicsKept, ['chat-events'])
    assert.deepEqual(k.topics.get('chat-events')!.partitions.map((p) => p.length), [1, 0])
    assert.equal(k.offsets.get('indexer')!.get('chat-events/0'), '5')
  })
})
