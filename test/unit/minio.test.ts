import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {attachPolicy, bucketPolicy, canonicalPolicy, detachPolicy, makeBucket, minioStateQuery, parseMinioState, putPolicy, putUser, waitNodeServes, waitWritable} from '../../src/components/minio/mc.js'
import {mcConfig, minioAdmin, minioVolumes} from '../../src/components/minio/index.js'
import {COMPONENTS, component} from '../../src/components/registry.js'
import {loadManifest} from '../../src/config/manifest.js'
import type {ComponentName} from '../../src/config/model.js'
import {redact, secretValues, type ClusterSecrets} from '../../src/config/secrets.js'
import {desiredState} from '../../src/plan/desired.js'
import {emptyFacts, type HostFacts} from '../../src/plan/facts.js'
import {mountsQuery, parseMounts} from '../../src/plan/observe.js'
import {planChanges, type Plan} from '../../src/plan/planner.js'
import type {FileResource, McClient, Resource} from '../../src/plan/resources.js'
import {resourceKey} from '../../src/plan/resources.js'
import {checkDrives} from '../../src/sandbox/sandbox.js'
import {RELEASE, SECRETS, configFrom, convergedFacts} from './helpers.js'

const VERSION = loadManifest(RELEASE).artifacts!.minio!.version
const HOME = `/opt/imctl/minio-${VERSION}`
const MC: McClient = {bin: `${HOME}/mc`, configDir: '/etc/imctl/minio-mc', alias: 'imctl', url: 'http://10.0.0.1:9000'}

/** Distinctive, so a leak is easy to spot in any text. */
const MINIO_SECRETS: ClusterSecrets = {
  ...SECRETS,
  minio: {root_password: 'minio-Root-7e1f3a9c5d', backup_secret: 'minio-Backup-2b8d4f6a0c', archive_secret: 'minio-Archive-9c3e5a7b1d', health_secret: 'minio-Health-4a6c8e0b2f'},
}
const MINIO_VALUES = secretValues(MINIO_SECRETS)

/** s1 and s2, two drives each: one erasure set of 4 drives. */
const TWO_NODES_YAML = `apiVersion: imctl/v1
name: store
domain: chat.example.org
release: ${RELEASE}
hosts:
  - {name: s1, address: 10.0.0.1, auth: {agent: true}}
  - {name: s2, address: 10.0.0.2, auth: {agent: true}}
components:
  postgresql: {host: s1}
  redis: {host: s1}
  ejabberd: {host: s2}
  minio: {hosts: [s1, s2], drives: [/srv/minio/d1, /srv/minio/d2], buckets: [media]}
`
const ONE_DRIVE_YAML = TWO_NODES_YAML.replace('minio: {hosts: [s1, s2], drives: [/srv/minio/d1, /srv/minio/d2], buckets: [media]}', 'minio: {hosts: [s2]}')

const ORDER = COMPONENTS.map((c) => c.name)
const dependsOn = (c: ComponentName) => component(c).dependsOn

function resourcesOf(yaml: string): Resource[] {
  const config = configFrom(yaml)
  return desiredState(config, loadManifest(config.release), MINIO_SECRETS)
}

function plan(resources: Resource[], facts: Record<string, HostFacts>): Plan {
  return planChanges(resources, facts, ORDER, dependsOn, (t) => redact(t, MINIO_VALUES))
}

/** Each drive is a filesystem of its own, as on a host with one disk per drive (or a sandbox's tmpfs). */
function withDrivesMounted(facts: Record<string, HostFacts>, resources: Resource[]): Record<string, HostFacts> {
  for (const r of resources) if (r.kind === 'mount') facts[r.host]!.mounts[r.path] = {target: r.path, fstype: 'xfs'}
  return facts
}

/** Fresh Debian hosts whose drives are mounted. */
function freshFacts(resources: Resource[]): Record<string, HostFacts> {
  return withDrivesMounted({s1: emptyFacts('s1'), s2: emptyFacts('s2')}, resources)
}

