import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, chmodSync} from 'node:fs'
import {tmpdir, userInfo} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {scramSha256Verifier} from '../../src/components/postgresql/scram.js'
import {appendAuditCommand, AUDIT_LOG, type AuditEntry} from '../../src/ops/audit.js'
import {acquireLockCommand, LOCK_DIR, parseLockInfo, releaseLockCommand, type LockInfo} from '../../src/ops/lock.js'
import {
  filesQuery,
  packagesQuery,
  parseFiles,
  parsePackages,
  parsePgCatalog,
  parseServices,
  PENDING_DIR,
  pgCatalogQuery,
  pgTableQuery,
  servicesQuery,
} from '../../src/plan/observe.js'
import {ensurePgDatabase, ensurePgRole, installPackages, loadSchema, restartService, writeFile} from '../../src/plan/planner.js'
import {commandLine, shellJoin, shellQuote, shScript, wrapArgv, type RemoteCommand} from '../../src/transport/command.js'
import {SECRETS} from './helpers.js'

const ROOT = {isRoot: true}
const SUDO = {isRoot: false}

const scratch = mkdtempSync(join(tmpdir(), 'imctl-builders-'))
after(() => rmSync(scratch, {recursive: true, force: true}))

/** Runs a built command's argv on this machine (Debian's dash, as on the hosts), with `from` swapped for `to`. */
function runLocally(cmd: RemoteCommand, swap: Record<string, string> = {}): {status: number | null; stdout: string} {
  const argv = cmd.argv.map((a) => swap[a] ?? a)
  const r = spawnSync(argv[0]!, argv.slice(1), {input: cmd.stdin ?? '', encoding: 'utf8'})
  return {status: r.status, stdout: r.stdout}
}

describe('shell quoting', () => {
  it('leaves safe words alone and single-quotes everything else', () => {
    assert.equal(shellQuote('redis-server'), 'redis-server')
    assert.equal(shellQuote('/etc/postgresql/15/main/pg_hba.conf'), '/etc/postgresql/15/main/pg_hba.conf')
    assert.equal(shellQuote('Dpkg::Options::=--force-confold'), 'Dpkg::Options::=--force-confold')
    assert.equal(shellQuote('user@host:22,x+y%z'), 'user@host:22,x+y%z')
    assert.equal(shellQuote(''), "''")
    assert.equal(shellQuote('a b'), "'a b'")
    assert.equal(shellQuote('$HOME'), "'$HOME'")
    assert.equal(shellQuote('~/x'), "'~/x'")
    assert.equal(shellQuote('*'), "'*'")
    assert.equal(shellQuote("it's"), "'it'\\''s'")
    assert.equal(shellQuote('a\nb'), "'a\nb'")
  })

  it('joins an argv into one command line', () => {
    assert.equal(shellJoin(['echo', 'a b', "it's", '', 'plain']), "echo 'a b' 'it'\\''s' '' plain")
    assert.equal(shellJoin([]), '')
  })

  it('survives a real shell: every word comes back exactly', () => {
    const words = ['plain', '', 'two words', "it's", '"dq"', '$HOME', '`id`', '$(id)', 'a\nb', 'tab\there', '\\', '*', '~', ';rm -rf /;', "'", "''"]
    const r = spawnSync('sh', ['-c', shellJoin(['printf', '%s\\0', ...words])], {encoding: 'utf8'})
    assert.equal(r.status, 0)
    assert.deepEqual(r.stdout.split('\0').slice(0, -1), words)
  })

  it('runs a script with positional arguments, never interpolated', () => {
    assert.deepEqual(shScript('echo "$1"', ['x y']), ['sh', '-c', 'echo "$1"', 'sh', 'x y'])
    assert.deepEqual(shScript('true'), ['sh', '-c', 'true', 'sh'])
  })
})

