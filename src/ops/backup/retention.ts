import {UserError} from '../../errors.js'

export interface RetentionPolicy {
  daily: number
  weekly: number
  monthly: number
}

/** Parses `daily=7,weekly=4,monthly=6` (any subset; missing buckets keep nothing). */
export function parseRetention(text: string): RetentionPolicy {
  const policy: RetentionPolicy = {daily: 0, weekly: 0, monthly: 0}
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(daily|weekly|monthly)=(\d{1,4})$/.exec(part)
    if (!m) throw new UserError(`--keep ${text}: cannot read ${JSON.stringify(part)}`, ['Write e.g. --keep daily=7,weekly=4,monthly=6.'])
    policy[m[1] as keyof RetentionPolicy] = Number(m[2])
  }
  if (!policy.daily && !policy.weekly && !policy.monthly) throw new UserError(`--keep ${text} keeps nothing`, ['Keep at least one bucket, e.g. daily=7.'])
  return policy
}

export interface DatedSet {
  id: string
  createdAt: Date
}

/** ISO week key (year-week) of a UTC date. */
function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()))
  const day = t.getUTCDay() || 7
  t.setUTCDate(t.getUTCDate() + 4 - day)
  const yearStart = new Date(Date.UTC(t.getUTCFullYear(), 0, 1))
  const week = Math.ceil(((t.getTime() - yearStart.getTime()) / 86_400_000 + 1) / 7)
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, '0')}`
}

/**
 * Which complete sets a policy keeps: the newest set of each of the last N days,
 * weeks and months that have sets, and always the newest set overall. Pure.
 */
export function retained(sets: DatedSet[], policy: RetentionPolicy): {keep: string[]; remove: string[]} {
  const newestFirst = [...sets].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
  const keep = new Set<string>()
  if (newestFirst[0]) keep.add(newestFirst[0].id)
  const buckets: [number, (d: Date) => string][] = [
    [policy.daily, (d) => d.toISOString().slice(0, 10)],
    [policy.weekly, isoWeek],
    [policy.monthly, (d) => d.toISOString().slice(0, 7)],
  ]
  for (const [count, keyOf] of buckets) {
    const seen = new Set<string>()
    for (const s of newestFirst) {
      if (seen.size >= count) break
      const k = keyOf(s.createdAt)
      if (seen.has(k)) continue
      seen.add(k)
      keep.add(s.id)
    }
  }
  return {keep: newestFirst.filter((s) => keep.has(s.id)).map((s) => s.id), remove: newestFirst.filter((s) => !keep.has(s.id)).map((s) => s.id)}
}
