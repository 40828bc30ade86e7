import type {ClusterModel} from '../../ops/cluster.js'
import {shScript, type RemoteCommand} from '../../transport/command.js'
import type {HostConnection} from '../../transport/types.js'
import {openKafka} from './client.js'
import {hostForUrl} from './index.js'

/**
 * Kafka's FeatureCommand on a node, through the PLAINTEXT controller listener (no credentials).
 * `describe` lists each feature's finalized level; `upgrade --release-version X` raises every
 * feature to what release X finalizes, once all nodes run jars that support it.
 */
export function featureCommand(home: string, address: string, controllerPort: number, args: string[]): RemoteCommand {
  return {
    argv: shScript('h=$1; b=$2; shift 2; exec /usr/bin/java -Dlog4j2.configurationFile=/etc/kafka/tools-log4j2.properties -cp "$h/libs/*" org.apache.kafka.tools.FeatureCommand --bootstrap-controller "$b" "$@"', [
      home,
      `${hostForUrl(address)}:${controllerPort}`,
      ...args,
    ]),
    asUser: 'kafka',
    description: `Kafka FeatureCommand ${args.join(' ')}`,
  }
}

/** `FeatureCommand describe` lines → feature name → finalized level (`4.3-IV0`, or a number as text). */
export function parseFeatures(stdout: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of stdout.split('\n')) {
    const m = /^Feature:\s*(\S+)\s.*FinalizedVersionLevel:\s*(\S+)/.exec(line)
    if (m) out[m[1]!] = m[2]!
  }
  return out
}

export interface IsrState {
  partitions: number
  /** `topic/partition: isr 2 of 3`, for partitions whose in-sync replicas are not all their replicas. */
  short: string[]
}

/** Every partition of every topic (Kafka's own included), with its in-sync replicas against its replicas. */
export async function isrState(model: ClusterModel, conns: Map<string, HostConnection>): Promise<IsrState> {
  const client = await openKafka(model, conns, 'imctl-upgrade')
  const admin = client.kafka.admin()
  try {
    await admin.connect()
    const topics = await admin.listTopics()
    const meta = await admin.fetchTopicMetadata({topics})
    const short: string[] = []
    let partitions = 0
    for (const t of meta.topics) {
      for (const p of t.partitions) {
        partitions++
        if (p.isr.length < p.replicas.length || p.leader < 0) short.push(`${t.name}/${p.partitionId}: isr ${p.isr.length} of ${p.replicas.length}${p.leader < 0 ? ', no leader' : ''}`)
      }
    }
    return {partitions, short}
  } finally {
    await admin.disconnect().catch(() => {})
    await client.close()
  }
}

/** Waits (bounded) until every partition's in-sync replicas are all its replicas again: only then may the next node stop. */
export async function waitForFullIsr(model: ClusterModel, conns: Map<string, HostConnection>, timeoutMs: number): Promise<{partitions: number; ms: number}> {
  const t0 = Date.now()
  let last = 'not asked yet'
  for (;;) {
    try {
      const s = await isrState(model, conns)
      if (!s.short.length) return {partitions: s.partitions, ms: Date.now() - t0}
      last = `${s.short.length} of ${s.partitions} partitions short: ${s.short.slice(0, 5).join('; ')}`
    } catch (e) {
      last = (e as Error).message
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`Kafka's in-sync replicas were not full again after ${Math.round(timeoutMs / 1000)} s (${last})`)
    await new Promise((r) => setTimeout(r, 2000))
  }
}
