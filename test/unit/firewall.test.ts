import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {component} from '../../src/components/registry.js'
import type {ComponentName} from '../../src/config/model.js'
import {ValidationError} from '../../src/errors.js'
import {entryHosts, firewallProblem, sourceAllows, firewallUnit, openPorts, parseFirewall, renderFirewallFile, renderFirewallTable} from '../../src/plan/firewall.js'
import {planChanges} from '../../src/plan/planner.js'
import type {Resource} from '../../src/plan/resources.js'
import {classifyHealth, type HealthCheck} from '../../src/ops/health.js'
import {THREE_HOSTS_YAML, configFrom, convergedFacts, resourcesFor} from './helpers.js'

const ORDER: ComponentName[] = ['postgresql', 'redis', 'ejabberd', 'kafka', 'minio']
const dependsOn = (c: ComponentName) => component(c).dependsOn
const WITH_FIREWALL = `${THREE_HOSTS_YAML}firewall: {enabled: true, adminSources: [192.0.2.0/24, 2001:DB8:0:0::/32, 198.51.100.7/32]}\n`

function problemsOf(yaml: string): string[] {
  try {
    configFrom(yaml)
  } catch (e) {
    if (e instanceof ValidationError) return e.problems.map((p) => `${p.line}: ${p.path}: ${p.message}${p.hint ? ` (${p.hint})` : ''}`)
    throw e
  }
  return []
}

describe('firewall config', () => {
  it('is absent unless cluster.yaml has `firewall:`, and then no firewall resource exists', () => {
    assert.equal(configFrom(THREE_HOSTS_YAML).firewall, undefined)
    assert.equal(resourcesFor(THREE_HOSTS_YAML).some((r) => r.kind === 'firewall' || (r.kind === 'packages' && r.packages.some((p) => p.name === 'nftables'))), false)
  })

  it('keeps admin sources as nftables prints them: canonical, a bare address for /32', () => {
    assert.deepEqual(configFrom(WITH_FIREWALL).firewall, {enabled: true, adminSources: ['192.0.2.0/24', '2001:db8::/32', '198.51.100.7']})
    assert.deepEqual(configFrom(`${THREE_HOSTS_YAML}firewall: {enabled: true}\n`).firewall, {enabled: true, adminSources: []})
  })

  it('rejects bad admin sources with file:line and what to write instead', () => {
    const yaml = `${THREE_HOSTS_YAML}firewall:\n  enabled: true\n  adminSources:\n    - 10.0.0.5/8\n    - not-a-net\n    - 0.0.0.0/0\n    - 10.0.0.0/33\n`
    assert.deepEqual(problemsOf(yaml), [
      '25: firewall.adminSources[0]: "10.0.0.5/8" has host bits set (write the network, 10.0.0.0/8)',
      '26: firewall.adminSources[1]: "not-a-net" is not an address or CIDR network (write an address or a network such as 192.0.2.0/24 or 2001:db8::/32)',
      '27: firewall.adminSources[2]: "0.0.0.0/0" is everyone (leave adminSources out to let SSH in from anywhere)',
      '28: firewall.adminSources[3]: "10.0.0.0/33": a prefix of /33 is too long for IPv4 (write an address or a network such as 192.0.2.0/24 or 2001:db8::/32)',
    ])
    assert.match(problemsOf(`${THREE_HOSTS_YAML}firewall: {adminSources: [10.0.0.0/8]}\n`)[0]!, /^22: firewall: missing required key "enabled"/)
    assert.match(problemsOf(`${THREE_HOSTS_YAML}firewall: {enabled: true, open: [80]}\n`)[0]!, /^22: firewall.open: unknown key "open"/)
  })
})

