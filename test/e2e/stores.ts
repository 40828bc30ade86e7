/**
 * MinIO and Kafka as the restore drill sees them: seeded and read with clients of
 * this machine's own, straight to the sandbox hosts' addresses (not through imctl),
 * and digested into plain text that compares equal when the data is equal.
 */
import {createHash, randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand, S3Client} from '@aws-sdk/client-s3'
import kafkajs, {type Admin, type Kafka} from 'kafkajs'
import {parse} from 'yaml'

const {Kafka: KafkaClient, logLevel} = kafkajs
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

export interface StoreAccess {
  s3: S3Client
  kafka: Kafka
  admin: Admin
  close(): Promise<void>
}

/** MinIO as its root user and Kafka as imctl's SCRAM user, on the host `address`. */
export async function openStores(address: string, secretsFile: string): Promise<StoreAccess> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  const secrets = parse(readFileSync(secretsFile, 'utf8')) as {minio: {root_password: string}; kafka: {imctl_password: string}}
  const s3 = new S3Client({endpoint: `http://${address}:9000`, forcePathStyle: true, region: 'us-east-1', credentials: {accessKeyId: 'imctl-root', secretAccessKey: secrets.minio.root_password}, maxAttempts: 2})
  const kafka = new KafkaClient({clientId: 'e2e-drill', brokers: [`${address}:9092`], sasl: {mechanism: 'scram-sha-512', username: 'imctl', password: secrets.kafka.imctl_password}, logLevel: logLevel.NOTHING})
  const admin = kafka.admin()
  await admin.connect()
  return {
    s3,
    kafka,
    admin,
    close: async () => {
      await admin.disconnect()
      s3.destroy()
    },
  }
}

export const BIG_OBJECT_BYTES = 9 * 1024 * 1024

/** Objects in the config bucket chat-media (one above a multipart part), one in imctl-archive, and a bucket made by hand. */
export async function seedObjects(s3: S3Client): Promise<void> {
  await s3.send(new CreateBucketCommand({Bucket: 'made-by-hand'}))
  const put = (Bucket: string, Key: string, Body: Buffer | string, extra: {ContentType?: string; Metadata?: Record<string, string>} = {}) => s3.send(new PutObjectCommand({Bucket, Key, Body, ...extra}))
  await put('chat-media', 'avatars/alice.png', randomBytes(2000), {ContentType: 'image/png', Metadata: {owner: 'alice', 'uploaded-by': 'drill'}})
  await put('chat-media', 'files/report.bin', randomBytes(BIG_OBJECT_BYTES))
  await put('chat-media', `deep/${'x'.repeat(120)}/ü.txt`, 'a long key with a non-ASCII name\n', {ContentType: 'text/plain; charset=utf-8'})
  await put('chat-media', 'empty/', '')
  await put('imctl-archive', '2026/11/alice.jsonl', '{"m":"archived"}\n', {ContentType: 'application/x-ndjson'})
  await put('made-by-hand', 'note.txt', 'made outside cluster.yaml\n')
}

