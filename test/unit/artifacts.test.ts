import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {type ReleaseManifest, artifactFiles, loadManifest, parseSums} from '../../src/config/manifest.js'
import {UserError} from '../../src/errors.js'
import type {IoHost, ProgressEvent} from '../../src/io.js'
import {
  STAMP_FILE,
  artifactCacheDir,
  checkStamp,
  ensureArtifact,
  ensureArtifactDetailed,
  ensureArtifacts,
  listArtifactsService,
  verifyArtifactDir,
  type VerifiedStamp,
} from '../../src/ops/artifacts.js'

const tmp = mkdtempSync(join(tmpdir(), 'imctl-artifacts-'))
const sha = (s: string) => createHash('sha256').update(s).digest('hex')

function recordingIo(): IoHost & {events: ProgressEvent[]} {
  const events: ProgressEvent[] = []
  return {events, notify: (e) => events.push(e), confirmHostKey: async () => false}
}

describe('sums files', () => {
  it('parses sha256sum output sorted by path, with comments and binary-mode lines', () => {
    const text = `# a comment\n${sha('b')}  libs/b.jar\n${sha('a')} *libs/a.jar\n\n`
    assert.deepEqual(parseSums(text, 'x.sha256'), [
      {path: 'libs/a.jar', sha256: sha('a')},
      {path: 'libs/b.jar', sha256: sha('b')},
    ])
  })

  it('treats a bad line, a path leaving the folder, a repeated path or an empty list as a bug', () => {
    for (const text of [`${sha('a')} libs/a.jar\n`, `${sha('a').slice(1)}  a\n`, `${sha('a')}  ../etc/passwd\n`, `${sha('a')}  /abs\n`, `${sha('a')}  a\n${sha('b')}  a\n`, '# only a comment\n']) {
      assert.throws(() => parseSums(text, 'x.sha256'), (e: Error) => !(e instanceof UserError) && /^bug: x\.sha256/.test(e.message), text)
    }
  })

  it("reads the reference release's sums: Kafka's jars and MinIO's two binaries", () => {
    const manifest = loadManifest('ejabberd-23.01-debian12')
    const kafka = artifactFiles(manifest, 'kafka')
    assert.equal(kafka.length, 92)
    assert.ok(kafka.every((f) => /^libs\/[^/]+\.jar$/.test(f.path)))
    assert.ok(kafka.some((f) => f.path === 'libs/kafka_2.13-4.4.0.jar'))
    assert.deepEqual([...kafka].sort((a, b) => (a.path < b.path ? -1 : 1)), kafka)
    assert.deepEqual(artifactFiles(manifest, 'minio'), [
      {path: 'mc', sha256: 'e7812086d50d87653d2406af2cc896a8067771a61b548bbe22eb0834f404470f'},
      {path: 'minio', sha256: '11b36577da0042a551cb47da76899b060af17ab6e2461b7db059738f2fa6462d'},
    ])
    assert.throws(() => artifactFiles(manifest, 'nats'), (e: UserError) => e instanceof UserError && e.nextSteps.join(' ').includes('kafka, minio'))
  })
})

describe('artifact cache dir', () => {
  it('is $IMCTL_CACHE_DIR/artifacts, else $XDG_CACHE_HOME/imctl/artifacts, else ~/.cache/imctl/artifacts', () => {
    assert.equal(artifactCacheDir({IMCTL_CACHE_DIR: '/srv/c', XDG_CACHE_HOME: '/x'}, '/home/u'), '/srv/c/artifacts')
    assert.equal(artifactCacheDir({XDG_CACHE_HOME: '/x'}, '/home/u'), '/x/imctl/artifacts')
    assert.equal(artifactCacheDir({}, '/home/u'), '/home/u/.cache/imctl/artifacts')
    // a relative XDG_CACHE_HOME is ignored, as the XDG spec says
    assert.equal(artifactCacheDir({XDG_CACHE_HOME: 'rel'}, '/home/u'), '/home/u/.cache/imctl/artifacts')
  })
})

