import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {describe, it} from 'node:test'
import {
  archiveHealth,
  compareObject,
  dayOf,
  dayStartMicros,
  deleteBatchSql,
  exportSql,
  deleteBatches,
  lineFacts,
  objectKey,
  parseDuration,
  PartitionTally,
  restoreTailSql,
  resumePlan,
  rowsDigest,
  rowsDigestSql,
  copyTextLine,
  unfinishedRun,
  type ObjectRecord,
  type RunManifest,
} from '../../src/ops/archive/model.js'
import {archiveUnits} from '../../src/ops/archive/schedule.js'

const ts = (iso: string) => Date.parse(iso) * 1000
const line = (id: number, iso: string, extra = '') => `{"username":"alice","server_host":"d.test","timestamp":${ts(iso)},"xml":"<message id=\\"x\\"/>"${extra},"id":${id},"kind":"chat"}`

function obj(o: Partial<ObjectRecord> & Pick<ObjectRecord, 'key' | 'domain' | 'firstDay' | 'lastDay' | 'state'>): ObjectRecord {
  return {rows: 1, bytes: 1, sha256: '', rawBytes: 1, minId: 1, maxId: 1, partitions: [], deletedRows: 0, deletedBatches: 0, ...o}
}

function manifest(o: Partial<RunManifest> = {}): RunManifest {
  return {format: 1, id: '20260101T000000Z', cluster: 'c', olderThan: '90d', cutoffMicros: ts('2025-10-03T00:00:00Z'), cutoff: '2025-10-03T00:00:00.000Z', maxId: 500, domains: ['a.test', 'b.test'], domainsDone: [], state: 'running', startedAt: '', updatedAt: '', objects: [], ...o}
}

describe('archive: durations, days and keys', () => {
  it('reads durations and refuses anything else', () => {
    assert.equal(parseDuration('90d'), 90 * 86_400_000)
    assert.equal(parseDuration('12h'), 12 * 3_600_000)
    assert.equal(parseDuration('2w'), 14 * 86_400_000)
    for (const bad of ['90', 'd', '0d', '1.5d', '90 days', '-1d']) assert.equal(parseDuration(bad), null, bad)
  })

  it('puts a microsecond timestamp in its UTC day', () => {
    assert.equal(dayOf(ts('2026-03-01T23:59:59.999Z')), '2026-03-01')
    assert.equal(dayOf(ts('2026-03-02T00:00:00Z')), '2026-03-02')
    assert.equal(dayStartMicros('2026-03-02'), ts('2026-03-02T00:00:00Z'))
    assert.throws(() => dayStartMicros('2026-3-2'), /not a day/)
    assert.throws(() => dayStartMicros('2026-02-30'), /not a day/)
  })

  it('names objects by domain, first day and run', () => {
    assert.equal(objectKey('chat.example.com', '2026-01-05', '20260401T000000Z'), 'objects/chat.example.com/2026-01-05.20260401T000000Z.jsonl.gz')
  })
})

