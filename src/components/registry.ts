import type {ComponentName} from '../config/model.js'
import {ejabberd} from './ejabberd/index.js'
import {haproxy} from './haproxy/index.js'
import {kafka} from './kafka/index.js'
import {minio} from './minio/index.js'
import {postgresql} from './postgresql/index.js'
import {redis} from './redis/index.js'
import type {Component} from './types.js'

/** Every component imctl knows, in dependency order. */
export const COMPONENTS: readonly Component[] = [postgresql, redis, ejabberd, kafka, minio, haproxy]

export function component(name: ComponentName): Component {
  const c = COMPONENTS.find((x) => x.name === name)
  if (!c) throw new Error(`bug: unknown component ${name}`)
  return c
}