describe('wrapArgv and commandLine', () => {
  const asRoot: RemoteCommand = {argv: ['systemctl', 'restart', 'redis-server'], root: true, description: 'restart'}
  const asPostgres: RemoteCommand = {argv: ['psql', '-d', 'postgres'], asUser: 'postgres', description: 'psql'}
  const plain: RemoteCommand = {argv: ['systemctl', 'show', 'x'], description: 'show'}

  it('runs root commands as they are when logged in as root, through sudo -n otherwise', () => {
    assert.deepEqual(wrapArgv(asRoot, ROOT), ['systemctl', 'restart', 'redis-server'])
    assert.deepEqual(wrapArgv(asRoot, SUDO), ['sudo', '-n', '--', 'systemctl', 'restart', 'redis-server'])
  })

  it('reaches another user through runuser as root and sudo -n -u otherwise', () => {
    assert.deepEqual(wrapArgv(asPostgres, ROOT), ['runuser', '-u', 'postgres', '--', 'psql', '-d', 'postgres'])
    assert.deepEqual(wrapArgv(asPostgres, SUDO), ['sudo', '-n', '-u', 'postgres', '--', 'psql', '-d', 'postgres'])
    // asUser wins over root
    assert.deepEqual(wrapArgv({...asPostgres, root: true}, SUDO), ['sudo', '-n', '-u', 'postgres', '--', 'psql', '-d', 'postgres'])
  })

  it('leaves unprivileged commands alone', () => {
    assert.deepEqual(wrapArgv(plain, ROOT), ['systemctl', 'show', 'x'])
    assert.deepEqual(wrapArgv(plain, SUDO), ['systemctl', 'show', 'x'])
  })

  it('builds the one command line sent over SSH', () => {
    const [write] = writeFile('/etc/redis/redis.conf', 'x', 'redis', 'redis', '640', [])
    assert.equal(
      commandLine(write!, SUDO),
      `sudo -n -- sh -c 't="$1.imctl-tmp" && umask 077 && cat > "$t" && chown "$2" "$t" && chmod "$3" "$t" && mv -f "$t" "$1"' sh /etc/redis/redis.conf redis:redis 640`,
    )
    assert.equal(commandLine(asPostgres, ROOT), 'runuser -u postgres -- psql -d postgres')
    assert.equal(commandLine(packagesQuery(['a']), SUDO), "dpkg-query -W -f '${Package}\\t${db:Status-Status}\\t${Version}\\n' a")
  })
})

