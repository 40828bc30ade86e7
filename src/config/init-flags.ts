import {UserError} from '../errors.js'
import type {HostAnswer} from './init.js'

/** Parses `name=db1,address=10.0.0.11,port=22,user=admin,sudo,key=~/.ssh/id,jump=ops@bastion:22`. */
export function parseHostFlag(spec: string): HostAnswer {
  const h: Partial<HostAnswer> = {}
  for (const part of spec.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=')
    const key = eq < 0 ? part : part.slice(0, eq)
    const value = eq < 0 ? '' : part.slice(eq + 1)
    switch (key) {
      case 'name':
      case 'address':
      case 'user':
        h[key] = value
        break
      case 'port': {
        const n = Number(value)
        if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UserError(`--host ${spec}: port ${value} is not a port`, ['Write port=22 (1 to 65535).'])
        h.port = n
        break
      }
      case 'sudo':
        if (['', 'true', 'yes', '1'].includes(value)) h.sudo = true
        else if (['false', 'no', '0'].includes(value)) h.sudo = false
        else throw new UserError(`--host ${spec}: sudo=${value} is neither yes nor no`, ['Write sudo (or sudo=true / sudo=false).'])
        break
      case 'agent':
        h.key = 'agent'
        break
      case 'key':
        h.key = value
        break
      case 'jump': {
        const m = /^(?:([^@]+)@)?([^:]+)(?::(\d+))?$/.exec(value)
        if (!m) throw new UserError(`--host ${spec}: jump=${value} is not [user@]address[:port]`)
        if (m[3] && (Number(m[3]) < 1 || Number(m[3]) > 65535)) throw new UserError(`--host ${spec}: jump port ${m[3]} is not a port`, ['Write jump=[user@]address[:port] with a port from 1 to 65535.'])
        h.jump = {address: m[2]!, ...(m[3] ? {port: Number(m[3])} : {}), ...(m[1] ? {user: m[1]} : {})}
        break
      }
      default:
        throw new UserError(`--host ${spec}: unknown field ${JSON.stringify(key)}`, ['Fields: name, address, port, user, sudo, key, agent, jump.'])
    }
  }
  if (!h.name || !h.address) throw new UserError(`--host ${spec}: needs name= and address=`, ['Example: --host name=db1,address=10.0.0.11'])
  return h as HostAnswer
}