/** What gatherFacts reports once imctl has installed everything, MinIO's buckets and users included. */
function converged(yaml: string, resources: Resource[]): Record<string, HostFacts> {
  const facts = withDrivesMounted(convergedFacts(configFrom(yaml), resources), resources)
  for (const r of resources) {
    const f = facts[r.host]!
    if (r.kind === 'system-user') f.users[r.user] = true
    if (r.kind === 'directory') f.paths[r.path] = {type: 'directory', owner: r.owner, group: r.group, mode: r.mode}
    if (r.kind === 'artifact') f.files[`${r.dir}/SHA256SUMS`] = {owner: 'root', group: 'root', mode: '644', content: Buffer.from(r.files.map((x) => `${x.sha256}  ${x.path}\n`).join(''))}
    if (r.kind === 'minio-bucket') (f.minio ??= {buckets: [], users: {}, policies: {}}).buckets.push(r.bucket)
    if (r.kind === 'minio-user') {
      f.minio ??= {buckets: [], users: {}, policies: {}}
      f.minio.users[r.user] = {policies: [r.policy], enabled: true, secretWorks: true}
      f.minio.policies[r.policy] = canonicalPolicy(r.policyDocument)
    }
  }
  return facts
}

const minioOnly = (rs: Resource[]) => rs.filter((r) => r.component === 'minio')

