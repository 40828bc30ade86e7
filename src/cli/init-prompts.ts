import {confirm, input, number, select} from '@inquirer/prompts'
import {isIP} from 'node:net'
import type {HostAnswer, InitAnswers} from '../config/init.js'

/** The interactive side of `imctl init`. */
export async function askInitAnswers(opts: {releases: string[]; defaults: {name?: string | undefined; domain?: string | undefined; release?: string | undefined}}): Promise<InitAnswers> {
  const name = await input({message: 'Cluster name', default: opts.defaults.name ?? 'chat', validate: (v) => /^[a-z][a-z0-9-]{0,30}$/.test(v) || 'lower-case letters, digits and dashes'})
  const domain = await input({message: 'XMPP domain (users log in as user@domain)', default: opts.defaults.domain ?? 'chat.example.com'})
  const release = await select({message: 'Release', choices: opts.releases.map((r) => ({value: r})), default: opts.defaults.release})
  const count = (await number({message: 'How many hosts?', default: 3, min: 1, max: 50})) ?? 3
  const hosts: HostAnswer[] = []
  for (let i = 1; i <= count; i++) {
    const hname = await input({message: `Host ${i}: name`, default: `h${i}`})
    const address = await input({message: `${hname}: cluster IP address`, validate: (v) => isIP(v) !== 0 || 'an IPv4 or IPv6 address'})
    const port = (await number({message: `${hname}: SSH port`, default: 22, min: 1, max: 65535})) ?? 22
    const user = await input({message: `${hname}: SSH user`, default: 'root'})
    const sudo = user !== 'root' ? await confirm({message: `${hname}: use sudo (passwordless)?`, default: true}) : false
    const useAgent = await confirm({message: `${hname}: authenticate with ssh-agent?`, default: Boolean(process.env.SSH_AUTH_SOCK)})
    const key = useAgent ? 'agent' : await input({message: `${hname}: private key file`, default: '~/.ssh/id_ed25519'})
    const viaJump = await confirm({message: `${hname}: reach it through a jump host?`, default: false})
    const jump = viaJump ? {address: await input({message: `${hname}: jump host address`}), user: await input({message: `${hname}: jump host user`, default: user})} : undefined
    hosts.push({name: hname, address, port, user, sudo, key, ...(jump ? {jump} : {})})
  }
  const names = hosts.map((h) => ({value: h.name}))
  const postgresql = await select({message: 'Which host runs PostgreSQL?', choices: names})
  const redis = await select({message: 'Which host runs Redis?', choices: names})
  const ejabberd = await select({message: 'Which host runs ejabberd?', choices: names})
  return {name, domain, release, hosts, placement: {postgresql, redis, ejabberd}}
}