describe('firewall rules', () => {
  const config = configFrom(WITH_FIREWALL)
  const host = (n: string) => config.hosts.find((h) => h.name === n)!

  it('the entry host opens the IM client ports to all; component ports only to the cluster', () => {
    assert.deepEqual(entryHosts(config), ['im1'])
    assert.deepEqual(openPorts(config, 'im1').map((p) => `${p.port} ${p.to}`), ['5222 public', '5280 public', '1883 public'])
    assert.deepEqual(openPorts(config, 'db1').map((p) => `${p.port} ${p.to}`), ['5432 cluster'])
  })

  it('renders the table exactly as nft lists it', () => {
    assert.equal(
      renderFirewallTable(config, host('db1')),
      `table inet imctl {
\tcomment "imctl: host db1 of cluster chat-prod"
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tiif "lo" accept
\t\tct state established,related accept
\t\tct state invalid drop
\t\ticmp type echo-request accept
\t\ticmpv6 type echo-request accept
\t\ticmpv6 type nd-neighbor-solicit accept
\t\ticmpv6 type nd-neighbor-advert accept
\t\ticmpv6 type nd-router-advert accept
\t\tip saddr 192.0.2.0/24 tcp dport 22 accept
\t\tip6 saddr 2001:db8::/32 tcp dport 22 accept
\t\tip saddr 198.51.100.7 tcp dport 22 accept
\t\tip saddr 10.0.0.11 tcp dport 5432 accept
\t\tip saddr 10.0.0.12 tcp dport 5432 accept
\t\tip saddr 10.0.0.13 tcp dport 5432 accept
\t}
}
`,
    )
    const v6 = configFrom(`${THREE_HOSTS_YAML.replace('10.0.0.12', 'FD00:0:0::0012')}firewall: {enabled: true}\n`)
    assert.match(renderFirewallTable(v6, host('db1')), /\t\tip6 saddr fd00::12 tcp dport 5432 accept\n/)
    const im = renderFirewallTable(configFrom(`${THREE_HOSTS_YAML}firewall: {enabled: true}\n`), host('im1'))
    assert.match(im, /\t\ttcp dport 22 accept\n\t\ttcp dport 5222 accept\n\t\ttcp dport 5280 accept\n\t\ttcp dport 1883 accept\n\t}/)
  })

  it('the file replaces only table inet imctl, in one transaction', () => {
    const file = renderFirewallFile(config, host('db1'))
    assert.ok(file.endsWith(`table inet imctl\ndelete table inet imctl\n${renderFirewallTable(config, host('db1'))}`))
    assert.doesNotMatch(file, /flush ruleset/)
    assert.match(firewallUnit(), /ExecStart=\/usr\/sbin\/nft -f \/etc\/imctl\/firewall.nft\n/)
    assert.doesNotMatch(firewallUnit(), /ExecStop/)
  })

  it('compares the loaded table as text', () => {
    const t = renderFirewallTable(config, host('db1'))
    assert.equal(parseFirewall('#imctl: no table\n'), null)
    assert.equal(parseFirewall(`${t}\n`), t)
    assert.equal(firewallProblem(parseFirewall(t), t), null)
    assert.match(firewallProblem(null, t)!, /not loaded/)
    assert.match(firewallProblem(t.replace('\t\tct state invalid drop\n', ''), t)!, /differs/)
  })
})