describe('MinIO: desired state', () => {
  const resources = resourcesOf(TWO_NODES_YAML)

  it('gives every node the service account, its drives checked and owned, the binaries, the env and unit files and the service', () => {
    const node = (h: string) => [
      `${h}:user:minio-user`,
      `${h}:mount:/srv/minio/d1`,
      `${h}:mount:/srv/minio/d2`,
      `${h}:artifact:minio-${VERSION}`,
      `${h}:dir:/var/lib/minio`,
      `${h}:dir:/srv/minio/d1`,
      `${h}:dir:/srv/minio/d2`,
      `${h}:file:/etc/default/imctl-minio`,
      `${h}:file:/etc/systemd/system/imctl-minio.service`,
      `${h}:service:imctl-minio`,
    ]
    assert.deepEqual(minioOnly(resources).map(resourceKey), [
      ...node('s1'),
      // Buckets and keys are managed once, through mc on the first host.
      's1:dir:/etc/imctl/minio-mc',
      's1:file:/etc/imctl/minio-mc/config.json',
      's1:minio-bucket:imctl-backups',
      's1:minio-bucket:imctl-archive',
      's1:minio-bucket:imctl-health',
      's1:minio-bucket:media',
      's1:minio-user:imctl-backup',
      's1:minio-user:imctl-archive',
      's1:minio-user:imctl-health',
      ...node('s2'),
    ])
  })

  it('uploads minio and mc from the release sums, executable', () => {
    const a = resources.find((r) => r.kind === 'artifact' && r.host === 's1')
    assert.ok(a?.kind === 'artifact')
    assert.equal(a.dir, HOME)
    assert.deepEqual(
      a.files.map((f) => `${f.path} ${f.mode}`),
      ['mc 755', 'minio 755'],
    )
  })

  it('writes the same endpoint list on every node, with the root credentials in a 0600 file', () => {
    const envs = resources.filter((r): r is FileResource => r.kind === 'file' && r.path === '/etc/default/imctl-minio')
    assert.equal(envs.length, 2)
    assert.equal(envs[0]!.content, envs[1]!.content)
    assert.deepEqual([envs[0]!.owner, envs[0]!.group, envs[0]!.mode, envs[0]!.secret, envs[0]!.notify], ['root', 'root', '600', true, ['imctl-minio']])
    assert.equal(
      envs[0]!.content,
      `# Managed by imctl: the next \`imctl install\` overwrites changes made here.
# The environment of imctl-minio.service (systemd EnvironmentFile=). Mode 0600: it holds the root credentials.
# Comments stay on lines of their own: neither systemd nor MinIO strips a trailing one.
MINIO_ROOT_USER=imctl-root
MINIO_ROOT_PASSWORD=minio-Root-7e1f3a9c5d
# Every node has the same drives, in the same order: 4 drive(s) in all.
MINIO_VOLUMES="http://10.0.0.1:9000/srv/minio/d1 http://10.0.0.1:9000/srv/minio/d2 http://10.0.0.2:9000/srv/minio/d1 http://10.0.0.2:9000/srv/minio/d2"
# Hosts may be offline: no update check, no self-update.
MINIO_UPDATE=off
`,
    )
    // Never the CI/CD mode that would switch MinIO's root-drive check off.
    assert.doesNotMatch(envs[0]!.content, /CI/)
  })

  it('binds the S3 API and the console to the node\'s own cluster address, on the command line', () => {
    const unit = resources.find((r): r is FileResource => r.kind === 'file' && r.host === 's2' && r.path === '/etc/systemd/system/imctl-minio.service')!
    assert.equal(unit.daemonReload, true)
    assert.deepEqual(unit.notify, ['imctl-minio'])
    const lines = unit.content.split('\n')
    assert.ok(lines.includes(`ExecStart=${HOME}/minio server --address 10.0.0.2:9000 --console-address 10.0.0.2:9001 $MINIO_VOLUMES`), unit.content)
    assert.ok(lines.includes('User=minio-user'))
    assert.ok(lines.includes('EnvironmentFile=/etc/default/imctl-minio'))
    assert.doesNotMatch(unit.content, /minio-Root|MINIO_CI_CD|\nEnvironment=/)
  })

  it('keeps mc\'s alias config (root credentials) in a 0600 file of root\'s, in mc\'s own format', () => {
    const f = resources.find((r): r is FileResource => r.kind === 'file' && r.path === '/etc/imctl/minio-mc/config.json')!
    assert.deepEqual([f.host, f.owner, f.group, f.mode, f.secret, f.notify], ['s1', 'root', 'root', '600', true, []])
    assert.deepEqual(JSON.parse(f.content), {
      version: '10',
      aliases: {imctl: {url: 'http://10.0.0.1:9000', accessKey: 'imctl-root', secretKey: 'minio-Root-7e1f3a9c5d', api: 's3v4', path: 'auto'}},
    })
    assert.equal(f.content, mcConfig('http://10.0.0.1:9000', 'minio-Root-7e1f3a9c5d'))
  })

  it('gives each of imctl\'s keys one policy: its own bucket, nothing else', () => {
    const users = resources.filter((r) => r.kind === 'minio-user')
    assert.deepEqual(
      users.map((u) => (u.kind === 'minio-user' ? [u.user, u.policy, u.secret, u.rights] : [])),
      [
        ['imctl-backup', 'imctl-backup', 'minio-Backup-2b8d4f6a0c', 'read, write, list and delete in imctl-backups only'],
        ['imctl-archive', 'imctl-archive', 'minio-Archive-9c3e5a7b1d', 'read, write, list and delete in imctl-archive only'],
        ['imctl-health', 'imctl-health', 'minio-Health-4a6c8e0b2f', 'read, write, list and delete in imctl-health only'],
      ],
    )
    assert.deepEqual(JSON.parse(bucketPolicy('imctl-backups')), {
      Version: '2012-10-17',
      Statement: [
        {Effect: 'Allow', Action: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'], Resource: ['arn:aws:s3:::imctl-backups']},
        {Effect: 'Allow', Action: ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:PutObject'], Resource: ['arn:aws:s3:::imctl-backups/*']},
      ],
    })
  })

  it('with one drive in all: the drive as a plain path, and no filesystem check (MinIO makes none then)', () => {
    const one = resourcesOf(ONE_DRIVE_YAML)
    assert.equal(one.filter((r) => r.kind === 'mount').length, 0)
    const env = one.find((r): r is FileResource => r.kind === 'file' && r.path === '/etc/default/imctl-minio')!
    assert.ok(env.content.includes('\nMINIO_VOLUMES="/var/lib/minio/data"\n'), env.content)
    assert.equal(minioAdmin(configFrom(ONE_DRIVE_YAML), VERSION).url, 'http://10.0.0.2:9000')
  })

  it('builds MINIO_VOLUMES: paths on one host, URLs per host and drive otherwise, IPv6 in brackets', () => {
    const p = {hosts: [], drives: ['/d1', '/d2'], port: 9000, consolePort: 9001, buckets: []}
    assert.equal(minioVolumes(p, [{address: '10.0.0.1'}]), '/d1 /d2')
    assert.equal(minioVolumes(p, [{address: '10.0.0.1'}, {address: 'fd00::2'}]), 'http://10.0.0.1:9000/d1 http://10.0.0.1:9000/d2 http://[fd00::2]:9000/d1 http://[fd00::2]:9000/d2')
  })

  it('has no MinIO resources in a cluster without MinIO', () => {
    assert.deepEqual(minioOnly(resourcesOf(TWO_NODES_YAML.replace(/ {2}minio: .*\n/, ''))), [])
  })
})

describe('MinIO: mc commands, by exact output', () => {
  const SH = (script: string, args: string[]) => ['sh', '-c', `bin="$1"; cfg="$2"; shift 2; mc() { "$bin" --config-dir "$cfg" "$@"; }; ${script}`, 'sh', MC.bin, MC.configDir, ...args]

  it('waits for write quorum, bounded, naming where to look', () => {
    assert.deepEqual(waitWritable(MC, 300), {
      argv: SH(
        'timeout "$2" "$bin" --config-dir "$cfg" ready --json "$1" >/dev/null && exit 0; echo "the MinIO cluster has no write quorum after $2 s: see journalctl -u imctl-minio on every MinIO host" >&2; exit 1',
        ['imctl', '300'],
      ),
      root: true,
      description: 'wait until the MinIO cluster accepts writes (at most 300 s)',
    })
  })

  it('after a node starts, waits until it serves with the others, asking anonymously with a throwaway mc config', () => {
    assert.deepEqual(waitNodeServes(`${HOME}/mc`, 'http://10.0.0.2:9000', 300), {
      argv: [
        'sh',
        '-c',
        'd=$(mktemp -d) || exit 1; MC_HOST_node="$2" timeout "$3" "$1" --config-dir "$d" ready --json node >/dev/null; rc=$?; rm -rf "$d"; [ "$rc" = 0 ] && exit 0; ' +
          'echo "MinIO at $2 does not serve after $3 s (the node is down, or the cluster has no write quorum): see journalctl -u imctl-minio on every MinIO host" >&2; exit 1',
        'sh',
        `${HOME}/mc`,
        'http://10.0.0.2:9000',
        '300',
      ],
      description: 'wait until MinIO at http://10.0.0.2:9000 is up and the cluster accepts writes (at most 300 s)',
    })
  })

  it('creates buckets idempotently and policies from stdin', () => {
    assert.deepEqual(makeBucket(MC, 'media').argv, SH('mc mb --ignore-existing "$1/$2" >/dev/null', ['imctl', 'media']))
    const p = putPolicy(MC, 'imctl-backup', bucketPolicy('imctl-backups'))
    assert.deepEqual(p.argv, SH('mc admin policy create "$1" "$2" /dev/stdin >/dev/null', ['imctl', 'imctl-backup']))
    assert.equal(p.stdin, bucketPolicy('imctl-backups'))
    assert.deepEqual(attachPolicy(MC, 'imctl-backup', 'imctl-backup').argv, SH('mc admin policy attach "$1" "$2" --user "$3" >/dev/null', ['imctl', 'imctl-backup', 'imctl-backup']))
    assert.deepEqual(detachPolicy(MC, 'readwrite', 'imctl-backup').argv, SH('mc admin policy detach "$1" "$2" --user "$3" >/dev/null', ['imctl', 'readwrite', 'imctl-backup']))
  })

  it('sets a user\'s secret key through stdin, never argv', () => {
    const c = putUser(MC, 'imctl-backup', 'minio-Backup-2b8d4f6a0c')
    assert.deepEqual(c.argv, SH('mc admin user add "$1" "$2" >/dev/null', ['imctl', 'imctl-backup']))
    assert.equal(c.stdin, 'minio-Backup-2b8d4f6a0c\n')
    assert.equal(c.root, true)
  })

  it('reads the state with the keys to check on stdin, never argv', () => {
    const q = minioStateQuery(MC, ['imctl-backup'], [{user: 'imctl-backup', secret: 'minio-Backup-2b8d4f6a0c'}])
    assert.deepEqual(q.argv.slice(-5), [MC.bin, MC.configDir, 'imctl', 'http://10.0.0.1:9000', 'imctl-backup'])
    assert.ok(!q.argv.join(' ').includes('minio-Backup'), q.argv.join(' '))
    assert.equal(q.stdin, 'imctl-backup minio-Backup-2b8d4f6a0c\n')
  })
})

describe('MinIO: reading its state', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'imctl-minio-'))
  after(() => rmSync(scratch, {recursive: true, force: true}))

  /** Lines as mc (DEVELOPMENT.2025-11-06T16-25-29Z) printed them against a real server. */
  const MC_OUTPUT = [
    '#buckets',
    '{"status":"success","type":"folder","lastModified":"2026-11-26T18:25:33.825Z","size":0,"key":"imctl-backups/","etag":"","url":"http://127.0.0.1:19500/","versionOrdinal":1}',
    '#users',
    '{"status":"success","accessKey":"imctl-backup","policyName":"imctl-backup,readwrite","userStatus":"disabled"}',
    '{"status":"success","accessKey":"imctl-health","policyName":"imctl-health","userStatus":"enabled"}',
    '#policy imctl-backup',
    '{"status":"success","policy":"imctl-backup","policyInfo":{"PolicyName":"imctl-backup","Policy":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetBucketLocation","s3:ListBucket","s3:ListBucketMultipartUploads"],"Resource":["arn:aws:s3:::imctl-backups"]},{"Effect":"Allow","Action":["s3:ListMultipartUploadParts","s3:PutObject","s3:AbortMultipartUpload","s3:DeleteObject","s3:GetObject"],"Resource":["arn:aws:s3:::imctl-backups/*"]}]},"CreateDate":"2026-11-26T18:25:35.867Z","UpdateDate":"2026-11-26T18:25:35.867Z"},"isGroup":false}',
    '#policy imctl-archive',
    '{"status":"error","error":{"message":"Unable to fetch policy","cause":{"message":"The canned policy does not exist. (Specified canned policy does not exist)","error":{"Code":"XMinioAdminNoSuchPolicy"}},"type":"fatal"}}',
    '#keys',
    'imctl-backup bad',
    'imctl-health ok',
    '',
  ].join('\n')

  it('parses buckets, users with their policies and status, policy documents in canonical form, and which keys work', () => {
    assert.deepEqual(parseMinioState(MC_OUTPUT), {
      buckets: ['imctl-backups'],
      users: {
        'imctl-backup': {policies: ['imctl-backup', 'readwrite'], enabled: false, secretWorks: false},
        'imctl-health': {policies: ['imctl-health'], enabled: true, secretWorks: true},
      },
      // MinIO stores the actions in an order of its own: the canonical form ignores it.
      policies: {'imctl-backup': canonicalPolicy(bucketPolicy('imctl-backups'))},
    })
  })

  it('runs in a real shell: each key reaches mc only in its environment, and every call names the config dir', () => {
    // Given a stand-in mc that logs its argv and MC_HOST_imctlprobe, and answers like mc
    const log = join(scratch, 'calls.log')
    const fake = join(scratch, 'mc')
    writeFileSync(
      fake,
      `#!/bin/sh\nprintf 'argv:%s|env:%s\\n' "$*" "\${MC_HOST_imctlprobe:-}" >> ${log}\n` +
        'case "$*" in\n' +
        '  *" ls --json imctl") echo \'{"status":"success","key":"media/"}\' ;;\n' +
        '  *"admin user list"*) echo \'{"status":"success","accessKey":"imctl-health","policyName":"imctl-health","userStatus":"enabled"}\' ;;\n' +
        '  *"admin policy info"*) echo \'{"status":"success","policyInfo":{"Policy":{"Version":"2012-10-17"}}}\' ;;\n' +
        '  *"ls imctlprobe") case "$MC_HOST_imctlprobe" in *:good-Secret-1@*) exit 0 ;; *) exit 1 ;; esac ;;\n' +
        'esac\n',
    )
    chmodSync(fake, 0o755)
    const q = minioStateQuery({...MC, bin: fake, configDir: '/etc/imctl/minio-mc'}, ['imctl-health'], [
      {user: 'imctl-health', secret: 'good-Secret-1'},
      {user: 'imctl-backup', secret: 'bad-Secret-2'},
    ])
    // When it runs
    const r = spawnSync(q.argv[0]!, q.argv.slice(1), {input: q.stdin, encoding: 'utf8'})
    // Then
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(parseMinioState(r.stdout), {
      buckets: ['media'],
      users: {'imctl-health': {policies: ['imctl-health'], enabled: true, secretWorks: true}},
      policies: {'imctl-health': '{"Version":"2012-10-17"}'},
    })
    assert.deepEqual(readFileSync(log, 'utf8').split('\n').filter(Boolean), [
      'argv:--config-dir /etc/imctl/minio-mc ls --json imctl|env:',
      'argv:--config-dir /etc/imctl/minio-mc admin user list --json imctl|env:',
      'argv:--config-dir /etc/imctl/minio-mc admin policy info imctl imctl-health --json|env:',
      'argv:--config-dir /etc/imctl/minio-mc ls imctlprobe|env:http://imctl-health:good-Secret-1@10.0.0.1:9000',
      'argv:--config-dir /etc/imctl/minio-mc ls imctlprobe|env:http://imctl-backup:bad-Secret-2@10.0.0.1:9000',
    ])
  })

  it('fails when MinIO does not answer, so the plan says it is not answering yet', () => {
    const fake = join(scratch, 'mc-down')
    writeFileSync(fake, '#!/bin/sh\necho "mc: <ERROR> Unable to list folder. connection refused" >&2\nexit 1\n')
    chmodSync(fake, 0o755)
    const q = minioStateQuery({...MC, bin: fake}, [], [])
    assert.equal(spawnSync(q.argv[0]!, q.argv.slice(1), {input: q.stdin, encoding: 'utf8'}).status, 1)
  })

  it('compares policies whatever the order of keys and lists', () => {
    const a = {Version: '2012-10-17', Statement: [{Effect: 'Allow', Resource: ['b', 'a'], Action: ['s3:PutObject', 's3:GetObject']}]}
    const b = {Statement: [{Action: ['s3:GetObject', 's3:PutObject'], Effect: 'Allow', Resource: ['a', 'b']}], Version: '2012-10-17'}
    assert.equal(canonicalPolicy(a), canonicalPolicy(JSON.stringify(b)))
    assert.notEqual(canonicalPolicy(a), canonicalPolicy({...a, Version: '2008-10-17'}))
  })
})

describe('drives: is each its own filesystem?', () => {
  it('asks findmnt for each existing path, by exact output', () => {
    assert.deepEqual(mountsQuery(['/srv/minio/d1']), {
      argv: [
        'sh',
        '-c',
        'for p; do if [ -e "$p" ]; then printf "%s\\0%s\\0" "$p" "$(findmnt -n -r -o TARGET,FSTYPE --target "$p" | head -n 1)"; else printf "%s\\0-\\0" "$p"; fi; done',
        'sh',
        '/srv/minio/d1',
      ],
      description: 'check which filesystem holds /srv/minio/d1',
    })
  })

  it('runs in a real shell: / is its own filesystem, a path below it is on it, a missing path is null', () => {
    const q = mountsQuery(['/', '/usr/bin', '/no/such/drive'])
    const r = spawnSync(q.argv[0]!, q.argv.slice(1), {encoding: 'utf8'})
    const m = parseMounts(r.stdout)
    assert.equal(m['/']!.target, '/')
    assert.ok(m['/usr/bin']!.target !== '/usr/bin')
    assert.equal(m['/no/such/drive'], null)
  })

  it('parses findmnt\'s escaped spaces', () => {
    assert.deepEqual(parseMounts('/mnt/my disk\0/mnt/my\\x20disk xfs\0/x\0-\0'), {'/mnt/my disk': {target: '/mnt/my disk', fstype: 'xfs'}, '/x': null})
  })
})

describe('MinIO: planned changes', () => {
  const resources = resourcesOf(TWO_NODES_YAML)
  const minioWhats = (p: Plan, host: string) => p.steps.filter((s) => s.component === 'minio' && s.host === host).map((s) => `${s.what} — ${s.why}`)

  it('installs on fresh hosts, then buckets and keys wait for write quorum through mc on the first host', () => {
    const p = plan(resources, freshFacts(resources))
    assert.deepEqual(p.blockers, [])
    assert.deepEqual(minioWhats(p, 's1'), [
      'create system user minio-user — does not exist',
      `upload minio ${VERSION} (2 files) to ${HOME} — not on this host`,
      'directory /var/lib/minio (minio-user:minio-user 750) — does not exist',
      'directory /srv/minio/d1 (minio-user:minio-user 750) — does not exist',
      'directory /srv/minio/d2 (minio-user:minio-user 750) — does not exist',
      'write /etc/default/imctl-minio (root:root 600) — does not exist',
      'write /etc/systemd/system/imctl-minio.service (root:root 644) — does not exist',
      'restart imctl-minio — /etc/default/imctl-minio, /etc/systemd/system/imctl-minio.service changed',
      'directory /etc/imctl/minio-mc (root:root 700) — does not exist',
      'write /etc/imctl/minio-mc/config.json (root:root 600) — does not exist',
      'create bucket imctl-backups — MinIO is not answering yet',
      'create bucket imctl-archive — MinIO is not answering yet',
      'create bucket imctl-health — MinIO is not answering yet',
      'create bucket media — MinIO is not answering yet',
      'set MinIO user imctl-backup (read, write, list and delete in imctl-backups only) — MinIO is not answering yet',
      'set MinIO user imctl-archive (read, write, list and delete in imctl-archive only) — MinIO is not answering yet',
      'set MinIO user imctl-health (read, write, list and delete in imctl-health only) — MinIO is not answering yet',
    ])
    assert.equal(minioWhats(p, 's2').length, 8)
    // A node's (re)start is done once it serves with the others.
    const restart = p.steps.find((s) => s.id === 's2:service:imctl-minio')!
    assert.ok(restart.run.type === 'exec')
    assert.deepEqual(restart.run.commands.map((c) => c.description), [
      'enable imctl-minio at boot',
      'restart imctl-minio',
      'check that imctl-minio is running',
      'wait until MinIO at http://10.0.0.2:9000 is up and the cluster accepts writes (at most 300 s)',
      'clear the pending restart of imctl-minio',
    ])
    const user = p.steps.find((s) => s.id === 's1:minio-user:imctl-backup')!
    assert.ok(user.run.type === 'exec')
    assert.deepEqual(user.run.commands.map((c) => c.description), [
      'wait until the MinIO cluster accepts writes (at most 300 s)',
      'create or update policy imctl-backup',
      'create user imctl-backup or set its secret key',
      'attach policy imctl-backup to imctl-backup',
    ])
    // MinIO waits for no other component: its nodes start while ejabberd still installs.
    assert.deepEqual([...new Set(p.steps.filter((s) => s.component === 'minio').flatMap((s) => s.after))], [])
  })

  it('shows no secret anywhere but in stdin', () => {
    const p = plan(resources, freshFacts(resources))
    const shown = JSON.stringify(p.steps.map((s) => ({...s, run: s.run.type === 'exec' ? s.run.commands.map((c) => ({...c, stdin: undefined})) : s.run})))
    for (const v of secretValues({minio: MINIO_SECRETS.minio} as ClusterSecrets)) assert.ok(!shown.includes(v), `${v} shows in the plan`)
    const stdin = p.steps.flatMap((s) => (s.run.type === 'exec' ? s.run.commands.map((c) => String(c.stdin ?? '')) : [])).join('\n')
    assert.ok(stdin.includes('minio-Backup-2b8d4f6a0c\n'))
  })

  it('changes nothing on a converged cluster', () => {
    const p = plan(resources, converged(TWO_NODES_YAML, resources))
    assert.deepEqual(p.steps, [])
    assert.deepEqual(p.blockers, [])
    assert.equal(p.unchanged, resources.length)
  })

  it('blocks the whole plan while a drive is not a filesystem of its own, and says how to fix it', () => {
    // Given s2's first drive is a directory on the root filesystem and its second does not exist
    const facts = converged(TWO_NODES_YAML, resources)
    facts.s2!.mounts['/srv/minio/d1'] = {target: '/', fstype: 'ext4'}
    facts.s2!.mounts['/srv/minio/d2'] = null
    // When planned
    const p = plan(resources, facts)
    // Then
    const why =
      'with 4 drives in all, MinIO refuses drives on the root filesystem and would never become ready, and one disk per drive is what lets it survive a lost disk (XFS is what MinIO recommends). Mount a disk there (listed in /etc/fstab), then run install again'
    assert.deepEqual(p.blockers, [
      `s2: /srv/minio/d1 is not a filesystem of its own (it is on the ext4 filesystem mounted at /): ${why}`,
      `s2: /srv/minio/d2 is not a filesystem of its own (it does not exist): ${why}`,
    ])
  })

  it('repairs users: a wrong secret, an extra policy, a disabled key, a changed policy; and a missing bucket', () => {
    // Given MinIO answers but someone changed things by hand
    const facts = converged(TWO_NODES_YAML, resources)
    const m = facts.s1!.minio!
    m.buckets = m.buckets.filter((b) => b !== 'media')
    m.users['imctl-backup']!.secretWorks = false
    m.users['imctl-archive']!.policies = ['imctl-archive', 'readwrite']
    m.users['imctl-health']!.enabled = false
    m.policies['imctl-health'] = canonicalPolicy(bucketPolicy('imctl-backups'))
    // When planned
    const p = plan(resources, facts)
    // Then
    assert.deepEqual(minioWhats(p, 's1'), [
      'create bucket media — does not exist',
      'set MinIO user imctl-backup (read, write, list and delete in imctl-backups only) — its secret key does not work',
      'set MinIO user imctl-archive (read, write, list and delete in imctl-archive only) — it also has readwrite',
      'set MinIO user imctl-health (read, write, list and delete in imctl-health only) — policy imctl-health differs; it is disabled',
    ])
    const archive = p.steps.find((s) => s.id === 's1:minio-user:imctl-archive')!
    assert.ok(archive.run.type === 'exec')
    assert.equal(archive.action, 'update')
    assert.deepEqual(archive.run.commands.at(-1)!.description, 'detach policy readwrite from imctl-archive')
  })

  it('creates a user that does not exist yet', () => {
    const facts = converged(TWO_NODES_YAML, resources)
    delete facts.s1!.minio!.users['imctl-health']
    delete facts.s1!.minio!.policies['imctl-health']
    const p = plan(resources, facts)
    assert.deepEqual(p.steps.map((s) => [s.action, s.what, s.why]), [['create', 'set MinIO user imctl-health (read, write, list and delete in imctl-health only)', 'does not exist']])
  })
})

describe('sandbox drives', () => {
  it('takes plain absolute paths, without trailing slashes', () => {
    assert.deepEqual(checkDrives(['/srv/minio/d1', '/srv/minio/d2/']), ['/srv/minio/d1', '/srv/minio/d2'])
  })

  it('refuses relative, odd, duplicate and system paths', () => {
    for (const bad of [['srv/d1'], ['/srv/a b'], ['/srv/../etc'], ['/srv/d1,size=1g'], ['/srv/d1', '/srv/d1'], ['/etc/minio'], ['/usr'], ['/var']]) {
      assert.throws(() => checkDrives(bad), undefined, JSON.stringify(bad))
    }
  })
})
