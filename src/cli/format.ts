import type {HealthReport} from '../ops/health.js'
import type {InstallResult, PlanResult} from '../ops/install.js'

export function formatPlan(r: PlanResult, opts: {diffs: boolean}): string {
  const lines: string[] = []
  if (r.blockers.length) {
    lines.push('Cannot install as planned:')
    for (const b of r.blockers) lines.push(`  ! ${b}`)
  }
  if (!r.steps.length) {
    lines.push(`No changes: cluster ${r.cluster} is converged (${r.unchanged} resources on ${r.hosts.length} hosts checked).`)
    return lines.join('\n')
  }
  lines.push(`Plan for cluster ${r.cluster} (release ${r.release}): ${r.changes} change${r.changes === 1 ? '' : 's'}, ${r.unchanged} already as desired.`)
  for (const host of r.hosts) {
    const steps = r.steps.filter((s) => s.host === host)
    if (!steps.length) continue
    lines.push('', `${host}:`)
    for (const s of steps) {
      lines.push(`  + [${s.component}] ${s.what}  — ${s.why}`)
      if (opts.diffs && s.diff) lines.push(...s.diff.split('\n').filter((l) => !l.startsWith('Index:') && !l.startsWith('====')).map((l) => `      ${l}`))
    }
  }
  return lines.join('\n')
}

export function formatInstall(r: InstallResult): string {
  if (!r.changes) return `0 changes: cluster ${r.cluster} is converged (${r.unchanged} resources checked).`
  const lines = [`${r.changed} changed, ${r.failed} failed, ${r.skipped} skipped on cluster ${r.cluster}.`]
  for (const o of r.applied.filter((x) => x.status !== 'changed')) lines.push(`  ${o.status === 'failed' ? '✗' : '-'} ${o.host}: ${o.what}${o.error ? `: ${o.error}` : ''}`)
  if (r.failed || r.skipped) lines.push('Fix the cause above, then run `imctl install` again: it picks up where this run stopped.')
  return lines.join('\n')
}

export function formatHealth(r: HealthReport): string {
  const lines = [`Health of cluster ${r.cluster}: ${r.status.toUpperCase()}`]
  for (const c of r.checks) lines.push(`  ${c.degraded ? 'DEGR' : c.ok ? 'ok  ' : 'FAIL'} ${c.host.padEnd(10)} ${c.component.padEnd(11)} ${c.check}: ${c.detail} (${c.ms} ms)`)
  if (r.status === 'degraded') lines.push('Every component serves, but a node is down: see the DEGR lines, start it again (`imctl install` starts stopped services).')
  return lines.join('\n')
}