describe('archive: lines and partitions', () => {
  it('reads id and timestamp from the structure, not from text inside strings', () => {
    // Given a text column that contains what looks like an id
    const l = line(42, '2026-01-01T10:00:00Z', ',"txt":"x\\",\\"id\\":7,\\"timestamp\\":1"')
    assert.deepEqual(lineFacts(l), {id: 42, timestamp: ts('2026-01-01T10:00:00Z')})
    assert.throws(() => lineFacts('{"a":1}'), /not an archive row/)
  })

  it('tallies rows per day with ids and the sha256 of their lines', () => {
    const lines = [line(3, '2026-01-01T10:00:00Z'), line(1, '2026-01-01T11:00:00Z'), line(7, '2026-01-02T00:00:00Z')]
    const t = new PartitionTally(true)
    for (const l of lines) t.add(l)
    const parts = t.close()
    assert.deepEqual(
      parts.map((p) => [p.day, p.rows, p.minId, p.maxId, p.rawBytes]),
      [
        ['2026-01-01', 2, 1, 3, Buffer.byteLength(lines[0]! + lines[1]!) + 2],
        ['2026-01-02', 1, 7, 7, Buffer.byteLength(lines[2]!) + 1],
      ],
    )
    assert.equal(parts[0]!.sha256, createHash('sha256').update(`${lines[0]}\n${lines[1]}\n`).digest('hex'))
    assert.deepEqual(t.rows.map((r) => r.id), [3, 1, 7])
  })

  it('names every difference between an object as written and as read back', () => {
    const parts = [{day: '2026-01-01', rows: 2, rawBytes: 10, sha256: 'aa', minId: 1, maxId: 2}]
    const o = obj({key: 'k', domain: 'd', firstDay: '2026-01-01', lastDay: '2026-01-01', state: 'written', bytes: 5, sha256: 'ff', partitions: parts})
    assert.deepEqual(compareObject(o, {bytes: 5, sha256: 'ff', partitions: parts}), [])
    assert.deepEqual(compareObject(o, {bytes: 6, sha256: 'fe', partitions: [{...parts[0]!, rows: 1}]}), [
      'k: 6 bytes read back, 5 written',
      'k: sha256 read back differs from the one written',
      'k: its rows read back differ from the rows written (counts, ids or sha256 per day)',
    ])
  })

  it('digests rows regardless of their order, as the SQL side does', () => {
    const a = rowsDigest(['x', 'y', 'z'])
    assert.deepEqual(rowsDigest(['z', 'x', 'y']), a)
    assert.equal(a.rows, 3)
    assert.match(rowsDigestSql('true'), /^SELECT count\(\*\), to_hex\(\(coalesce\(sum\(\('x' \|\| lpad\(substr\(md5\(row_to_json\(a\)::text\), 1, 15\), 16, '0'\)\)::bit\(64\)::bigint\), 0\) % 1152921504606846976\)::bigint\) FROM public.archive a WHERE true;\n$/)
  })
})

describe('archive: SQL', () => {
  it('exports one domain from a day on, below the cutoff and the run\'s highest id, in time order', () => {
    assert.equal(
      exportSql({cutoffMicros: 1700, maxId: 99}, "o'brien.test", '1970-01-02'),
      `SELECT row_to_json(a)::text FROM public.archive a WHERE server_host = 'o''brien.test' AND timestamp >= 86400000000 AND timestamp < 1700 AND id <= 99 ORDER BY timestamp, id;\n`,
    )
    assert.equal(exportSql({cutoffMicros: 1700, maxId: 99}, 'd', null), `SELECT row_to_json(a)::text FROM public.archive a WHERE server_host = 'd' AND timestamp < 1700 AND id <= 99 ORDER BY timestamp, id;\n`)
  })

  it('deletes a batch of verified ids in one transaction, bounded to the domain and the batch\'s own timestamps', () => {
    assert.equal(
      deleteBatchSql('d', {ids: [5, 6, 9], minTs: 100, maxTs: 250}),
      "BEGIN;\nWITH gone AS (DELETE FROM public.archive WHERE server_host = 'd' AND timestamp >= 100 AND timestamp <= 250\n  AND id = ANY('{5,6,9}'::bigint[]) RETURNING 1) SELECT count(*) FROM gone;\nCOMMIT;\n",
    )
    // Batches follow time (then id), whatever order the rows came in, so a re-read gives the same batches.
    const rows = [{id: 9, timestamp: 30}, {id: 1, timestamp: 10}, {id: 5, timestamp: 20}, {id: 3, timestamp: 20}, {id: 7, timestamp: 40}]
    assert.deepEqual(deleteBatches(rows, 2), [
      {ids: [1, 3], minTs: 10, maxTs: 20},
      {ids: [5, 9], minTs: 20, maxTs: 30},
      {ids: [7], minTs: 40, maxTs: 40},
    ])
  })

  it('restores only ids not there yet, and rolls back an object that did not check out', () => {
    assert.match(restoreTailSql(true), /WHERE NOT EXISTS \(SELECT 1 FROM public.archive a WHERE a.id = rows.id\)/)
    assert.equal(restoreTailSql(false), '\\.\nROLLBACK;\n')
    assert.equal(copyTextLine('{"x":"a\\"b\\\\c"}'), '{"x":"a\\\\"b\\\\\\\\c"}')
  })
})

