import assert from 'node:assert/strict'
import {Readable} from 'node:stream'
import {describe, it} from 'node:test'
import {compareKafka, compareObjects, compareRowCounts, type RestoredObject} from '../../src/ops/backup/deep-compare.js'
import {recordFacts} from '../../src/ops/backup/deep-verify.js'
import {whileCoordinatorLoads, type KafkaSnapshot, type RecordLine} from '../../src/ops/backup/kafka.js'
import type {MinioObjectRecord} from '../../src/ops/backup/minio.js'

const ARTIFACTS = {topics: 'kafka-topics.json.gz.enc', records: 'kafka-records.jsonl.gz.enc'}

const obj = (bucket: string, key: string, sha256: string, extra: Partial<MinioObjectRecord> = {}): MinioObjectRecord => ({type: 'object', entry: `objects/${key}`, bucket, key, size: 10, sha256, etag: '"e"', headers: {metadata: {}}, ...extra})
const restored = (entries: [string, string, RestoredObject][]) => {
  const m = new Map<string, Map<string, RestoredObject>>()
  for (const [b, k, o] of entries) m.set(b, (m.get(b) ?? new Map()).set(k, o))
  return m
}

describe('verify --deep: what the set says against what was restored', () => {
  it('row counts: each table that differs or is missing, named with the PostgreSQL artifact', () => {
    assert.deepEqual(compareRowCounts('postgresql-ejabberd.pgdump.enc', {users: 3, archive: 10}, {users: 3, archive: 10, extra: 1}), [])
    assert.deepEqual(compareRowCounts('pg.enc', {users: 3, archive: 10, last: 1}, {users: 2, archive: 10}), [
      {artifact: 'pg.enc', problem: 'table users: 2 rows restored, manifest says 3'},
      {artifact: 'pg.enc', problem: 'table last: missing rows restored, manifest says 1'},
    ])
  })

  it('objects: equal ones pass; a wrong byte, a missing object, other headers and a missing bucket are each named', () => {
    const index = {
      buckets: ['chat-media', 'empty-bucket'],
      objects: [obj('chat-media', 'a.png', 'aaa', {headers: {contentType: 'image/png', metadata: {owner: 'alice'}}}), obj('chat-media', 'b.bin', 'bbb'), obj('chat-media', 'c.txt', 'ccc', {headers: {contentType: 'text/plain', metadata: {}}})],
    }
    const good = restored([
      ['chat-media', 'a.png', {size: 10, sha256: 'aaa', headers: {contentType: 'image/png', metadata: {owner: 'alice'}}}],
      ['chat-media', 'b.bin', {size: 10, sha256: 'bbb', headers: {metadata: {}}}],
      ['chat-media', 'c.txt', {size: 10, sha256: 'ccc', headers: {contentType: 'text/plain', metadata: {}}}],
      ['chat-media', 'health-probe', {size: 1, sha256: 'zzz', headers: {metadata: {}}}],
    ])
    good.set('empty-bucket', new Map())
    assert.deepEqual(compareObjects('minio-objects.tar.enc', index, good), [])

    // A deliberately wrong object in the restore: one byte differs, so its sha256 does.
    const bad = restored([
      ['chat-media', 'a.png', {size: 10, sha256: 'aaa', headers: {contentType: 'image/png', metadata: {owner: 'mallory'}}}],
      ['chat-media', 'b.bin', {size: 10, sha256: 'bbX', headers: {metadata: {}}}],
    ])
    const problems = compareObjects('minio-objects.tar.enc', index, bad)
    assert.ok(problems.every((p) => p.artifact === 'minio-objects.tar.enc'))
    assert.deepEqual(
      problems.map((p) => p.problem.replace(/: .*/, '')),
      ['bucket empty-bucket is missing after the restore', 'object chat-media/a.png', 'object chat-media/b.bin', 'object chat-media/c.txt is missing after the restore'],
    )
    assert.match(problems[2]!.problem, /10 bytes with sha256 bbX restored, the index says 10 bytes, bbb/)
    assert.match(problems[1]!.problem, /headers .*mallory.* restored, the index says .*alice/)
  })

  const set: KafkaSnapshot = {
    topics: [
      {name: 'chat-events', partitions: 3, replicationFactor: 3, configs: {'retention.ms': '1209600000'}, offsets: [0, 1, 2].map((p) => ({partition: p, low: '0', high: '12'}))},
      {name: 'profiles', partitions: 1, replicationFactor: 1, configs: {'cleanup.policy': 'compact'}, offsets: [{partition: 0, low: '0', high: '3'}]},
    ],
    groups: [{groupId: 'indexer', protocolType: 'consumer', offsets: [0, 1, 2].map((p) => ({topic: 'chat-events', partition: p, offset: '10', metadata: null}))}],
  }
  /** The restored cluster as a correct restore leaves it on one broker: records from offset 0, offsets translated. */
  const restoredKafka = (): KafkaSnapshot => ({
    topics: [
      {name: 'chat-events', partitions: 3, replicationFactor: 1, configs: {'retention.ms': '1209600000'}, offsets: [0, 1, 2].map((p) => ({partition: p, low: '0', high: '12'}))},
      {name: 'profiles', partitions: 1, replicationFactor: 1, configs: {'cleanup.policy': 'compact'}, offsets: [{partition: 0, low: '0', high: '3'}]},
    ],
    groups: [{groupId: 'indexer', protocolType: 'consumer', offsets: [0, 1, 2].map((p) => ({topic: 'chat-events', partition: p, offset: '10', metadata: null}))}],
  })
  const facts = {counts: new Map([['chat-events/0', 12], ['chat-events/1', 12], ['chat-events/2', 12], ['profiles/0', 3]]), offsets: new Map([0, 1, 2].map((p) => [`indexer chat-events/${p}`, '10']))}

  it('Kafka: a faithful restore on one broker passes (replication factor capped at the brokers there are)', () => {
    assert.deepEqual(compareKafka(ARTIFACTS, set, restoredKafka(), 1, facts), [])
    assert.deepEqual(compareKafka(ARTIFACTS, set, {...restoredKafka(), topics: restoredKafka().topics.map((t) => ({...t, offsets: []}))}, 1, null), [])
  })

  it('Kafka: other settings, partitions, a lost record, a wrong offset and a missing group are each named with their artifact', () => {
    const r = restoredKafka()
    r.topics[0]!.configs = {}
    r.topics[0]!.offsets[1]!.high = '11'
    r.topics[1]!.partitions = 2
    r.groups[0]!.offsets[2]!.offset = '7'
    const problems = compareKafka(ARTIFACTS, set, r, 1, facts)
    assert.deepEqual(problems, [
      {artifact: ARTIFACTS.topics, problem: 'topic chat-events: settings [] restored, the set says [["retention.ms","1209600000"]]'},
      {artifact: ARTIFACTS.records, problem: 'topic chat-events partition 1: 11 records restored, the set has 12'},
      {artifact: ARTIFACTS.topics, problem: 'topic profiles: 2 partitions restored, the set says 1'},
      {artifact: ARTIFACTS.topics, problem: 'consumer group indexer on chat-events/2: offset 7 restored, expected 10'},
    ])
    assert.deepEqual(compareKafka(ARTIFACTS, set, {topics: [], groups: []}, 1, null).map((p) => p.problem), [
      'topic chat-events is missing after the restore',
      'topic profiles is missing after the restore',
      'consumer group indexer is missing after the restore',
    ])
  })

  it('record facts: counts per partition and committed offsets translated past records the set lacks (compaction, retention)', async () => {
    const line = (t: string, p: number, o: number): RecordLine => ({t, p, o: String(o), ts: '0', k: null, v: null, h: []})
    // chat-events/0 holds offsets 4..11 only (0..3 deleted by retention before the backup); the group had committed 10.
    const lines = [...[4, 5, 6, 7, 8, 9, 10, 11].map((o) => line('chat-events', 0, o)), ...[0, 2].map((o) => line('profiles', 0, o))]
    const f = await recordFacts(set, Readable.from(lines.map((l) => JSON.stringify(l) + '\n')))
    assert.deepEqual([...f.counts], [['chat-events/0', 8], ['profiles/0', 2]])
    assert.equal(f.offsets.get('indexer chat-events/0'), '6')
    // A partition with no records in the set: the group's offset 10 becomes 0 there, as the restore sets it.
    assert.equal(f.offsets.get('indexer chat-events/1'), '0')
  })
})

describe('Kafka: waiting for the group coordinator of a fresh broker', () => {
  it('retries while the coordinator is not ready, and gives up on other errors at once or after the bound', async () => {
    let calls = 0
    const flaky = async () => {
      if (++calls < 3) throw new Error('This is not the correct coordinator for this group')
      return 'described'
    }
    assert.equal(await whileCoordinatorLoads(flaky, 5_000, 1), 'described')
    assert.equal(calls, 3)
    let other = 0
    await assert.rejects(whileCoordinatorLoads(async () => { other++; throw new Error('SASL authentication failed') }, 5_000, 1), /SASL/)
    assert.equal(other, 1)
    await assert.rejects(whileCoordinatorLoads(async () => { throw new Error('The coordinator is loading and hence can\'t process requests') }, 20, 5), /coordinator is loading/)
  })
})