describe('action builders', () => {
  it('writeFile marks the restart first, then writes atomically with the content on stdin', () => {
    const cmds = writeFile('/etc/redis/redis.conf', 'port 6379\n', 'redis', 'redis', '640', ['redis-server'])
    assert.deepEqual(cmds, [
      {
        argv: ['sh', '-c', 'mkdir -p "$1" && cd "$1" && shift && touch -- "$@"', 'sh', '/var/lib/imctl/restart-pending', 'redis-server'],
        root: true,
        description: 'mark redis-server for restart',
      },
      {
        argv: ['sh', '-c', 't="$1.imctl-tmp" && umask 077 && cat > "$t" && chown "$2" "$t" && chmod "$3" "$t" && mv -f "$t" "$1"', 'sh', '/etc/redis/redis.conf', 'redis:redis', '640'],
        stdin: 'port 6379\n',
        root: true,
        description: 'write /etc/redis/redis.conf',
      },
    ])
    assert.equal(writeFile('/etc/x', 'y', 'root', 'root', '644', []).length, 1)
  })

  it('writeFile\'s scripts do what they say on a real shell', () => {
    // Given a target and pending dir in a temp dir
    const target = join(scratch, 'redis.conf')
    const pending = join(scratch, 'restart-pending')
    writeFileSync(target, 'old\n', {mode: 0o644})
    const me = `${userInfo().uid}:${userInfo().gid}`
    const [mark, write] = writeFile('/etc/redis/redis.conf', 'secret line\n', 'x', 'x', '640', ['redis-server', 'ejabberd'])
    // When both run
    assert.equal(runLocally(mark!, {[PENDING_DIR]: pending}).status, 0)
    assert.equal(runLocally(write!, {'/etc/redis/redis.conf': target, 'x:x': me}).status, 0)
    // Then the markers exist, the file is replaced with its mode, and no temp file is left
    assert.deepEqual(readdirSync(pending).sort(), ['ejabberd', 'redis-server'])
    assert.equal(readFileSync(target, 'utf8'), 'secret line\n')
    assert.equal(statSync(target).mode & 0o777, 0o640)
    assert.equal(existsSync(`${target}.imctl-tmp`), false)
  })

  it('installPackages finishes interrupted dpkg runs, refreshes lists, installs without prompts', () => {
    assert.deepEqual(installPackages(['redis-server', 'ejabberd']), [
      {
        argv: ['sh', '-c', 'for i in $(seq 1 60); do DEBIAN_FRONTEND=noninteractive dpkg --configure -a --force-confold && exit 0; sleep 2; done; exit 1', 'sh'],
        root: true,
        description: 'finish any interrupted package configuration',
      },
      {argv: ['apt-get', 'update', '-qq', '-o', 'DPkg::Lock::Timeout=300'], root: true, description: 'refresh the package lists'},
      {
        argv: ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=300', '-o', 'Dpkg::Options::=--force-confold', 'redis-server', 'ejabberd'],
        root: true,
        description: 'install redis-server ejabberd',
      },
    ])
  })

  it('restartService enables the enable unit, restarts and checks the unit, then clears its marker', () => {
    assert.deepEqual(restartService('postgresql@15-main', 'postgresql'), [
      {argv: ['systemctl', 'enable', '--quiet', 'postgresql'], root: true, description: 'enable postgresql at boot'},
      {argv: ['systemctl', 'restart', 'postgresql@15-main'], root: true, description: 'restart postgresql@15-main'},
      {argv: ['systemctl', 'is-active', '--quiet', 'postgresql@15-main'], root: true, description: 'check that postgresql@15-main is running'},
      {argv: ['rm', '-f', '/var/lib/imctl/restart-pending/postgresql@15-main'], root: true, description: 'clear the pending restart of postgresql@15-main'},
    ])
  })

  it('ensurePgRole sends the verifier on stdin only, never the password, never in argv', () => {
    const password = SECRETS.postgresql.ejabberd_password
    const verifier = scramSha256Verifier(password, 'ejabberd')
    const cmd = ensurePgRole('ejabberd', verifier)
    assert.deepEqual(cmd.argv, ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres'])
    assert.equal(cmd.asUser, 'postgres')
    assert.equal(cmd.description, 'create or update role ejabberd')
    assert.equal(
      cmd.stdin,
      `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ejabberd') THEN CREATE ROLE "ejabberd" LOGIN; END IF; END $$;\n` +
        `ALTER ROLE "ejabberd" LOGIN PASSWORD '${verifier}';\n`,
    )
    assert.ok(!String(cmd.stdin).includes(password))
    assert.ok(!cmd.argv.join(' ').includes(verifier) && !cmd.argv.join(' ').includes(password))
    assert.ok(!cmd.description.includes(password))
  })

  it('ensurePgRole quotes identifiers and literals', () => {
    const stdin = String(ensurePgRole(`o'brien"x`, 'v').stdin)
    assert.ok(stdin.includes(`WHERE rolname = 'o''brien"x') THEN CREATE ROLE "o'brien""x" LOGIN;`), stdin)
    assert.ok(stdin.includes(`ALTER ROLE "o'brien""x" LOGIN PASSWORD 'v';`), stdin)
  })

  it('ensurePgDatabase creates only when missing, then fixes owner and revokes PUBLIC', () => {
    const cmd = ensurePgDatabase('ejabberd', 'ejabberd')
    assert.deepEqual(cmd.argv, ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres'])
    assert.equal(cmd.asUser, 'postgres')
    assert.equal(
      cmd.stdin,
      `SELECT 'CREATE DATABASE "ejabberd" OWNER "ejabberd" ENCODING ''UTF8'' TEMPLATE template0' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'ejabberd')\\gexec\n` +
        'ALTER DATABASE "ejabberd" OWNER TO "ejabberd";\n' +
        'REVOKE ALL ON DATABASE "ejabberd" FROM PUBLIC;\n',
    )
  })

  it('loadSchema runs the schema from stdin in one transaction as the owning role', () => {
    const cmd = loadSchema('ejabberd', 'ejabberd')
    assert.deepEqual(cmd, {
      argv: ['sh', '-c', '{ printf "SET ROLE %s;\\n" "$1"; cat; } | psql -X -q -1 -v ON_ERROR_STOP=1 -d "$2"', 'sh', '"ejabberd"', 'ejabberd'],
      asUser: 'postgres',
      description: 'load the schema into ejabberd as ejabberd',
    })
    // The prefix the script puts before the schema, on a real shell (psql swapped for cat)
    const script = cmd.argv[2]!.replace('psql -X -q -1 -v ON_ERROR_STOP=1 -d "$2"', 'cat')
    const r = spawnSync('sh', ['-c', script, 'sh', '"ejabberd"', 'ejabberd'], {input: 'CREATE TABLE users ();\n', encoding: 'utf8'})
    assert.equal(r.stdout, 'SET ROLE "ejabberd";\nCREATE TABLE users ();\n')
  })
})

describe('lock and audit builders', () => {
  const info: LockInfo = {id: 'run-1', who: 'alice', machine: 'laptop', pid: 4242, since: '2026-01-02T03:04:05.000Z', command: 'imctl install'}

  it('acquireLockCommand makes the lock directory atomically and sends who holds it on stdin', () => {
    assert.deepEqual(acquireLockCommand(info), {
      argv: ['sh', '-c', 'mkdir -p "${1%/*}" && if mkdir "$1" 2>/dev/null; then cat > "$1/info"; else cat "$1/info" 2>/dev/null; exit 3; fi', 'sh', '/var/lib/imctl/lock'],
      stdin: '{"id":"run-1","who":"alice","machine":"laptop","pid":4242,"since":"2026-01-02T03:04:05.000Z","command":"imctl install"}\n',
      root: true,
      okExitCodes: [0, 3],
      description: 'take the cluster lock',
    })
  })

  it('releaseLockCommand removes only our own lock, or any lock with force', () => {
    assert.deepEqual(releaseLockCommand('run-1'), {
      argv: ['sh', '-c', 'if grep -qF "$2" "$1/info" 2>/dev/null; then rm -rf "$1"; fi', 'sh', '/var/lib/imctl/lock', 'run-1'],
      root: true,
      description: 'release the cluster lock',
    })
    assert.deepEqual(releaseLockCommand(null), {argv: ['rm', '-rf', '/var/lib/imctl/lock'], root: true, description: 'remove the cluster lock'})
  })

  it('the lock scripts take, refuse, keep and release the lock on a real shell', () => {
    const dir = join(scratch, 'state', 'lock')
    const swap = {[LOCK_DIR]: dir}
    // Given nobody holds the lock, when run 1 takes it, then it holds it
    assert.equal(runLocally(acquireLockCommand(info), swap).status, 0)
    assert.deepEqual(parseLockInfo(readFileSync(join(dir, 'info'), 'utf8')), info)
    // When run 2 tries, then it gets exit 3 and run 1's info
    const second = runLocally(acquireLockCommand({...info, id: 'run-2', who: 'bob'}), swap)
    assert.equal(second.status, 3)
    assert.deepEqual(parseLockInfo(second.stdout), info)
    // When run 2 releases, then run 1 still holds it; when run 1 releases, it is gone
    assert.equal(runLocally(releaseLockCommand('run-2'), swap).status, 0)
    assert.equal(existsSync(dir), true)
    assert.equal(runLocally(releaseLockCommand('run-1'), swap).status, 0)
    assert.equal(existsSync(dir), false)
  })

  it('parseLockInfo reads nothing as no lock and garbage as an unreadable one', () => {
    assert.equal(parseLockInfo(' \n'), null)
    assert.deepEqual(parseLockInfo('not json'), {id: '?', who: '?', machine: '?', pid: 0, since: '?', command: 'unreadable lock: not json'})
  })

  it('appendAuditCommand appends one JSON line and keeps the log private', () => {
    const entry: AuditEntry = {at: '2026-01-02T03:04:05.000Z', who: 'alice', machine: 'laptop', command: 'imctl install', release: 'ejabberd-23.01-debian12', result: 'ok', changed: 2, failed: 0, steps: ['changed: restart redis-server']}
    const cmd = appendAuditCommand(entry)
    assert.deepEqual(cmd.argv, ['sh', '-c', 'mkdir -p "${1%/*}" && chmod 750 "${1%/*}" && cat >> "$1" && chmod 640 "$1"', 'sh', '/var/log/imctl/audit.log'])
    assert.equal(cmd.stdin, JSON.stringify(entry) + '\n')
    assert.equal(cmd.root, true)
    // On a real shell, two appends give two lines, with the modes set
    const log = join(scratch, 'log', 'imctl', 'audit.log')
    assert.equal(runLocally(cmd, {[AUDIT_LOG]: log}).status, 0)
    assert.equal(runLocally(appendAuditCommand({...entry, result: 'failed'}), {[AUDIT_LOG]: log}).status, 0)
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as AuditEntry).result), ['ok', 'failed'])
    assert.equal(statSync(log).mode & 0o777, 0o640)
    assert.equal(statSync(join(scratch, 'log', 'imctl')).mode & 0o777, 0o750)
  })
})