describe('verified stamp', () => {
  const expected = [
    {path: 'a', sha256: sha('a')},
    {path: 'b', sha256: sha('b')},
  ]
  const stamp: VerifiedStamp = {name: 'x', version: '1', sums: 'S', files: {a: {size: 1, mtimeMs: 10, sha256: sha('a')}, b: {size: 1, mtimeMs: 20, sha256: sha('b')}}}
  const stats = new Map([
    ['a', {size: 1, mtimeMs: 10}],
    ['b', {size: 1, mtimeMs: 20}],
  ])

  it('vouches for files whose size and mtime are unchanged', () => {
    assert.deepEqual(checkStamp(stamp, 'S', expected, stats), {missing: [], rehash: []})
  })

  it('re-hashes a file whose size or mtime moved, everything without a stamp or after the sums changed, and lists missing files', () => {
    assert.deepEqual(checkStamp(stamp, 'S', expected, new Map([...stats, ['b', {size: 1, mtimeMs: 21}]])).rehash, ['b'])
    assert.deepEqual(checkStamp(stamp, 'S', expected, new Map([...stats, ['a', {size: 2, mtimeMs: 10}]])).rehash, ['a'])
    assert.deepEqual(checkStamp(undefined, 'S', expected, stats).rehash, ['a', 'b'])
    assert.deepEqual(checkStamp(stamp, 'OTHER', expected, stats).rehash, ['a', 'b'])
    assert.deepEqual(checkStamp(stamp, 'S', [...expected, {path: 'c', sha256: sha('c')}], stats), {missing: ['c'], rehash: []})
    // a stamp recording another hash for the path does not vouch for it
    assert.deepEqual(checkStamp(stamp, 'S', [{path: 'a', sha256: sha('other')}], stats).rehash, ['a'])
  })

  it('hashes once, then only what changed on disk', async () => {
    // Given a folder with the two files
    const dir = join(tmp, 'stamp')
    mkdirSync(dir)
    writeFileSync(join(dir, 'a'), 'a')
    writeFileSync(join(dir, 'b'), 'b')
    // When it is verified twice
    const first = await verifyArtifactDir(dir, 'x', '1', expected, 'S')
    const second = await verifyArtifactDir(dir, 'x', '1', expected, 'S')
    // Then the first hashed both and left a stamp, the second hashed nothing
    assert.equal(first.ok, true)
    assert.equal(first.hashed, 2)
    assert.ok(existsSync(join(dir, STAMP_FILE)))
    assert.equal(second.hashed, 0)
    assert.deepEqual(second.files, [
      {path: 'a', sha256: sha('a'), size: 1},
      {path: 'b', sha256: sha('b'), size: 1},
    ])
    // And a file with new content (and so a new mtime) is re-hashed and refused
    writeFileSync(join(dir, 'b'), 'B')
    utimesSync(join(dir, 'b'), new Date(), new Date(Date.now() + 5000))
    const third = await verifyArtifactDir(dir, 'x', '1', expected, 'S')
    assert.equal(third.ok, false)
    assert.equal(third.hashed, 1)
    assert.deepEqual(third.mismatched, [{path: 'b', expected: sha('b'), actual: sha('B')}])
  })
})

/**
 * A package layout of its own with a test recipe: it writes two files (the second from
 * $CONTENT, so a manifest's env can make it wrong) and counts its runs in the shared cache.
 */
function fakePackage(): {root: string; cache: string; manifest: ReleaseManifest; runs: () => number} {
  const root = mkdtempSync(join(tmp, 'pkg-'))
  const cache = join(root, 'cache')
  mkdirSync(join(root, 'artifacts', 'fake'), {recursive: true})
  writeFileSync(
    join(root, 'artifacts', 'fake', 'fetch.sh'),
    [
      'set -euo pipefail',
      'VERSION=$1 OUT=$2',
      '[ "${FAIL:-0}" = 1 ] && { echo "registry unreachable" >&2; exit 3; }',
      'mkdir -p "$OUT/bin" "$OUT/share" "$MAVEN_REPO_LOCAL"',
      'echo run >> "$MAVEN_REPO_LOCAL/runs"',
      'printf "tool %s\\n" "$VERSION" > "$OUT/bin/tool"',
      'printf "%s\\n" "${CONTENT:-data}" > "$OUT/share/data.txt"',
      'echo "wrote 2 files"',
    ].join('\n'),
  )
  mkdirSync(join(root, 'manifests', 'sums'), {recursive: true})
  for (const v of ['1.0', '2.0']) writeFileSync(join(root, 'manifests', 'sums', `fake-${v}.sha256`), `# test\n${sha('data\n')}  share/data.txt\n${sha(`tool ${v}\n`)}  bin/tool\n`)
  const manifest: ReleaseManifest = {
    release: 'test-release',
    os: 'debian-12',
    components: {},
    artifacts: {
      fake: {version: '1.0', recipe: 'artifacts/fake', sums: 'manifests/sums/fake-1.0.sha256'},
      wrong: {version: '2.0', recipe: 'artifacts/fake', sums: 'manifests/sums/fake-2.0.sha256', env: {CONTENT: 'other'}},
      broken: {version: '2.0', recipe: 'artifacts/fake', sums: 'manifests/sums/fake-2.0.sha256', env: {FAIL: '1'}},
    },
  }
  const runs = () => (existsSync(join(cache, '.m2', 'runs')) ? readFileSync(join(cache, '.m2', 'runs'), 'utf8').split('\n').filter(Boolean).length : 0)
  return {root, cache, manifest, runs}
}

