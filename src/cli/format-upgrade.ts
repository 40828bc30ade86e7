import type {UpgradePlanResult} from '../ops/upgrade/plan-service.js'

export function formatUpgradePlan(r: UpgradePlanResult): string {
  const lines = [`Upgrade of cluster ${r.cluster}: ${r.path.join(' -> ')}${r.path.length > 2 ? ` (stops: ${r.path.slice(1, -1).join(', ')})` : ''}`]
  if (r.path.length === 1) return `${lines[0]}: the cluster runs ${r.to} already, nothing to do.`
  if (r.blockers.length) lines.push('Cannot upgrade as planned:', ...r.blockers.map((b) => `  ! ${b}`))
  lines.push('', 'First, without changing anything:', ...r.preflight.map((p) => `  - ${p}`))
  for (const h of r.hops) {
    lines.push('', `${h.from} -> ${h.to}${h.basis === 'predicted' ? ' (planned on the state the hop before leaves)' : ''}`)
    if (h.prepare.length) lines.push('  prepare, all hosts at once (nothing is interrupted):', ...h.prepare.map((s) => `    ${s.host}: ${s.what}`))
    h.units.forEach((u, i) => {
      lines.push(`  ${i + 1}. ${u.component} on ${u.host}${u.restarts.length ? `, restarts ${u.restarts.join(', ')}` : ''} (about ${u.estimateSeconds} s), then health:`)
      lines.push(...u.steps.map((s) => `       ${s.what}  — ${s.why}`))
    })
    for (const m of h.migrations) lines.push(`  migration ${m.id}: ${m.what} (${m.how})`)
    for (const f of h.finalize) lines.push(`  finally: ${f.what}`)
    if (!h.units.length && !h.prepare.length) lines.push('  nothing changes on the hosts; only cluster.yaml\'s release')
    lines.push('  expected downtime:')
    if (!h.downtime.length) lines.push('    none')
    for (const d of h.downtime) lines.push(`    ${d.component}: ${d.rolling ? 'none (rolling)' : `about ${d.seconds} s`}; ${d.how}`)
    lines.push(`  on failure: ${h.rollback}`)
  }
  lines.push('', r.estimates)
  return lines.join('\n')
}
