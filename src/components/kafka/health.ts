import {randomBytes} from 'node:crypto'
import {withTimeout, type HealthCheck, type HealthContext} from '../../ops/health.js'
import {shScript, type RemoteCommand} from '../../transport/command.js'
import {openKafka} from './client.js'
import {hostForUrl, kafkaNodes, kafkaToolsFor} from './index.js'

/** imctl's own topic for the produce/consume probe. */
export const HEALTH_TOPIC = 'imctl.health'

/** Kafka's own quorum tool, run on a node: PLAINTEXT controller listener, no credentials needed. */
export function quorumStatusQuery(home: string, address: string, controllerPort: number): RemoteCommand {
  return {
    argv: shScript('exec /usr/bin/java -Dlog4j2.configurationFile=/etc/kafka/tools-log4j2.properties -cp "$1/libs/*" org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-controller "$2" describe --status', [
      home,
      `${hostForUrl(address)}:${controllerPort}`,
    ]),
    asUser: 'kafka',
    description: 'describe the KRaft controller quorum',
  }
}

export interface QuorumStatus {
  leaderId: number
  voters: number[]
  highWatermark: number | null
}

/** Parses `MetadataQuorumCommand describe --status` (`Key: value` lines; voters as JSON-ish `[{"id": 1, ...}]` or `[1,2,3]`). */
export function parseQuorumStatus(stdout: string): QuorumStatus {
  const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(stdout)?.[1]?.trim()
  const leader = Number(field('LeaderId'))
  if (!Number.isInteger(leader)) throw new Error(`no LeaderId in the quorum status: ${stdout.slice(0, 200)}`)
  const votersText = field('CurrentVoters') ?? ''
  const ids = [...votersText.matchAll(/"id":\s*(\d+)/g)].map((m) => Number(m[1]))
  const voters = ids.length ? ids : [...votersText.matchAll(/\d+/g)].map((m) => Number(m[0]))
  const hw = Number(field('HighWatermark'))
  return {leaderId: leader, voters, highWatermark: Number.isFinite(hw) ? hw : null}
}

/**
 * Kafka's checks: per node, that it is registered as a broker; for the cluster,
 * that the controller quorum has a leader and that a record produced with
 * acks=all is consumed back. Clients reach each broker through an SSH tunnel
 * to its host, at the address the broker advertises.
 */
export function kafkaHealthChecks(ctx: HealthContext): Promise<HealthCheck | HealthCheck[]>[] {
  const {model, conns} = ctx
  const nodes = kafkaNodes(model.config)
  const version = model.manifest.artifacts!.kafka!.version
  const first = nodes[0]!.host

  const session = (async () => {
    const client = await openKafka(model, conns, 'imctl-health')
    const admin = client.kafka.admin()
    try {
      await admin.connect()
    } catch (e) {
      await client.close()
      throw e
    }
    return {
      kafka: client.kafka,
      admin,
      close: async () => {
        await admin.disconnect().catch(() => {})
        await client.close()
      },
    }
  })()
  session.catch(() => {}) // each check reports the failure itself
  const brokers = session.then(({admin}) => admin.describeCluster())
  brokers.catch(() => {})

  const nodeChecks = nodes.map((n) =>
    ctx.timed(n.host, `broker ${n.nodeId} registered`, async () => {
      const c = await brokers
      if (!c.brokers.some((b) => b.nodeId === n.nodeId)) throw new Error(`node ${n.nodeId} is not among the live brokers (${c.brokers.map((b) => b.nodeId).join(', ') || 'none'}); see \`imctl logs kafka --host ${n.host}\``)
      return `${c.brokers.length} of ${nodes.length} brokers registered`
    }),
  )

  const quorum = ctx.timed(
    first,
    'controller quorum has a leader',
    async () => {
      const errors: string[] = []
      // Ask the first node that answers: with one node down, the others still know the leader.
      for (const n of nodes) {
        try {
          const t = kafkaToolsFor(model.config, version, n)
          const r = await conns.get(n.host)!.exec({...quorumStatusQuery(t.home, t.address, t.controllerPort), component: 'kafka'})
          const s = parseQuorumStatus(r.stdout)
          if (s.leaderId < 0) throw new Error('no leader elected')
          return `leader is node ${s.leaderId} of voters ${s.voters.join(', ')}`
        } catch (e) {
          errors.push(`${n.host}: ${(e as Error).message.split('\n')[0]}`)
        }
      }
      throw new Error(errors.join('; '))
    },
    {clusterLevel: true},
  )

  const probe = ctx.timed(
    first,
    `record produced (acks=all) and consumed on ${HEALTH_TOPIC}`,
    async () => {
      const {kafka, admin} = await session
      const topics = await admin.listTopics()
      if (!topics.includes(HEALTH_TOPIC)) {
        const rf = Math.min(3, nodes.length)
        await admin.createTopics({waitForLeaders: true, topics: [{topic: HEALTH_TOPIC, numPartitions: 1, replicationFactor: rf, configEntries: [{name: 'retention.ms', value: String(24 * 3600 * 1000)}]}]})
      }
      const token = `imctl-health-${randomBytes(6).toString('hex')}`
      const groupId = token
      const consumer = kafka.consumer({groupId, sessionTimeout: 10_000, rebalanceTimeout: 10_000, heartbeatInterval: 1000})
      const producer = kafka.producer({idempotent: true, maxInFlightRequests: 1})
      const t0 = Date.now()
      try {
        await Promise.all([consumer.connect(), producer.connect()])
        const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()))
        let seen!: () => void
        const received = new Promise<void>((resolve) => (seen = resolve))
        // A fresh group reads the (small, one-day) topic from its start, so the record cannot be missed.
        await consumer.subscribe({topic: HEALTH_TOPIC, fromBeginning: true})
        await consumer.run({eachMessage: async ({message}) => {
          if (message.value?.toString() === token) seen()
        }})
        const [meta] = await producer.send({topic: HEALTH_TOPIC, acks: -1, messages: [{value: token}]})
        await withTimeout(joined, 30_000, 'joining a consumer group')
        await withTimeout(received, 30_000, 'consuming the probe record')
        return `offset ${meta?.baseOffset ?? '?'} produced and consumed in ${Date.now() - t0} ms`
      } finally {
        await Promise.allSettled([consumer.disconnect(), producer.disconnect()])
        await admin.deleteGroups([groupId]).catch(() => {})
      }
    },
    {clusterLevel: true},
  )

  const all = Promise.all([...nodeChecks, quorum, probe])
  // Close the client and tunnels once every check has its answer.
  void all.finally(() => session.then((s) => s.close()).catch(() => {}))
  return [all]
}
