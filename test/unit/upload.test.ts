import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {extractInto, finishArtifact, hashFiles, seedPartial, tarOf} from '../../src/plan/apply.js'

describe('artifact upload builders', () => {
  it('unpacks into DIR.partial, replacing hard links instead of writing through them', () => {
    assert.deepEqual(extractInto('/opt/imctl/kafka-4.4.0.partial').argv, ['sh', '-c', 'mkdir -p "$1" && tar -C "$1" -xf - --unlink-first --no-same-owner', 'sh', '/opt/imctl/kafka-4.4.0.partial'])
  })

  it('seeds DIR.partial from DIR by hard links, without its SHA256SUMS', () => {
    assert.deepEqual(seedPartial('/var/cache/imctl/debs').argv.slice(2), ['p="$1.partial"; if [ ! -d "$p" ] && [ -d "$1" ]; then cp -al "$1" "$p" && rm -f "$p/SHA256SUMS"; fi', 'sh', '/var/cache/imctl/debs'])
  })

  it('hashes only files that exist, and puts the checked copy in place last', () => {
    assert.deepEqual(hashFiles('/d.partial', ['a', 'libs/b.jar']).argv.slice(4), ['/d.partial', 'a', 'libs/b.jar'])
    assert.match(finishArtifact('/d').argv[2]!, /sha256sum -c --quiet --strict SHA256SUMS\) && rm -rf "\$1" && mv "\$p" "\$1"$/)
  })

  it('packs files with their modes into a tar that GNU tar unpacks', async () => {
    // Given two files, one of them in a subfolder and executable
    const src = mkdtempSync(join(tmpdir(), 'imctl-tar-src-'))
    mkdirSync(join(src, 'libs'))
    writeFileSync(join(src, 'libs', 'a.jar'), 'jar bytes')
    writeFileSync(join(src, 'minio'), Buffer.alloc(70_000, 7))
    // When they are packed and unpacked with the same command the hosts run
    const out = mkdtempSync(join(tmpdir(), 'imctl-tar-out-'))
    const chunks: Buffer[] = []
    for await (const c of tarOf(src, [{path: 'libs/a.jar'}, {path: 'minio', mode: '755'}]) as AsyncIterable<Buffer>) chunks.push(c)
    const r = spawnSync('tar', ['-C', out, '-xf', '-', '--unlink-first', '--no-same-owner'], {input: Buffer.concat(chunks)})
    // Then every byte and mode arrives
    assert.equal(r.status, 0, String(r.stderr))
    assert.equal(readFileSync(join(out, 'libs', 'a.jar'), 'utf8'), 'jar bytes')
    assert.deepEqual(readFileSync(join(out, 'minio')), Buffer.alloc(70_000, 7))
    assert.equal(statSync(join(out, 'minio')).mode & 0o777, 0o755)
    assert.equal(statSync(join(out, 'libs', 'a.jar')).mode & 0o777, 0o644)
  })
})
