/**
 * What backup and restore do to a store's service and files, per kind of host: over
 * SSH a systemd unit and the host's files; on an engine the component's container,
 * commands run inside it, and its volumes while it is stopped. The steps are data,
 * chosen by pure functions; runStoreStep is the one place that carries them out.
 */
import type {Readable} from 'node:stream'
import {component} from '../../components/registry.js'
import {containerRuntime} from '../../components/types.js'
import type {ComponentName} from '../../config/model.js'
import {atomicWrite} from '../../plan/planner.js'
import type {FileResource} from '../../plan/resources.js'
import {shScript, type RemoteCommand} from '../../transport/command.js'
import type {EngineConnection} from '../../transport/engine.js'
import {engineNames} from '../../transport/engine-names.js'
import type {HostConnection} from '../../transport/types.js'
import type {ClusterModel} from '../cluster.js'

export type StoreName = 'postgresql' | 'redis' | 'ejabberd'
export type HostKind = HostConnection['kind']

/** The systemd unit of each store's service on an SSH host. */
export const STORE_UNITS: Record<StoreName, string> = {postgresql: 'postgresql', redis: 'redis-server', ejabberd: 'ejabberd'}

export type StoreStep =
  /** A command where the store lives (its host, or inside its running container); `input` names the stream fed to it. */
  | {do: 'exec'; cmd: RemoteCommand; input?: 'data'}
  /** Stop or start the component's container; a start waits until `ready` succeeds. */
  | {do: 'stop-container' | 'start-container'; name: string; ready: RemoteCommand; description: string}
  /** A command on the volumes of the stopped container (engine only). */
  | {do: 'on-volumes'; component: ComponentName; cmd: RemoteCommand}

/** Stops or starts a store's service: `systemctl` over SSH, its container on an engine (a start waits until it answers). */
export function serviceStep(kind: HostKind, cluster: string, store: StoreName, op: 'stop' | 'start'): StoreStep {
  if (kind === 'ssh') return {do: 'exec', cmd: {argv: ['systemctl', op, STORE_UNITS[store]], root: true, description: `${op} ${STORE_UNITS[store]}`}}
  const name = engineNames.container(cluster, store)
  return {do: op === 'stop' ? 'stop-container' : 'start-container', name, ready: {...containerRuntime(component(store)).ready, component: store}, description: `${op} container ${name}`}
}

/** Where the RDB from a set waits in the volume until Redis is stopped (engine: nothing can be written into a stopped container's volume but by a helper). */
export const REDIS_STAGED = '/var/lib/redis/imctl-restore.rdb'

/** Moves the current Redis data aside (by the restore's tag) and, with `staged`, puts that file in place as dump.rdb. */
export function redisKeepAside(tag: string, staged?: string): RemoteCommand {
  const keep = 'cd /var/lib/redis && for f in dump.rdb appendonlydir; do if [ -e "$f" ]; then mv "$f" "$f.before-$1"; fi; done'
  return staged
    ? {argv: shScript(`${keep} && mv "$2" dump.rdb && chown redis:redis dump.rdb`, [tag, staged]), root: true, description: 'keep the current Redis data aside and put the restored RDB in place'}
    : {argv: shScript(keep, [tag]), root: true, description: 'keep the current Redis data aside'}
}

/**
 * Redis's data replaced by the RDB from the set, the current data kept aside, and
 * redis.conf written with AOF off (`confAofOff`) for the load that follows; Redis is
 * left stopped. Over SSH: stop, move aside, write dump.rdb, write the config. On an
 * engine every write needs the container running: the config and the RDB (staged in
 * the volume) first, then stop, then the swap on the stopped container's volume.
 * Repeatable: a re-run keeps whatever is there aside again under its own tag.
 */
export function redisPutSteps(kind: HostKind, cluster: string, tag: string, confAofOff: RemoteCommand): StoreStep[] {
  const rdb = atomicWrite('/var/lib/redis/dump.rdb', 'redis', 'redis', '660')
  if (kind === 'ssh') return [serviceStep(kind, cluster, 'redis', 'stop'), {do: 'exec', cmd: redisKeepAside(tag)}, {do: 'exec', cmd: rdb, input: 'data'}, {do: 'exec', cmd: confAofOff}]
  return [
    serviceStep(kind, cluster, 'redis', 'start'),
    {do: 'exec', cmd: confAofOff},
    {do: 'exec', cmd: {...atomicWrite(REDIS_STAGED, 'redis', 'redis', '660'), description: `stage the RDB from the set as ${REDIS_STAGED}`}, input: 'data'},
    serviceStep(kind, cluster, 'redis', 'stop'),
    {do: 'on-volumes', component: 'redis', cmd: redisKeepAside(tag, REDIS_STAGED)},
  ]
}

/** Carries out one step on the store's connection; `data` opens the stream an `input: 'data'` step is fed. */
export async function runStoreStep(conn: HostConnection, step: StoreStep, data?: () => Promise<Readable>): Promise<void> {
  if (step.do === 'exec') {
    if (step.input && !data) throw new Error(`bug: ${step.cmd.description} needs its input`)
    await conn.exec(step.input ? {...step.cmd, stdinStream: await data!()} : step.cmd)
    return
  }
  const engine = asEngine(conn, step.do)
  if (step.do === 'on-volumes') await engine.runOnVolumes(step.component, step.cmd)
  else if (step.do === 'stop-container') await engine.stopContainer(step.name)
  else await engine.startContainer(step.name, step.ready)
}

function asEngine(conn: HostConnection, what: string): EngineConnection {
  const base = (conn as Partial<StoreConnection>).base ?? conn
  if (base.kind !== 'engine') throw new Error(`bug: ${what} on SSH host ${conn.host.name}`)
  return base as EngineConnection
}

/** A connection bound to one store (onStore), and the host's connection it runs through. */
export interface StoreConnection extends HostConnection {
  readonly base: HostConnection
}

/**
 * The connection with every command run where `store` lives: on an engine inside its
 * container (a command naming another component keeps it); over SSH unchanged.
 */
export function onStore(conn: HostConnection, store: ComponentName): StoreConnection {
  const at = (cmd: RemoteCommand): RemoteCommand => ({component: store, ...cmd})
  const bound: StoreConnection = {
    base: conn,
    kind: conn.kind,
    host: conn.host,
    exec: (cmd) => conn.exec(at(cmd)),
    execBuffer: (cmd) => conn.execBuffer(at(cmd)),
    tunnel: (h, p, from) => conn.tunnel(h, p, from),
    close: () => conn.close(),
  }
  if (conn.output) bound.output = (cmd) => conn.output!(at(cmd))
  if (conn.stream) bound.stream = (cmd) => conn.stream!(at(cmd))
  return bound
}

/** The port a store listens on seen from where it runs (in a container: its own port there, not the published one). */
export function localPort(model: ClusterModel, kind: HostKind, store: 'redis' | 'postgresql'): number {
  if (kind === 'engine') return containerRuntime(component(store)).ports[0]!.containerPort
  return model.config.components[store].port
}

/** A file imctl manages for a component: a host file, or one it puts into the component's container. */
export function managedFile(model: ClusterModel, name: ComponentName, path: string): FileResource {
  for (const r of model.resources) {
    if (r.component !== name) continue
    if (r.kind === 'file' && r.path === path) return r
    if (r.kind === 'container') {
      const f = r.files.find((x) => x.path === path)
      if (f) return f
    }
  }
  throw new Error(`bug: no managed ${path} for ${name}`)
}
