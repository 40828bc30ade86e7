import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import * as tar from 'tar-stream'
import {loadManifest} from '../../src/config/manifest.js'
import {UserError} from '../../src/errors.js'
import type {IoHost, ProgressEvent} from '../../src/io.js'
import {defaultSecurityMirror, securityMirrorIn} from '../../src/ops/bundle/create.js'
import {
  aptSourceLines,
  bundledPackages,
  parseFileList,
  parseMadison,
  parsePackagesIndex,
  pickVersions,
  repositoryCommands,
  rootPackages,
  type RootPackage,
} from '../../src/ops/bundle/debs.js'
import {BUNDLE_FORMAT, parseBundleManifest, serializeBundleManifest, type BundleGroup, type BundleManifest} from '../../src/ops/bundle/format.js'
import {bundleCacheDir, openBundle, requireBundledImages, VERIFIED_STAMP} from '../../src/ops/bundle/open.js'
import {BundleDamagedError, checkBundle, verifyBundle} from '../../src/ops/bundle/verify.js'
import {localGroup, writeBundle} from '../../src/ops/bundle/write.js'
import {installPackagesOffline, offlineAptOptions, offlineSourcesList, useBundleRepository} from '../../src/plan/offline.js'
import {commandLine} from '../../src/transport/command.js'
import {RELEASE} from './helpers.js'

const scratch = mkdtempSync(join(tmpdir(), 'imctl-bundle-'))
after(() => rmSync(scratch, {recursive: true, force: true}))

function recordingIo(): IoHost & {events: ProgressEvent[]} {
  const events: ProgressEvent[] = []
  return {events, notify: (e) => events.push(e), confirmHostKey: async () => false}
}

const OFFLINE_OPTS = [
  '-o', 'Dir::Etc::sourcelist=/var/lib/imctl/offline-apt/sources.list',
  '-o', 'Dir::Etc::sourceparts=-',
  '-o', 'Dir::State::Lists=/var/lib/imctl/offline-apt/lists',
  '-o', 'APT::Get::List-Cleanup=0',
  '-o', 'Acquire::Languages=none',
]

describe('offline install builders', () => {
  it('names the uploaded folder as the one apt source', () => {
    assert.equal(offlineSourcesList('/var/lib/imctl/bundle/debs/'), 'deb [trusted=yes] file:/var/lib/imctl/bundle/debs ./\n')
    assert.deepEqual(offlineAptOptions(), OFFLINE_OPTS)
    assert.throws(() => offlineSourcesList('bundle/debs'), /absolute path/)
  })

  it('installPackagesOffline: repair dpkg, imctl-only sources and lists, update them, install from them', () => {
    // Given a repository uploaded to /var/lib/imctl/bundle/debs
    // When the install commands are built
    const cmds = installPackagesOffline('/var/lib/imctl/bundle/debs', ['redis-server', 'openjdk-17-jre-headless'])
    // Then they are exactly these, all as root, none naming a network source
    assert.deepEqual(cmds, [
      {
        argv: ['sh', '-c', 'for i in $(seq 1 60); do DEBIAN_FRONTEND=noninteractive dpkg --configure -a --force-confold && exit 0; sleep 2; done; exit 1', 'sh'],
        root: true,
        description: 'finish any interrupted package configuration',
      },
      {argv: ['mkdir', '-p', '/var/lib/imctl/offline-apt/lists/partial'], root: true, description: 'prepare apt state for the bundle repository in /var/lib/imctl/offline-apt'},
      {
        argv: ['sh', '-c', 't="$1.imctl-tmp" && umask 077 && cat > "$t" && chown "$2" "$t" && chmod "$3" "$t" && mv -f "$t" "$1"', 'sh', '/var/lib/imctl/offline-apt/sources.list', 'root:root', '0644'],
        root: true,
        stdin: 'deb [trusted=yes] file:/var/lib/imctl/bundle/debs ./\n',
        description: 'point /var/lib/imctl/offline-apt/sources.list at /var/lib/imctl/bundle/debs',
      },
      {argv: ['apt-get', 'update', '-qq', '-o', 'DPkg::Lock::Timeout=300', ...OFFLINE_OPTS], root: true, description: "read the bundle repository's index in /var/lib/imctl/bundle/debs"},
      {
        argv: ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=300', '-o', 'Dpkg::Options::=--force-confold', ...OFFLINE_OPTS, 'redis-server', 'openjdk-17-jre-headless'],
        root: true,
        description: 'install redis-server openjdk-17-jre-headless from the bundle repository',
      },
    ])
    assert.deepEqual(useBundleRepository('/var/lib/imctl/bundle/debs'), cmds.slice(1, 4))
  })

  it('the install line a sudo login sends', () => {
    const install = installPackagesOffline('/srv/b/debs', ['ejabberd']).at(-1)!
    assert.equal(
      commandLine(install, {isRoot: false}),
      'sudo -n -- env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold' +
        ' -o Dir::Etc::sourcelist=/var/lib/imctl/offline-apt/sources.list -o Dir::Etc::sourceparts=- -o Dir::State::Lists=/var/lib/imctl/offline-apt/lists -o APT::Get::List-Cleanup=0 -o Acquire::Languages=none ejabberd',
    )
  })
})