describe('archive: resuming a run from its manifest', () => {
  it('a fresh run exports every domain from the start', () => {
    assert.deepEqual(resumePlan(manifest()), {verify: [], delete: [], export: [{domain: 'a.test', fromDay: null}, {domain: 'b.test', fromDay: null}]})
  })

  it('killed after an export before its verify: verify it, then export from the day after it', () => {
    const m = manifest({objects: [obj({key: 'a1', domain: 'a.test', firstDay: '2025-01-01', lastDay: '2025-02-10', state: 'deleted'}), obj({key: 'a2', domain: 'a.test', firstDay: '2025-02-11', lastDay: '2025-03-31', state: 'written'})]})
    assert.deepEqual(resumePlan(m), {verify: ['a2'], delete: [], export: [{domain: 'a.test', fromDay: '2025-04-01'}, {domain: 'b.test', fromDay: null}]})
  })

  it('killed mid-delete: finish deleting; a finished domain is not exported again', () => {
    const m = manifest({domainsDone: ['a.test'], objects: [obj({key: 'a1', domain: 'a.test', firstDay: '2025-01-01', lastDay: '2025-10-02', state: 'deleted'}), obj({key: 'b1', domain: 'b.test', firstDay: '2025-01-01', lastDay: '2025-01-31', state: 'verified', deletedBatches: 3})]})
    assert.deepEqual(resumePlan(m), {verify: [], delete: ['b1'], export: [{domain: 'b.test', fromDay: '2025-02-01'}]})
  })

  it('resumes the newest unfinished run, failed or cut', () => {
    assert.equal(unfinishedRun([manifest({id: '1', state: 'done'}), manifest({id: '2', state: 'failed'})])?.id, '2')
    assert.equal(unfinishedRun([manifest({id: '1', state: 'running'}), manifest({id: '2', state: 'done'})])?.id, '1')
    assert.equal(unfinishedRun([manifest({id: '1', state: 'done'})]), undefined)
  })
})

describe('archive: health and schedule', () => {
  const now = new Date('2026-05-10T12:00:00Z')
  const sched = {every: '1d', olderThan: '90d', unit: 'imctl-archive-c', machine: 'ops1', installedAt: '2026-05-01T00:00:00Z'}
  it('a failed last run fails; an overdue one fails; a recent one passes', () => {
    assert.equal(archiveHealth(manifest({state: 'failed', error: 'boom'}), sched, now).ok, false)
    assert.match(archiveHealth(manifest({state: 'done', finishedAt: '2026-05-07T00:00:00Z'}), sched, now).detail, /^overdue: scheduled every 1d from ops1/)
    assert.deepEqual(archiveHealth(manifest({state: 'done', finishedAt: '2026-05-10T03:00:00Z'}), sched, now).ok, true)
    assert.equal(archiveHealth(undefined, undefined, now).detail, 'no run yet; not scheduled')
  })

  it('writes a oneshot service and a timer on this machine', () => {
    const u = archiveUnits({cluster: 'chat', every: '1d', olderThan: '90d', node: '/usr/bin/node', bin: '/opt/imctl/bin/run.js', configFile: '/etc/imctl/my cluster.yaml'})
    assert.match(u.service, /^ExecStart=\/usr\/bin\/node \/opt\/imctl\/bin\/run.js archive run --older-than 90d -c "\/etc\/imctl\/my cluster.yaml"$/m)
    assert.match(u.service, /^Type=oneshot$/m)
    assert.match(u.timer, /^OnUnitInactiveSec=1d$/m)
    assert.match(u.timer, /^Unit=imctl-archive-chat.service$/m)
  })
})
