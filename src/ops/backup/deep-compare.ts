/**
 * What `backup verify --deep` compares after the throwaway restore: what the set
 * says (manifest counts, the MinIO index, the Kafka snapshot) against what the
 * restored stores hold. Pure: each returns the mismatches, each naming the
 * artifact it concerns.
 */
import type {ObjectHeaders} from '../../components/minio/s3.js'
import type {KafkaSnapshot} from './kafka.js'
import type {MinioObjectRecord} from './minio.js'

export interface Mismatch {
  artifact: string
  problem: string
}

/** Every table's row count in the manifest against the restored database's. */
export function compareRowCounts(artifact: string, expected: Record<string, number>, got: Record<string, number>): Mismatch[] {
  const out: Mismatch[] = []
  for (const [table, rows] of Object.entries(expected)) {
    if (got[table] !== rows) out.push({artifact, problem: `table ${table}: ${got[table] ?? 'missing'} rows restored, manifest says ${rows}`})
  }
  return out
}

/** An object as read back from the restored MinIO. */
export interface RestoredObject {
  size: number
  sha256: string
  headers: ObjectHeaders
}

const headerText = (h: ObjectHeaders) =>
  JSON.stringify({
    contentType: h.contentType ?? '',
    cacheControl: h.cacheControl ?? '',
    contentDisposition: h.contentDisposition ?? '',
    contentEncoding: h.contentEncoding ?? '',
    contentLanguage: h.contentLanguage ?? '',
    metadata: Object.entries(h.metadata).sort(),
  })

/**
 * Every bucket and object of the index against the restored MinIO (`bucket` ->
 * `key` -> object): present, same size, same sha256, same headers. Objects the
 * restored MinIO has beyond the index (health probes) are not the set's concern.
 */
export function compareObjects(artifact: string, index: {buckets: string[]; objects: Iterable<MinioObjectRecord>}, restored: Map<string, Map<string, RestoredObject>>): Mismatch[] {
  const out: Mismatch[] = []
  for (const b of index.buckets) if (!restored.has(b)) out.push({artifact, problem: `bucket ${b} is missing after the restore`})
  for (const rec of index.objects) {
    const got = restored.get(rec.bucket)?.get(rec.key)
    const name = `object ${rec.bucket}/${rec.key}`
    if (!got) out.push({artifact, problem: `${name} is missing after the restore`})
    else if (got.size !== rec.size || got.sha256 !== rec.sha256) out.push({artifact, problem: `${name}: ${got.size} bytes with sha256 ${got.sha256} restored, the index says ${rec.size} bytes, ${rec.sha256}`})
    else if (headerText(got.headers) !== headerText(rec.headers)) out.push({artifact, problem: `${name}: headers ${headerText(got.headers)} restored, the index says ${headerText(rec.headers)}`})
  }
  return out
}

/** What the set's records say per partition: how many, and the committed offsets translated to the restored records' offsets. */
export interface RecordFacts {
  /** `topic/partition` -> records in the set. */
  counts: Map<string, number>
  /** `group topic/partition` -> the offset the restore should have set. */
  offsets: Map<string, string>
}

/**
 * The Kafka snapshot of the set against the restored cluster's: every topic with
 * its partitions, replication factor (at most `brokers`) and own settings; every
 * group's committed offsets (as recorded, or translated when records were
 * restored); with records, each partition's record count.
 */
export function compareKafka(
  artifacts: {topics: string; records: string},
  set: KafkaSnapshot,
  restored: KafkaSnapshot,
  brokers: number,
  records: RecordFacts | null,
): Mismatch[] {
  const out: Mismatch[] = []
  const topics = new Map(restored.topics.map((t) => [t.name, t]))
  for (const t of set.topics) {
    const got = topics.get(t.name)
    if (!got) {
      out.push({artifact: artifacts.topics, problem: `topic ${t.name} is missing after the restore`})
      continue
    }
    if (got.partitions !== t.partitions) out.push({artifact: artifacts.topics, problem: `topic ${t.name}: ${got.partitions} partitions restored, the set says ${t.partitions}`})
    const rf = Math.min(t.replicationFactor, brokers)
    if (got.replicationFactor !== rf) out.push({artifact: artifacts.topics, problem: `topic ${t.name}: replication factor ${got.replicationFactor} restored, expected ${rf}`})
    const want = JSON.stringify(Object.entries(t.configs).sort())
    const have = JSON.stringify(Object.entries(got.configs).sort())
    if (want !== have) out.push({artifact: artifacts.topics, problem: `topic ${t.name}: settings ${have} restored, the set says ${want}`})
    if (records) {
      for (const o of got.offsets) {
        const expected = records.counts.get(`${t.name}/${o.partition}`) ?? 0
        const n = Number(BigInt(o.high) - BigInt(o.low))
        if (n !== expected) out.push({artifact: artifacts.records, problem: `topic ${t.name} partition ${o.partition}: ${n} records restored, the set has ${expected}`})
      }
    }
  }
  const groups = new Map(restored.groups.map((g) => [g.groupId, new Map(g.offsets.map((o) => [`${o.topic}/${o.partition}`, o.offset]))]))
  for (const g of set.groups) {
    const got = groups.get(g.groupId)
    if (!got) {
      if (g.offsets.length) out.push({artifact: artifacts.topics, problem: `consumer group ${g.groupId} is missing after the restore`})
      continue
    }
    for (const o of g.offsets) {
      const where = `${o.topic}/${o.partition}`
      const expected = records?.offsets.get(`${g.groupId} ${where}`) ?? o.offset
      const have = got.get(where)
      if (have !== expected) out.push({artifact: artifacts.topics, problem: `consumer group ${g.groupId} on ${where}: offset ${have ?? 'none'} restored, expected ${expected}${expected !== o.offset ? ` (${o.offset} in the set, translated to the restored records)` : ''}`})
    }
  }
  return out
}