describe('firewall in the plan', () => {
  const resources = resourcesFor(WITH_FIREWALL)
  const config = configFrom(WITH_FIREWALL)
  const plan = (facts: ReturnType<typeof convergedFacts>) => planChanges(resources, facts, ORDER, dependsOn)
  const converged = () => {
    const facts = convergedFacts(config, resources)
    for (const h of ['db1', 'cache1', 'im1']) facts[h]!.paths['/etc/imctl'] = {type: 'directory', owner: 'root', group: 'root', mode: '755'}
    return facts
  }

  it('every SSH host gets nftables, the rules file, the boot unit and the loaded table', () => {
    for (const h of ['db1', 'cache1', 'im1']) {
      const mine = resources.filter((r) => r.host === h)
      assert.ok(mine.some((r) => r.kind === 'packages' && r.packages.some((p) => p.name === 'nftables')))
      assert.ok(mine.some((r) => r.kind === 'directory' && r.path === '/etc/imctl'))
      assert.ok(mine.some((r) => r.kind === 'file' && r.path === '/etc/imctl/firewall.nft' && r.mode === '600'))
      assert.ok(mine.some((r) => r.kind === 'file' && r.path === '/etc/systemd/system/imctl-firewall.service' && r.daemonReload))
      assert.ok(mine.some((r) => r.kind === 'firewall' && r.table !== null))
    }
  })

  it('loads and enables on a fresh host; a converged host has no step', () => {
    const facts = converged()
    assert.equal(plan(facts).steps.length, 0)
    facts['db1']!.firewall = null
    facts['db1']!.services['imctl-firewall'] = {loaded: false, active: false, enabled: false}
    const steps = plan(facts).steps
    assert.deepEqual(steps.map((s) => `${s.host}: ${s.what} (${s.why})`), ['db1: load the firewall rules from /etc/imctl/firewall.nft (table inet imctl is not loaded: the host is not filtered)'])
    assert.deepEqual(steps[0]!.run.type === 'exec' && steps[0]!.run.commands.map((c) => c.argv.join(' ')), ['nft -f /etc/imctl/firewall.nft', 'systemctl enable --quiet imctl-firewall'])
  })

  it('a loaded table that differs is loaded again, with a diff', () => {
    const facts = converged()
    const desired = resources.find((r): r is Extract<Resource, {kind: 'firewall'}> => r.kind === 'firewall' && r.host === 'im1')!
    facts['im1']!.firewall = desired.table!.replace('\t\ttcp dport 5222 accept\n', '')
    const [step, ...rest] = plan(facts).steps
    assert.equal(rest.length, 0)
    assert.equal(step!.why, 'table inet imctl differs from the rules imctl renders for this host')
    assert.match(step!.diff!, /\n\+\t\ttcp dport 5222 accept\n/)
  })

  it('refuses to load rules that would lock imctl out of SSH', () => {
    const facts = converged()
    facts['db1']!.firewall = null
    facts['db1']!.sshClient = '203.0.113.9'
    facts['im1']!.firewall = null
    facts['im1']!.sshClient = '192.0.2.77'
    const p = plan(facts)
    assert.deepEqual(p.blockers, ['db1: imctl reaches this host\'s SSH from 203.0.113.9, which firewall.adminSources (192.0.2.0/24, 2001:db8::/32, 198.51.100.7) leaves out: the rules would lock imctl out. Add that address or its network to adminSources'])
    assert.deepEqual(p.steps.map((s) => s.host), ['im1'])
    assert.equal(sourceAllows([], '203.0.113.9'), true)
    assert.equal(sourceAllows(['2001:db8::/32'], '2001:db8:1::5'), true)
    assert.equal(sourceAllows(['198.51.100.7'], '198.51.100.8'), false)
  })

  it('`enabled: false` removes the table and the boot unit, then has nothing to do', () => {
    const off = resourcesFor(`${THREE_HOSTS_YAML}firewall: {enabled: false}\n`)
    assert.equal(off.some((r) => r.kind === 'packages' && r.packages.some((p) => p.name === 'nftables')), false)
    const facts = converged()
    const steps = planChanges(off, facts, ORDER, dependsOn).steps
    assert.deepEqual(steps.map((s) => `${s.host}: ${s.what}`), ['db1', 'cache1', 'im1'].map((h) => `${h}: remove the firewall (table inet imctl, its boot unit)`))
    assert.deepEqual(steps[0]!.run.type === 'exec' && steps[0]!.run.commands.map((c) => c.argv.join(' ')), ['systemctl disable --quiet imctl-firewall', 'nft delete table inet imctl'])
    const gone = {...facts, ...Object.fromEntries(['db1', 'cache1', 'im1'].map((h) => [h, {...facts[h]!, firewall: null, services: {...facts[h]!.services, 'imctl-firewall': {loaded: true, active: false, enabled: false}}}]))}
    assert.equal(planChanges(off, gone, ORDER, dependsOn).steps.length, 0)
  })
})

describe('firewall in health', () => {
  it('a host without its rules is unhealthy even when the component it is listed under still serves', () => {
    const check = (over: Partial<HealthCheck>): HealthCheck => ({host: 'k1', component: 'kafka', check: 'x', ok: true, detail: '', ms: 1, ...over})
    const {status, checks} = classifyHealth([
      check({check: 'records produced and consumed', clusterLevel: true}),
      check({check: 'firewall (nftables table inet imctl)', ok: false, hostLevel: true, detail: 'table inet imctl is not loaded'}),
    ])
    assert.equal(status, 'unhealthy')
    assert.equal(checks[1]!.degraded, undefined)
  })
})
