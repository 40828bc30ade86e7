import type {UpgradePlanResult} from '../ops/upgrade/plan-service.js'
import type {UpgradeResult} from '../ops/upgrade/upgrade.js'

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

export function formatUpgrade(r: UpgradeResult): string {
  const head =
    r.status === 'upgraded'
      ? `Cluster ${r.cluster} upgraded: ${r.path.join(' -> ')} in ${(r.ms / 1000).toFixed(0)} s; cluster.yaml says release: ${r.release}.`
      : r.status === 'unchanged'
        ? `Cluster ${r.cluster} runs ${r.to} already: nothing to do.`
        : r.status === 'refused'
          ? `Upgrade of cluster ${r.cluster} refused before any change:`
          : r.status === 'rolled-back'
            ? `Upgrade of cluster ${r.cluster} FAILED and was rolled back: the cluster runs ${r.release} (cluster.yaml says so).`
            : `Upgrade of cluster ${r.cluster} FAILED and the rollback did not complete: see below; the cluster is between ${r.release} and ${r.to}.`
  const lines = [head]
  for (const p of r.preflight.filter((c) => !c.ok)) lines.push(`  ! ${p.check}: ${p.detail}`)
  if (r.failure) lines.push(`  failed at ${r.failure.at} (${r.failure.hop}): ${r.failure.error}`)
  if (r.backup) lines.push(`  backup before the upgrade: ${r.backup.id} (${r.backup.taken ? 'taken now' : `${Math.round(r.backup.ageSeconds / 60)} min old`})`)
  lines.push('  timeline:')
  for (const t of r.timeline) lines.push(`    ${t.ok ? 'ok  ' : 'FAIL'} ${t.hop === '-' ? '' : `[${t.hop}] `}${t.phase} ${t.id} (${(t.ms / 1000).toFixed(1)} s)${t.detail ? `: ${t.detail}` : ''}`)
  if (r.downtime.length) lines.push('  measured interruption:', ...r.downtime.map((d) => `    ${d.component}: ${(d.totalMs / 1000).toFixed(1)} s${d.rolling ? ' per node in turn (rolling: the others served)' : ''}`))
  if (r.rollback) {
    lines.push(`  rollback: ${r.rollback.ok ? 'complete' : 'INCOMPLETE'}${r.rollback.restored ? `, backup ${r.rollback.restored} restored` : ''}`)
    for (const k of r.rollback.keptAside) lines.push(`    kept aside: ${k}`)
    for (const k of r.rollback.packagesLeft) lines.push(`    left: ${k}`)
    for (const n of r.rollback.notes) lines.push(`    note: ${n}`)
  }
  return lines.join('\n')
}
