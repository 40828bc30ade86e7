import {UserError} from '../errors.js'

/** `90s`, `30m`, `6h`, `2d` (a bare number is hours) → milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([smhd]?)$/.exec(text.trim())
  if (!m) throw new UserError(`${flag} ${JSON.stringify(text)} is not a duration`, [`Write it as a number with s, m, h or d, e.g. ${flag} 6h.`])
  const unit = {s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, '': 3_600_000}[m[2] as 's' | 'm' | 'h' | 'd' | '']
  return Number(m[1]) * unit
}