describe('which packages a bundle carries', () => {
  it('takes every component package of the release and its hostPackages, each once', () => {
    assert.deepEqual(
      rootPackages(loadManifest(RELEASE)).map((r) => `${r.for}:${r.name}=${r.version}`),
      [
        'postgresql:postgresql-15=15.*',
        'postgresql:postgresql-client-15=15.*',
        'redis:redis-server=5:7.0.*',
        'ejabberd:ejabberd=23.01-*',
        'ejabberd:erlang-p1-pgsql=1.1.*',
        'ejabberd:erlang-redis-client=1.2.*',
        'haproxy:haproxy=2.6.*',
        'host:openjdk-17-jre-headless=17.*',
        'host:stunnel4=3:5.68-*',
        // The firewall's nft: a bundle works for a cluster with `firewall:` on too.
        'host:nftables=1.0.6-*',
        'host:keepalived=1:2.2.7-*',
      ],
    )
  })

  const roots: RootPackage[] = [
    {name: 'redis-server', version: '5:7.0.*', for: 'redis'},
    {name: 'postgresql-15', version: '15.*', for: 'postgresql'},
  ]
  const madison = [
    'redis-server | 5:7.0.15-1~deb12u4 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages',
    'redis-server | 5:7.0.15-1~deb12u1 | http://deb.debian.org/debian bookworm/main amd64 Packages',
    'postgresql-15 | 16.1-1 | http://example.org/pgdg bookworm-pgdg/main amd64 Packages',
    'postgresql-15 | 15.20-0+deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages',
    'postgresql-15 | 15.20-0+deb12u1 | http://deb.debian.org/debian-security bookworm-security/main Sources',
  ].join('\n')

  it('picks the newest version on offer that matches the glob', () => {
    assert.deepEqual(pickVersions(roots, parseMadison(madison)), [
      {name: 'redis-server', version: '5:7.0.15-1~deb12u4'},
      {name: 'postgresql-15', version: '15.20-0+deb12u1'},
    ])
  })

  it('says which package is missing or off its glob', () => {
    assert.throws(() => pickVersions([{name: 'nope', version: '1.*', for: 'x'}], parseMadison(madison)), (e: Error) => e instanceof UserError && /no package nope/.test(e.message))
    assert.throws(
      () => pickVersions([{name: 'postgresql-15', version: '14.*', for: 'postgresql'}], parseMadison(madison)),
      (e: Error) => e instanceof UserError && /postgresql-15 16\.1-1, 15\.20-0\+deb12u1, none matching the release's 14\.\*/.test(e.message),
    )
  })

  it('downloads the exact versions against an empty dpkg status, then checks the repository alone installs them', () => {
    const cmds = repositoryCommands([{name: 'redis-server', version: '5:7.0.15-1~deb12u4'}])
    assert.deepEqual(cmds[0]!.argv, [
      'apt-get', '-q',
      '-o', 'Dir::State::status=/bundle/empty-status', '-o', 'Dir::Cache=/bundle/cache', '-o', 'Dir::Cache::pkgcache=', '-o', 'Dir::Cache::srcpkgcache=',
      'install', '--download-only', '-y', '--no-install-recommends', 'redis-server=5:7.0.15-1~deb12u4',
    ])
    assert.deepEqual(cmds.at(-1)!.argv, [
      'apt-get', '-qq',
      '-o', 'Dir::State::status=/bundle/empty-status', '-o', 'Dir::Cache=/bundle/cache', '-o', 'Dir::Cache::pkgcache=', '-o', 'Dir::Cache::srcpkgcache=',
      '-o', 'Dir::Etc::sourcelist=/bundle/check/sources.list', '-o', 'Dir::Etc::sourceparts=-', '-o', 'Dir::State::Lists=/bundle/check/lists',
      '--simulate', 'install', '--no-install-recommends', 'redis-server=5:7.0.15-1~deb12u4',
    ])
    assert.deepEqual(aptSourceLines('http://m/debian', 'http://m/debian-security'), [
      'deb http://m/debian bookworm main',
      'deb http://m/debian bookworm-updates main',
      'deb http://m/debian-security bookworm-security main',
    ])
    assert.equal(aptSourceLines('http://m/debian', null).length, 2)
  })

  it('reads the repository index and file list', () => {
    const index = parsePackagesIndex(
      'Package: redis-server\nArchitecture: amd64\nVersion: 5:7.0.15-1~deb12u4\nDepends: redis-tools (= 5:7.0.15-1~deb12u4)\nFilename: ./redis-server_7.0.15-1~deb12u4_amd64.deb\nDescription: x\n y\n\n' +
        'Package: postgresql-15\nVersion: 15.20-0+deb12u1\nArchitecture: amd64\nFilename: ./postgresql-15_15.20-0+deb12u1_amd64.deb\n',
    )
    assert.deepEqual(index, [
      {name: 'redis-server', version: '5:7.0.15-1~deb12u4', arch: 'amd64', filename: 'redis-server_7.0.15-1~deb12u4_amd64.deb'},
      {name: 'postgresql-15', version: '15.20-0+deb12u1', arch: 'amd64', filename: 'postgresql-15_15.20-0+deb12u1_amd64.deb'},
    ])
    assert.deepEqual(bundledPackages(roots, index), [
      {name: 'redis-server', pattern: '5:7.0.*', version: '5:7.0.15-1~deb12u4', for: 'redis'},
      {name: 'postgresql-15', pattern: '15.*', version: '15.20-0+deb12u1', for: 'postgresql'},
    ])
    const a = 'a'.repeat(64)
    const b = 'b'.repeat(64)
    assert.deepEqual(parseFileList(`${b}  Release\n${a}  Packages\n---\n12 Packages\n3 Release\n`), [
      {path: 'Packages', sha256: a, size: 12},
      {path: 'Release', sha256: b, size: 3},
    ])
  })

  it('finds the security mirror in deb822 and one-line sources', () => {
    const deb822 = 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\n# a comment\nURIs: http://mirror.example/debian-security/\nSuites: bookworm-security\nComponents: main\n'
    assert.equal(securityMirrorIn(deb822), 'http://mirror.example/debian-security')
    assert.equal(securityMirrorIn('deb [arch=amd64] http://sec.example/ds bookworm-security main\n'), 'http://sec.example/ds')
    assert.equal(securityMirrorIn('deb http://deb.debian.org/debian bookworm main\n'), null)
    assert.equal(defaultSecurityMirror('http://m.example/debian', []), 'http://m.example/debian-security')
    assert.equal(defaultSecurityMirror('http://m.example/mirror', []), null)
  })
})

