import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {parseRetention, retained} from '../../src/ops/backup/retention.js'
import {UserError} from '../../src/errors.js'

const at = (iso: string) => ({id: iso, createdAt: new Date(iso)})

describe('backup retention', () => {
  it('reads a policy and refuses what it cannot read or what keeps nothing', () => {
    assert.deepEqual(parseRetention('daily=7,weekly=4,monthly=6'), {daily: 7, weekly: 4, monthly: 6})
    assert.deepEqual(parseRetention('weekly=2'), {daily: 0, weekly: 2, monthly: 0})
    assert.throws(() => parseRetention('daily=x'), (e: Error) => e instanceof UserError && /cannot read "daily=x"/.test(e.message))
    assert.throws(() => parseRetention('daily=0'), /keeps nothing/)
  })

  it('keeps the newest set of each of the last N days, weeks and months', () => {
    // Given two sets a day for ten days in January 2026 and one on each of three earlier month-ends
    const sets = [
      ...Array.from({length: 10}, (_, i) => [at(`2026-01-${String(i + 1).padStart(2, '0')}T03:00:00.000Z`), at(`2026-01-${String(i + 1).padStart(2, '0')}T15:00:00.000Z`)]).flat(),
      at('2025-12-31T03:00:00.000Z'),
      at('2025-11-30T03:00:00.000Z'),
      at('2025-10-31T03:00:00.000Z'),
    ]
    // When 3 days, 2 weeks and 3 months are kept
    const r = retained(sets, {daily: 3, weekly: 2, monthly: 3})
    // Then: Jan 10, 9, 8 (days; also week 2026-W02 and month 2026-01), Jan 4 (newest of week 2026-W01), Dec 31 and Nov 30 (months)
    assert.deepEqual(r.keep, ['2026-01-10T15:00:00.000Z', '2026-01-09T15:00:00.000Z', '2026-01-08T15:00:00.000Z', '2026-01-04T15:00:00.000Z', '2025-12-31T03:00:00.000Z', '2025-11-30T03:00:00.000Z'])
    assert.equal(r.keep.length + r.remove.length, sets.length)
    assert.ok(r.remove.includes('2025-10-31T03:00:00.000Z'))
    assert.ok(r.remove.includes('2026-01-10T03:00:00.000Z'), 'an older set of a kept day goes')
  })

  it('always keeps the newest set, and handles none', () => {
    assert.deepEqual(retained([at('2026-01-01T00:00:00.000Z')], {daily: 0, weekly: 0, monthly: 1}).keep, ['2026-01-01T00:00:00.000Z'])
    assert.deepEqual(retained([], {daily: 7, weekly: 0, monthly: 0}), {keep: [], remove: []})
  })
})
