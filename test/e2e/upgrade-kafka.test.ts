/**
 * Kafka's minor upgrade on 3 brokers (4.3.1 → 4.4.0) with a producer (acks=all, idempotent)
 * and a consumer running the whole time: first a failure injected once every node runs the
 * new jars, before the feature bump, so the nodes go back to 4.3.1 one at a time; then the
 * upgrade through, metadata.version raised. No acknowledged record may be lost.
 */
import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Kafka, logLevel, type Consumer, type Producer} from 'kafkajs'
import {parse} from 'yaml'
import {createSandbox, editConfig, imctl, type Sandbox} from './harness.js'

const NAME = 'e2e-upk'
const FROM = 'ejabberd-23.01-debian12-kafka43'
const TO = 'ejabberd-23.01-debian12'
const TOPIC = 'e2e.upgrade'

describe('Kafka 4.3.1 -> 4.4.0 on 3 brokers under load, with a rollback first', {timeout: 1_500_000}, () => {
  let sb: Sandbox
  const keep = mkdtempSync(join(tmpdir(), 'imctl-e2e-upk-'))
  const bk = ['--backups', join(keep, 'sets'), '--key', join(keep, 'backup-key')]
  let kafka: Kafka
  let producer: Producer
  let consumer: Consumer
  const acked: string[] = []
  const consumed = new Set<string>()
  const sendErrors: string[] = []
  let producing = false
  let loop: Promise<void> = Promise.resolve()
  const jars = (h: string) => sb.onHost(h, 'systemctl show -p ExecStart imctl-kafka | grep -o "kafka-[0-9.]*/libs" | head -1').trim()
  const features = () => sb.onHost('h1', `runuser -u kafka -- java -Dlog4j2.configurationFile=/etc/kafka/tools-log4j2.properties -cp "$(systemctl show -p ExecStart imctl-kafka | grep -o '/opt/imctl/kafka-[0-9.]*')/libs/*" org.apache.kafka.tools.FeatureCommand --bootstrap-controller ${sb.hosts[0]!.address}:9093 describe`)

  /** One record every 100 ms while producing is on; a record counts only once the cluster acknowledged it. */
  function startProducing(): void {
    producing = true
    let n = acked.length
    loop = (async () => {
      while (producing) {
        const value = `r${++n}`
        try {
          await producer.send({topic: TOPIC, acks: -1, timeout: 30_000, messages: [{key: String(n % 7), value}]})
          acked.push(value)
        } catch (e) {
          sendErrors.push(`${value}: ${(e as Error).message}`)
        }
        await new Promise((r) => setTimeout(r, 100))
      }
    })()
  }

  async function stopProducing(): Promise<void> {
    producing = false
    await loop
  }

  async function allAckedConsumed(ms = 90_000): Promise<string[]> {
    const deadline = Date.now() + ms
    while (Date.now() < deadline && acked.some((v) => !consumed.has(v))) await new Promise((r) => setTimeout(r, 500))
    return acked.filter((v) => !consumed.has(v))
  }

  before(async () => {
    sb = await createSandbox(NAME, 3)
    editConfig(sb.config, (t) => `${t.replace(/^release: .*$/m, `release: ${FROM}`)}  kafka:\n    hosts: [h1, h2, h3]\n`)
    const gen = await imctl(['secrets', 'generate', '-c', sb.config, '--json'])
    assert.equal(gen.exitCode, 0, gen.stdout + gen.stderr)
    const r = await imctl(['install', '-c', sb.config, '--json'], {timeoutMs: 900_000})
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const secrets = parse(readFileSync(join(sb.dir, `${NAME}.secrets.yaml`), 'utf8')) as {kafka: {imctl_password: string}}
    kafka = new Kafka({
      clientId: 'e2e-upgrade',
      brokers: sb.hosts.map((h) => `${h.address}:9092`),
      sasl: {mechanism: 'scram-sha-512', username: 'imctl', password: secrets.kafka.imctl_password},
      logLevel: logLevel.NOTHING,
      retry: {retries: 10, initialRetryTime: 300, maxRetryTime: 5000},
    })
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({waitForLeaders: true, topics: [{topic: TOPIC, numPartitions: 6, replicationFactor: 3}]})
    await admin.disconnect()
    producer = kafka.producer({idempotent: true, maxInFlightRequests: 1})
    await producer.connect()
    consumer = kafka.consumer({groupId: 'e2e-upgrade', sessionTimeout: 15_000, heartbeatInterval: 1000})
    await consumer.connect()
    await consumer.subscribe({topic: TOPIC, fromBeginning: true})
    await consumer.run({eachMessage: async ({message}) => void consumed.add(message.value!.toString())})
    startProducing()
    await new Promise((r) => setTimeout(r, 3000))
    assert.ok(acked.length > 5, `only ${acked.length} records acknowledged before the upgrade: ${sendErrors.slice(0, 3).join('; ')}`)
  })

  after(async () => {
    producing = false
    await loop.catch(() => {})
    await Promise.allSettled([producer?.disconnect(), consumer?.disconnect()])
    await sb?.destroy()
  })

  it('a failure once every node runs 4.4.0 puts them back on 4.3.1 one at a time; the features stay at 4.3', async () => {
    const r = await imctl(['upgrade', '-c', sb.config, '--to', TO, ...bk, '--json'], {env: {IMCTL_TEST_UPGRADE_FAIL_AFTER: 'before-finalize'}, timeoutMs: 900_000})
    assert.equal(r.exitCode, 1, r.stdout + r.stderr)
    const u = r.json.result
    assert.equal(u.status, 'rolled-back', JSON.stringify(u.timeline, null, 1))
    // Kafka only: nothing to restore.
    assert.equal(u.rollback.restored, undefined)
    const units = u.timeline.filter((t: {phase: string}) => t.phase === 'unit').map((t: {hop: string; id: string}) => `${t.hop.startsWith('rollback') ? 'back' : 'up'} ${t.id}`)
    assert.equal(units.filter((x: string) => x.startsWith('up kafka@')).length, 3, units.join(', '))
    assert.equal(units.filter((x: string) => x.startsWith('back kafka@')).length, 3, units.join(', '))
    // Every node stopped only with every partition's ISR full.
    const gates = u.timeline.filter((t: {phase: string; id: string}) => t.phase === 'gate' && /^kafka isr/.test(t.id))
    assert.ok(gates.length >= 12 && gates.every((g: {ok: boolean}) => g.ok), JSON.stringify(gates))
    for (const h of ['h1', 'h2', 'h3']) assert.equal(jars(h), 'kafka-4.3.1/libs', h)
    assert.match(features(), /metadata\.version\s.*FinalizedVersionLevel:\s*4\.3-IV0/)
    assert.match(readFileSync(sb.config, 'utf8'), new RegExp(`^release: ${FROM}$`, 'm'))
  })

  it('the upgrade goes through: 4.4.0 everywhere, metadata.version 4.4, and no acknowledged record lost', async (t) => {
    const r = await imctl(['upgrade', '-c', sb.config, '--to', TO, ...bk, '--json'], {timeoutMs: 900_000})
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const u = r.json.result
    assert.equal(u.status, 'upgraded')
    assert.ok(u.timeline.some((t: {phase: string; ok: boolean}) => t.phase === 'finalize' && t.ok))
    assert.deepEqual(u.downtime.map((d: {component: string; rolling: boolean}) => [d.component, d.rolling]), [['kafka', true]])
    for (const h of ['h1', 'h2', 'h3']) assert.equal(jars(h), 'kafka-4.4.0/libs', h)
    assert.match(features(), /metadata\.version\s.*FinalizedVersionLevel:\s*4\.4-IV\d/)
    assert.match(readFileSync(sb.config, 'utf8'), new RegExp(`^release: ${TO}$`, 'm'))
    await new Promise((r) => setTimeout(r, 3000))
    await stopProducing()
    const missing = await allAckedConsumed()
    t.diagnostic(`${acked.length} records acknowledged, ${consumed.size} distinct consumed, ${sendErrors.length} sends failed (not acknowledged, so not counted)`)
    assert.deepEqual(missing, [], `${missing.length} of ${acked.length} acknowledged records never consumed`)
    // The producer kept going: the cluster took records while each node restarted.
    assert.ok(acked.length > 200, `${acked.length} records acknowledged, ${sendErrors.length} sends failed: ${sendErrors.slice(0, 3).join('; ')}`)
    const health = await imctl(['health', '-c', sb.config, '--json'])
    assert.equal(health.exitCode, 0, health.stdout)
  })
})