describe('read-only queries', () => {
  it('build exact commands', () => {
    assert.deepEqual(packagesQuery(['redis-server']), {
      argv: ['dpkg-query', '-W', '-f', '${Package}\\t${db:Status-Status}\\t${Version}\\n', 'redis-server'],
      description: 'read installed versions of redis-server',
      okExitCodes: [0, 1],
    })
    assert.deepEqual(servicesQuery(['redis-server', 'postgresql']), {
      argv: ['systemctl', 'show', '--property=Id,LoadState,ActiveState,UnitFileState', '--', 'redis-server', 'postgresql'],
      description: 'read the state of redis-server, postgresql',
    })
    const cat = pgCatalogQuery(['ejabberd'], [])
    assert.equal(cat.asUser, 'postgres')
    assert.equal(cat.stdin, "SELECT 'role', rolname, coalesce(rolpassword, '') FROM pg_authid WHERE rolname IN ('ejabberd');\nSELECT 'db', datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname IN (NULL);\n")
    assert.equal(pgTableQuery('ejabberd', 'users').stdin, "SELECT to_regclass('public.users') IS NOT NULL;\n")
  })

  it('filesQuery\'s script and parseFiles agree on a real shell', () => {
    // Given a file with binary content, an empty one, and a missing one
    const a = join(scratch, 'files', 'a.conf')
    const empty = join(scratch, 'files', 'empty')
    const missing = join(scratch, 'files', 'missing')
    rmSync(join(scratch, 'files'), {recursive: true, force: true})
    spawnSync('mkdir', ['-p', join(scratch, 'files')])
    const content = Buffer.from([0x70, 0x0a, 0x00, 0xff, 0x20, 0x0a])
    writeFileSync(a, content)
    chmodSync(a, 0o640)
    writeFileSync(empty, '')
    chmodSync(empty, 0o600)
    // When the query runs and its output is parsed
    const r = spawnSync(filesQuery([a, empty, missing]).argv[0]!, filesQuery([a, empty, missing]).argv.slice(1))
    assert.equal(r.status, 0)
    const files = parseFiles(r.stdout.toString('latin1'))
    // Then
    const {username} = userInfo()
    assert.deepEqual(Object.keys(files), [a, empty, missing])
    assert.deepEqual({...files[a]!, content: [...files[a]!.content]}, {owner: username, group: files[a]!.group, mode: '640', content: [...content]})
    assert.deepEqual(files[empty]!.content, Buffer.alloc(0))
    assert.equal(files[empty]!.mode, '600')
    assert.equal(files[missing], null)
    assert.equal(filesQuery([a]).root, true)
  })
})