// ---- the format, written and read back on real files ----

function sha(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex')
}

/** Writes files into a folder and returns the group describing them. */
function folder(dir: string, groupPath: string, files: Record<string, string | Buffer>, kind: BundleGroup['kind'] = 'debs'): BundleGroup {
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), {recursive: true})
    writeFileSync(join(dir, p), content)
  }
  return {
    path: groupPath,
    kind,
    ...(kind === 'artifact' ? {artifact: {name: 'kafka', version: '4.4.0'}} : {}),
    files: Object.entries(files).map(([path, c]) => ({path, sha256: sha(c), size: Buffer.byteLength(c)})),
  }
}

function manifestFor(groups: BundleGroup[]): BundleManifest {
  return {
    format: BUNDLE_FORMAT,
    release: RELEASE,
    os: 'debian-12',
    arch: 'amd64',
    created: '2026-11-26T12:00:00.000Z',
    imctl: {version: '0.1.0'},
    debs: {packages: [{name: 'redis-server', pattern: '5:7.0.*', version: '5:7.0.15-1~deb12u4', for: 'redis'}], closure: 'test', sources: []},
    images: [],
    groups,
  }
}

let made = 0
/** A small real bundle: a debs group and an artifact group from local folders. */
async function makeBundle(): Promise<{file: string; manifest: BundleManifest; sha256: string}> {
  const base = join(scratch, `b${++made}`)
  const debsDir = join(base, 'debs')
  const artDir = join(base, 'kafka')
  const debs = folder(debsDir, 'debs', {'redis-server_7.0.15-1~deb12u4_amd64.deb': Buffer.alloc(3000, 7), Packages: 'Package: redis-server\n', Release: 'Origin: imctl\n'})
  const art = folder(artDir, 'artifacts/kafka-4.4.0', {'libs/kafka_2.13-4.4.0.jar': Buffer.alloc(5000, 1), 'config/log4j2.properties': 'x=1\n'}, 'artifact')
  const manifest = manifestFor([debs, art])
  const file = join(base, 'out', 'release.bundle')
  const r = await writeBundle(file, manifest, [localGroup(debs, debsDir), localGroup(art, artDir)])
  return {file, manifest, sha256: r.sha256}
}

