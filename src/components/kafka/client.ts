import {connect, type Socket} from 'node:net'
import {Kafka, logLevel} from 'kafkajs'
import type {ClusterModel} from '../../ops/cluster.js'
import type {HostConnection, Tunnel} from '../../transport/types.js'
import {hostForUrl, IMCTL_USER, kafkaNodes} from './index.js'

/** A kafkajs client logged in as imctl's SCRAM user, and the tunnels it runs through. */
export interface KafkaSession {
  kafka: Kafka
  close(): Promise<void>
}

/**
 * Connects imctl's own Kafka client. Brokers advertise their cluster addresses;
 * each is reached through an SSH tunnel to its host, so this machine needs no
 * route to the cluster network (jump hosts work as for every other command).
 */
export async function openKafka(model: ClusterModel, conns: Map<string, HostConnection>, clientId = 'imctl'): Promise<KafkaSession> {
  const placement = model.config.components.kafka
  const secrets = model.secrets.kafka
  if (!placement || !secrets) throw new Error('bug: Kafka client asked for on a cluster without Kafka')
  const tunnels = new Map<string, Tunnel>()
  try {
    await Promise.all(
      kafkaNodes(model.config).map(async (n) => {
        tunnels.set(`${hostForUrl(n.address)}:${placement.port}`, await conns.get(n.host)!.tunnel(n.address, placement.port))
      }),
    )
  } catch (e) {
    await Promise.allSettled([...tunnels.values()].map((t) => t.close()))
    throw e
  }
  const kafka = new Kafka({
    clientId,
    brokers: [...tunnels.keys()],
    sasl: {mechanism: 'scram-sha-512', username: IMCTL_USER, password: secrets.imctl_password},
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: {retries: 4, initialRetryTime: 300},
    socketFactory: ({host, port, onConnect}) => {
      const t = tunnels.get(`${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`)
      // An address no tunnel leads to fails fast (port 1 refuses) instead of leaving the cluster.
      const socket: Socket = connect({host: '127.0.0.1', port: t ? t.port : 1}, onConnect)
      socket.setKeepAlive(true, 60_000)
      return socket
    },
  })
  return {
    kafka,
    close: async () => {
      await Promise.allSettled([...tunnels.values()].map((t) => t.close()))
    },
  }
}