describe('parsers', () => {
  it('parsePackages keeps only installed packages and defaults the rest to null', () => {
    const out = 'postgresql-15\tinstalled\t15.8-0+deb12u1\npostgresql-client-15\tconfig-files\t15.8-0+deb12u1\nejabberd\thalf-configured\t23.01-1\nother\tinstalled\t1.0\n'
    assert.deepEqual(parsePackages(out, ['postgresql-15', 'postgresql-client-15', 'ejabberd', 'redis-server']), {
      'postgresql-15': '15.8-0+deb12u1',
      'postgresql-client-15': null,
      ejabberd: null,
      'redis-server': null,
    })
  })

  it('parseFiles reads NUL-separated path, owner group mode, base64 content; "-" for a missing file', () => {
    const b64 = Buffer.from('requirepass x\n').toString('base64')
    const out = `/etc/redis/redis.conf\0redis redis 640\0${b64}\0/etc/ejabberd/ejabberd.yml\0-\0\0`
    assert.deepEqual(parseFiles(out), {
      '/etc/redis/redis.conf': {owner: 'redis', group: 'redis', mode: '640', content: Buffer.from('requirepass x\n')},
      '/etc/ejabberd/ejabberd.yml': null,
    })
    assert.deepEqual(parseFiles(''), {})
  })

  it('parseServices reads systemctl show blocks, including a unit systemd does not know', () => {
    const out = [
      'Id=redis-server.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled',
      'Id=postgresql@15-main.service\nLoadState=loaded\nActiveState=activating\nUnitFileState=enabled-runtime',
      'Id=postgresql.service\nLoadState=loaded\nActiveState=inactive\nUnitFileState=disabled',
      'Id=ejabberd.service\nLoadState=not-found\nActiveState=inactive\nUnitFileState=',
    ].join('\n\n') + '\n'
    assert.deepEqual(parseServices(out), {
      'redis-server': {loaded: true, active: true, enabled: true},
      'postgresql@15-main': {loaded: true, active: false, enabled: true},
      postgresql: {loaded: true, active: false, enabled: false},
      ejabberd: {loaded: false, active: false, enabled: false},
    })
  })

  it('parsePgCatalog reads roles with their verifier and databases with their owner', () => {
    const verifier = scramSha256Verifier('x'.repeat(20), 'ejabberd')
    const out = `role\tejabberd\t${verifier}\nrole\tnopass\t\ndb\tejabberd\tejabberd\n\n`
    assert.deepEqual(parsePgCatalog(out), {roles: {ejabberd: verifier, nopass: ''}, databases: {ejabberd: 'ejabberd'}})
    assert.deepEqual(parsePgCatalog(''), {roles: {}, databases: {}})
  })
})