/** Byte offset of a tar entry's data. */
async function dataOffset(file: string, name: string): Promise<number> {
  const buf = readFileSync(file)
  let off = 0
  while (off < buf.length) {
    const header = buf.subarray(off, off + 512)
    const entry = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '')
    const size = parseInt(header.subarray(124, 136).toString('utf8').replace(/\0.*$/s, '').trim() || '0', 8)
    if (entry === name) return off + 512
    off += 512 + Math.ceil(size / 512) * 512
  }
  throw new Error(`no ${name} in ${file}`)
}

function copyWith(file: string, edit: (b: Buffer) => Buffer): string {
  const copy = `${file}.copy${++made}`
  writeFileSync(copy, edit(Buffer.from(readFileSync(file))))
  return copy
}

describe('bundle file', () => {
  it('is one tar, bundle.json first, no .partial left; verify finds every file intact', async () => {
    // Given a bundle written from two local folders
    const {file, manifest, sha256} = await makeBundle()
    // Then the tar starts with bundle.json and holds each file under its group
    const names: string[] = []
    const extract = tar.extract()
    const done = (async () => {
      for await (const e of extract) {
        names.push(e.header.name)
        e.resume()
      }
    })()
    extract.end(readFileSync(file))
    await done
    assert.deepEqual(names, [
      'bundle.json',
      'debs/redis-server_7.0.15-1~deb12u4_amd64.deb',
      'debs/Packages',
      'debs/Release',
      'artifacts/kafka-4.4.0/libs/kafka_2.13-4.4.0.jar',
      'artifacts/kafka-4.4.0/config/log4j2.properties',
    ])
    assert.deepEqual(readdirSync(join(file, '..')), ['release.bundle'])
    // When it is verified
    const report = await verifyBundle(file, recordingIo())
    // Then all is well and the sha256 is the one create returned
    assert.equal(report.ok, true)
    assert.equal(report.sha256, sha256)
    assert.equal(report.sha256, sha(readFileSync(file)))
    assert.equal(report.files, 5)
    assert.deepEqual(report.groups, [
      {group: 'debs', files: 3, bytes: 3000 + 22 + 14},
      {group: 'artifacts/kafka-4.4.0', files: 2, bytes: 5004},
    ])
    assert.equal(parseBundleManifest(serializeBundleManifest(manifest), 'x').release, RELEASE)
  })

  it('verify names the damaged file when one byte flips, and exits 1 as a user error', async () => {
    const {file} = await makeBundle()
    const at = (await dataOffset(file, 'artifacts/kafka-4.4.0/libs/kafka_2.13-4.4.0.jar')) + 1234
    const copy = copyWith(file, (b) => {
      b[at] = b[at]! ^ 0xff
      return b
    })
    await assert.rejects(verifyBundle(copy, recordingIo()), (e: Error) => {
      assert.ok(e instanceof BundleDamagedError)
      assert.equal(e.exitCode, 1)
      assert.deepEqual(
        e.report.problems.map((p) => `${p.problem} ${p.path}`),
        ['damaged artifacts/kafka-4.4.0/libs/kafka_2.13-4.4.0.jar'],
      )
      assert.match(e.message, /damaged: artifacts\/kafka-4\.4\.0\/libs\/kafka_2\.13-4\.4\.0\.jar: sha256 [0-9a-f]{64}, expected/)
      return true
    })
  })

  it('reports a cut bundle: what is left unread is missing', async () => {
    const {file} = await makeBundle()
    const cutAt = (await dataOffset(file, 'debs/Packages')) + 5
    const copy = copyWith(file, (b) => b.subarray(0, cutAt))
    const {report} = await checkBundle(copy)
    assert.equal(report.ok, false)
    assert.deepEqual(
      report.problems.map((p) => `${p.problem} ${p.path}`),
      ['damaged debs/Packages', 'missing debs/Release', 'missing artifacts/kafka-4.4.0/libs/kafka_2.13-4.4.0.jar', 'missing artifacts/kafka-4.4.0/config/log4j2.properties'],
    )
  })

  it('reports extra and missing files by name', async () => {
    // Given a tar with bundle.json listing a file it lacks, and a file it does not list
    const m = manifestFor([{path: 'debs', kind: 'debs', files: [{path: 'a.deb', sha256: sha('a'), size: 1}, {path: 'b.deb', sha256: sha('b'), size: 1}]}])
    const pack = tar.pack()
    pack.entry({name: 'bundle.json'}, serializeBundleManifest(m))
    pack.entry({name: 'debs/a.deb'}, 'a')
    pack.entry({name: 'debs/evil.sh'}, 'rm -rf /')
    pack.finalize()
    const chunks: Buffer[] = []
    for await (const c of pack) chunks.push(c as Buffer)
    const file = join(scratch, 'extra.bundle')
    writeFileSync(file, Buffer.concat(chunks))
    const {report} = await checkBundle(file)
    assert.deepEqual(
      report.problems.map((p) => `${p.problem} ${p.path}`),
      ['extra debs/evil.sh', 'missing debs/b.deb'],
    )
  })

  it('refuses what is not a bundle, and bundle.json paths that leave their folder', async () => {
    const notTar = join(scratch, 'not.bundle')
    writeFileSync(notTar, 'hello\n'.repeat(200))
    await assert.rejects(checkBundle(notTar), (e: Error) => e instanceof UserError && /not a readable imctl bundle|no bundle\.json/.test(e.message))
    await assert.rejects(checkBundle(join(scratch, 'absent.bundle')), /no bundle file/)
    const m = manifestFor([{path: 'debs', kind: 'debs', files: [{path: '../../etc/passwd', sha256: sha('x'), size: 1}]}])
    assert.throws(() => parseBundleManifest(JSON.stringify(m), 'b'), /bad file entry/)
    assert.throws(() => parseBundleManifest(JSON.stringify({...manifestFor([]), format: BUNDLE_FORMAT + 1}), 'b'), /format 2; this imctl reads format 1/)
  })

  it('writeBundle leaves neither the file nor a .partial when a source does not match bundle.json', async () => {
    const dir = join(scratch, 'bad-source')
    const g = folder(dir, 'debs', {'a.deb': 'aaaa'})
    writeFileSync(join(dir, 'a.deb'), 'bbbb') // changed after it was listed
    const out = join(scratch, 'bad-out', 'x.bundle')
    await assert.rejects(writeBundle(out, manifestFor([g]), [localGroup(g, dir)]), /debs\/a\.deb: sha256 .* changed or was damaged/)
    assert.equal(existsSync(out), false)
    assert.equal(existsSync(`${out}.partial`), false)
  })
})