/** Every object outside imctl-backups (and outside a restore's kept-aside copies): key, size, sha256, content type, metadata. */
export async function objectsDigest(s3: S3Client): Promise<string[]> {
  const out: string[] = []
  for (const b of (await s3.send(new ListBucketsCommand({}))).Buckets ?? []) {
    if (b.Name === 'imctl-backups' || b.Name === 'imctl-health') continue
    out.push(`bucket ${b.Name}`)
    let token: string | undefined
    do {
      const page = await s3.send(new ListObjectsV2Command({Bucket: b.Name, ContinuationToken: token}))
      for (const o of page.Contents ?? []) {
        if (o.Key!.startsWith('.imctl-before-restore/')) continue
        const got = await s3.send(new GetObjectCommand({Bucket: b.Name, Key: o.Key}))
        const bytes = await got.Body!.transformToByteArray()
        out.push(`${b.Name}/${o.Key} ${bytes.length} ${sha(bytes)} ${got.ContentType} ${JSON.stringify(Object.entries(got.Metadata ?? {}).sort())}`)
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
  }
  return out
}

export const TOPIC = 'chat-events'
export const GROUP = 'chat-indexer'

/**
 * chat-events (3 partitions, its own retention) with 30 records carrying keys,
 * headers and timestamps, all consumed and committed by group chat-indexer, then
 * 6 more it has not read; and a compacted topic with a tombstone.
 */
export async function seedKafka(s: StoreAccess): Promise<void> {
  await s.admin.createTopics({
    waitForLeaders: true,
    topics: [
      {topic: TOPIC, numPartitions: 3, replicationFactor: 1, configEntries: [{name: 'retention.ms', value: '1209600000'}]},
      {topic: 'profiles', numPartitions: 1, replicationFactor: 1, configEntries: [{name: 'cleanup.policy', value: 'compact'}]},
    ],
  })
  // Idempotent: a send retried on a loaded machine must not write its records twice.
  const producer = s.kafka.producer({idempotent: true, maxInFlightRequests: 1})
  await producer.connect()
  await producer.send({topic: TOPIC, acks: -1, messages: Array.from({length: 30}, (_, i) => ({partition: i % 3, key: `user-${i}`, value: `event ${i}`, headers: {source: 'drill', seq: [String(i), 'again']}, timestamp: String(Date.now() - 60_000 + i)}))})
  await producer.send({topic: 'profiles', acks: -1, messages: [{key: 'alice', value: '{"name":"Alice"}'}, {key: 'bob', value: null}, {key: 'carol', value: Buffer.from([0, 255, 7])}]})
  await consumeToEnd(s, GROUP)
  await producer.send({topic: TOPIC, acks: -1, messages: Array.from({length: 6}, (_, i) => ({partition: i % 3, key: `late-${i}`, value: `not read yet ${i}`}))})
  await producer.disconnect()
}

/** Reads chat-events to its current end as group `groupId`, committing each record. */
export async function consumeToEnd(s: StoreAccess, groupId: string): Promise<void> {
  const left = new Map((await s.admin.fetchTopicOffsets(TOPIC)).map((o) => [o.partition, Number(o.high)]))
  const consumer = s.kafka.consumer({groupId})
  await consumer.connect()
  await consumer.subscribe({topic: TOPIC, fromBeginning: true})
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${TOPIC} not consumed to its end in 60 s: ${JSON.stringify([...left])}`)), 60_000)
    const check = () => {
      if ([...left.values()].every((end) => end <= 0)) {
        clearTimeout(timer)
        resolve()
      }
    }
    check()
    void consumer.run({
      autoCommitThreshold: 1,
      eachMessage: async ({partition, message}) => {
        if (Number(message.offset) + 1 >= (left.get(partition) ?? 0)) left.set(partition, 0)
        check()
      },
    })
  })
  await consumer.disconnect()
}

/** Each topic's settings, partitions and records (offset, timestamp, key, value, headers), and each group's committed offsets. */
export async function kafkaDigest(s: StoreAccess): Promise<{topics: Record<string, {configs: string[]; records: string[]}>; offsets: string[]}> {
  const names = (await s.admin.listTopics()).filter((t) => !t.startsWith('__') && t !== 'imctl.health').sort()
  const topics: Record<string, {configs: string[]; records: string[]}> = {}
  let total = 0
  for (const t of names) {
    const res = await s.admin.describeConfigs({includeSynonyms: false, resources: [{type: kafkajs.ConfigResourceTypes.TOPIC, name: t}]})
    const configs = res.resources[0]!.configEntries.filter((e) => (e as {configSource?: number}).configSource === kafkajs.ConfigSource.TOPIC_CONFIG).map((e) => `${e.configName}=${e.configValue}`)
    topics[t] = {configs: configs.sort(), records: []}
    total += (await s.admin.fetchTopicOffsets(t)).reduce((n, o) => n + Number(o.high) - Number(o.low), 0)
  }
  if (total) {
    const reader = s.kafka.consumer({groupId: `e2e-digest-${randomBytes(4).toString('hex')}`})
    await reader.connect()
    await reader.subscribe({topics: names, fromBeginning: true})
    let seen = 0
    await new Promise<void>((resolve) => {
      void reader.run({
        autoCommit: false,
        eachMessage: async ({topic, partition, message: m}) => {
          const headers = Object.entries(m.headers ?? {}).map(([k, v]) => `${k}=${[v].flat().map((x) => x?.toString('hex')).join('+')}`)
          topics[topic]!.records.push(`${partition}/${m.offset} ${m.timestamp} ${m.key?.toString('hex') ?? '-'} ${m.value?.toString('hex') ?? 'null'} ${headers.join(',')}`)
          if (++seen === total) resolve()
        },
      })
    })
    await reader.disconnect()
    for (const t of Object.values(topics)) t.records.sort()
  }
  const groups = (await s.admin.listGroups()).groups.map((g) => g.groupId).filter((g) => !/^(imctl-|e2e-digest-)/.test(g)).sort()
  const offsets: string[] = []
  for (const g of groups) for (const t of await s.admin.fetchOffsets({groupId: g, topics: names})) for (const p of t.partitions) if (p.offset !== '-1') offsets.push(`${g} ${t.topic}/${p.partition}=${p.offset}`)
  return {topics, offsets: offsets.sort()}
}

export async function deleteObject(s3: S3Client, bucket: string, key: string): Promise<void> {
  await s3.send(new DeleteObjectCommand({Bucket: bucket, Key: key}))
}

export async function putObject(s3: S3Client, bucket: string, key: string, body: Buffer): Promise<void> {
  await s3.send(new PutObjectCommand({Bucket: bucket, Key: key, Body: body}))
}

export async function getObject(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  return Buffer.from(await (await s3.send(new GetObjectCommand({Bucket: bucket, Key: key}))).Body!.transformToByteArray())
}

export async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  return ((await s3.send(new ListObjectsV2Command({Bucket: bucket, Prefix: prefix}))).Contents ?? []).map((o) => o.Key!)
}