describe('ensureArtifact with a test recipe', () => {
  it('makes the artifact once, serves it from the cache after, and remakes a damaged copy', async () => {
    // Given an empty cache
    const {root, cache, manifest, runs} = fakePackage()
    const paths = {packageRoot: root, cacheDir: cache}
    const io = recordingIo()
    // When the artifact is ensured
    const first = await ensureArtifactDetailed(manifest, 'fake', io, paths)
    // Then the recipe ran once into a temp folder that became <cache>/fake-1.0, with the shared cache passed on
    assert.equal(first.action, 'made')
    assert.equal(runs(), 1)
    assert.deepEqual(first.artifact, {
      name: 'fake',
      version: '1.0',
      dir: join(cache, 'fake-1.0'),
      files: [
        {path: 'bin/tool', sha256: sha('tool 1.0\n'), size: 9},
        {path: 'share/data.txt', sha256: sha('data\n'), size: 5},
      ],
    })
    assert.deepEqual(readdirSync(cache).sort(), ['.m2', 'fake-1.0'])
    assert.ok(io.events.some((e) => e.type === 'info' && e.message === 'fake 1.0: wrote 2 files'))
    // And a second call does not run it
    const again = await ensureArtifactDetailed(manifest, 'fake', io, paths)
    assert.equal(again.action, 'cached')
    assert.equal(runs(), 1)
    // When a file of the cached copy is damaged, the next call warns and makes it again
    writeFileSync(join(cache, 'fake-1.0', 'share', 'data.txt'), 'DATA\n')
    utimesSync(join(cache, 'fake-1.0', 'share', 'data.txt'), new Date(), new Date(Date.now() + 5000))
    const remade = await ensureArtifact(manifest, 'fake', io, paths)
    assert.equal(runs(), 2)
    assert.equal(readFileSync(join(remade.dir, 'share', 'data.txt'), 'utf8'), 'data\n')
    assert.ok(io.events.some((e) => e.type === 'warning' && e.message.includes('share/data.txt')))
    assert.deepEqual(readdirSync(cache).sort(), ['.m2', 'fake-1.0'])
  })

  it('refuses a result that does not match the sums, naming the file and both hashes, and keeps it apart', async () => {
    const {root, cache, manifest} = fakePackage()
    await assert.rejects(ensureArtifact(manifest, 'wrong', recordingIo(), {packageRoot: root, cacheDir: cache}), (e: UserError) => {
      assert.ok(e instanceof UserError)
      assert.match(e.message, /share\/data\.txt: expected sha256 [0-9a-f]{64}/)
      assert.ok(e.message.includes(sha('data\n')) && e.message.includes(sha('other\n')))
      assert.ok(e.nextSteps.some((s) => s.includes(join(cache, '.rejected-wrong-2.0'))))
      return true
    })
    // Nothing half-made is left where the cache would serve it
    assert.deepEqual(readdirSync(cache).sort(), ['.m2', '.rejected-wrong-2.0'])
  })

  it("turns a failing recipe into an error with the end of its output, and runs several artifacts' recipes", async () => {
    const {root, cache, manifest} = fakePackage()
    const paths = {packageRoot: root, cacheDir: cache}
    await assert.rejects(ensureArtifact(manifest, 'broken', recordingIo(), paths), (e: UserError) => e instanceof UserError && e.exitCode === 1 && /artifacts\/fake\/fetch\.sh failed \(exit 3\)/.test(e.message) && e.message.includes('registry unreachable'))
    assert.ok(!readdirSync(cache).some((n) => n.startsWith('.tmp-')))
    const both = await ensureArtifacts(manifest, ['fake', 'fake'], recordingIo(), paths)
    assert.deepEqual(
      both.map((a) => a.name),
      ['fake', 'fake'],
    )
  })

  it('lists the cache: verified, damaged and rejected entries against the releases on disk', async () => {
    // Given a manifests folder naming the test artifacts, a made artifact and a rejected one
    const {root, cache, manifest} = fakePackage()
    const mdir = join(root, 'manifests')
    writeFileSync(
      join(mdir, 'test-release.yaml'),
      `release: test-release\nos: debian-12\ncomponents: {}\nartifacts:\n  fake: {version: "1.0", recipe: artifacts/fake, sums: manifests/sums/fake-1.0.sha256}\n  wrong: {version: "2.0", recipe: artifacts/fake, sums: manifests/sums/fake-2.0.sha256, env: {CONTENT: other}}\n`,
    )
    const paths = {packageRoot: root, cacheDir: cache}
    await ensureArtifact(manifest, 'fake', recordingIo(), paths)
    await ensureArtifact(manifest, 'wrong', recordingIo(), paths).catch(() => undefined)
    mkdirSync(join(cache, 'old-9.9'))
    // When it is listed
    const list = await listArtifactsService({paths, manifestsDir: mdir})
    // Then each entry says what it is
    assert.deepEqual(
      list.entries.map((e) => [e.entry, e.name, e.state, e.releases]),
      [
        ['.rejected-wrong-2.0', 'wrong', 'rejected', []],
        ['fake-1.0', 'fake', 'verified', ['test-release']],
        ['old-9.9', null, 'not-in-any-release', []],
      ],
    )
    assert.deepEqual(list.sharedCaches, [join(cache, '.m2')])
    // And a damaged file shows as damaged
    writeFileSync(join(cache, 'fake-1.0', 'bin', 'tool'), 'tool 1.1\n')
    utimesSync(join(cache, 'fake-1.0', 'bin', 'tool'), new Date(), new Date(statSync(join(cache, 'fake-1.0', 'bin', 'tool')).mtimeMs + 5000))
    const after = await listArtifactsService({paths, manifestsDir: mdir})
    assert.equal(after.entries.find((e) => e.entry === 'fake-1.0')?.state, 'damaged')
  })
})