describe('openBundle', () => {
  it('verifies and extracts once into the cache, then reuses it while the stamp matches', async () => {
    // Given a bundle and an empty cache
    const {file, sha256} = await makeBundle()
    const cacheDir = join(scratch, 'cache1')
    // When it is opened twice
    const io1 = recordingIo()
    const first = await openBundle(file, io1, {cacheDir})
    const io2 = recordingIo()
    const second = await openBundle(file, io2, {cacheDir})
    // Then the files are in the cache folder named by the sha256, the second open reused it
    assert.equal(first.dir, join(cacheDir, sha256.slice(0, 16)))
    assert.equal(first.release, RELEASE)
    assert.equal(first.debs.dir, join(first.dir, 'debs'))
    assert.deepEqual(first.debs.files.map((f) => f.path), ['redis-server_7.0.15-1~deb12u4_amd64.deb', 'Packages', 'Release'])
    assert.equal(readFileSync(join(first.debs.dir, 'Packages'), 'utf8'), 'Package: redis-server\n')
    const kafka = first.artifacts.get('kafka')!
    assert.equal(kafka.version, '4.4.0')
    assert.equal(kafka.dir, join(first.dir, 'artifacts/kafka-4.4.0'))
    assert.equal(readFileSync(join(kafka.dir, 'config/log4j2.properties'), 'utf8'), 'x=1\n')
    assert.equal(JSON.parse(readFileSync(join(first.dir, VERIFIED_STAMP), 'utf8')).sha256, sha256)
    assert.ok(io1.events.some((e) => e.type === 'info' && /verifying and extracting/.test(e.message)))
    assert.ok(io2.events.some((e) => e.type === 'info' && /verified before/.test(e.message)))
    assert.deepEqual(second.debs, first.debs)
    assert.deepEqual(readdirSync(cacheDir), [sha256.slice(0, 16)])
    // And a file missing from the cache makes the next open extract again
    rmSync(join(first.debs.dir, 'Release'))
    const io3 = recordingIo()
    await openBundle(file, io3, {cacheDir})
    assert.ok(io3.events.some((e) => e.type === 'info' && /verifying and extracting/.test(e.message)))
    assert.equal(readFileSync(join(first.debs.dir, 'Release'), 'utf8'), 'Origin: imctl\n')
  })

  it('a damaged bundle throws, naming the file, and leaves nothing in the cache', async () => {
    const {file} = await makeBundle()
    const at = (await dataOffset(file, 'debs/Release')) + 2
    const copy = copyWith(file, (b) => {
      b[at] = b[at]! ^ 1
      return b
    })
    const cacheDir = join(scratch, 'cache2')
    await assert.rejects(openBundle(copy, recordingIo(), {cacheDir}), (e: Error) => e instanceof BundleDamagedError && /damaged: debs\/Release/.test(e.message))
    assert.deepEqual(readdirSync(cacheDir), [])
  })

  it('the cache folder follows IMCTL_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
    assert.equal(bundleCacheDir({IMCTL_CACHE_DIR: '/c'}, '/home/u'), '/c/bundles')
    assert.equal(bundleCacheDir({XDG_CACHE_HOME: '/x'}, '/home/u'), '/x/imctl/bundles')
    assert.equal(bundleCacheDir({XDG_CACHE_HOME: 'rel'}, '/home/u'), '/home/u/.cache/imctl/bundles')
    assert.equal(bundleCacheDir({}, '/home/u'), '/home/u/.cache/imctl/bundles')
  })

  it('an engine host installs from a bundle only with every image it needs in it', () => {
    const images = new Map([['localhost/imctl-redis:aaa', {component: 'redis', tag: 'localhost/imctl-redis:aaa', file: '/c/images/redis.tar'}]])
    const b = {file: '/b', release: 'r1', images}
    assert.doesNotThrow(() => requireBundledImages(b, [{host: 'docker1', tag: 'localhost/imctl-redis:aaa'}]))
    assert.throws(
      () => requireBundledImages(b, [{host: 'docker1', tag: 'localhost/imctl-redis:aaa'}, {host: 'docker1', tag: 'localhost/imctl-ejabberd:bbb'}]),
      (e: Error) => e instanceof UserError && e.message === 'bundle /b lacks image localhost/imctl-ejabberd:bbb (for docker1)',
    )
  })
})

describe('images a bundle saves', () => {
  it('are exactly the images install plans for a cluster on an engine host (same tags)', async () => {
    const {releaseImages, desiredState} = await import('../../src/plan/desired.js')
    const {loadManifest} = await import('../../src/config/manifest.js')
    const {parseClusterConfig} = await import('../../src/config/load.js')
    const {placeholderSecrets} = await import('../../src/config/secrets.js')
    const manifest = loadManifest('ejabberd-23.01-debian12')
    const config = parseClusterConfig(
      `apiVersion: imctl/v1
name: e
domain: e.example.org
release: ejabberd-23.01-debian12
hosts:
  - {name: d1, address: 10.1.1.1, engine: {socket: /run/podman/podman.sock}}
components:
  postgresql: {host: d1}
  redis: {host: d1}
  ejabberd: {host: d1}
  kafka: {hosts: [d1]}
  minio: {hosts: [d1], drives: [/d1, /d2, /d3, /d4]}
`,
      '/tmp/imctl-unit/cluster.yaml',
    )
    const planned = desiredState(config, manifest, placeholderSecrets()).flatMap((r) => (r.kind === 'image' ? [`${r.component} ${r.tag}`] : []))
    assert.deepEqual(releaseImages(manifest).map((r) => `${r.component} ${r.tag}`), planned)
    assert.equal(planned.length, 5)
  })
})
