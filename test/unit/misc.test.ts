import assert from 'node:assert/strict'
import {createHash, createHmac} from 'node:crypto'
import {chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {parse} from 'yaml'
import {scramSha256Verifier} from '../../src/components/postgresql/scram.js'
import {parseHostFlag} from '../../src/config/init-flags.js'
import {clusterYaml, writeClusterFiles, type InitAnswers} from '../../src/config/init.js'
import {parseClusterConfig} from '../../src/config/load.js'
import {versionMatches} from '../../src/config/manifest.js'
import type {HostConfig} from '../../src/config/model.js'
import {generatePassword, loadSecrets, redact} from '../../src/config/secrets.js'
import {UserError, ValidationError} from '../../src/errors.js'
import {endpointName, fingerprint, KnownHosts, parseHostKeyBlob, type HostKey} from '../../src/transport/known-hosts.js'

const scratch = mkdtempSync(join(tmpdir(), 'imctl-misc-'))
after(() => rmSync(scratch, {recursive: true, force: true}))
let n = 0
/** A fresh directory per test, under one scratch dir removed at the end. */
function tempDir(): string {
  return mkdtempSync(join(scratch, `t${n++}-`))
}

function throwsUserError(fn: () => unknown, message: string | RegExp, nextSteps?: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`)
    if (typeof message === 'string') assert.equal(e.message, message)
    else assert.match(e.message, message)
    if (nextSteps) assert.deepEqual(e.nextSteps, nextSteps)
    return true
  })
}

describe('scramSha256Verifier', () => {
  // RFC 5802 Hi(), written out by hand rather than with pbkdf2Sync, to check the code against.
  function hi(password: string, salt: Buffer, iterations: number): Buffer {
    let u = createHmac('sha256', password).update(Buffer.concat([salt, Buffer.from([0, 0, 0, 1])])).digest()
    const out = Buffer.from(u)
    for (let i = 1; i < iterations; i++) {
      u = createHmac('sha256', password).update(u).digest()
      for (let j = 0; j < out.length; j++) out[j]! ^= u[j]!
    }
    return out
  }
  const hmac = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest()
  const sha256 = (b: Buffer) => createHash('sha256').update(b).digest()
  const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((x, i) => x ^ b[i]!))

  /** The client's side of a SCRAM-SHA-256 exchange (RFC 5802 section 3). */
  function clientProof(password: string, salt: Buffer, iterations: number, authMessage: string) {
    const salted = hi(password, salt, iterations)
    const clientKey = hmac(salted, 'Client Key')
    return {proof: xor(clientKey, hmac(sha256(clientKey), authMessage)), serverSignature: hmac(hmac(salted, 'Server Key'), authMessage)}
  }

  function parts(verifier: string) {
    const m = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(verifier)
    assert.ok(m, `not a verifier: ${verifier}`)
    return {iterations: Number(m[1]), salt: Buffer.from(m[2]!, 'base64'), storedKey: Buffer.from(m[3]!, 'base64'), serverKey: Buffer.from(m[4]!, 'base64')}
  }

  it('the hand-written client reproduces the RFC 7677 test vector', () => {
    const auth =
      'n=user,r=rOprNGfwEbeRWgbNEkqO,' +
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,' +
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0'
    const {proof, serverSignature} = clientProof('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096, auth)
    assert.equal(proof.toString('base64'), 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=')
    assert.equal(serverSignature.toString('base64'), '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')
  })

  it('has PostgreSQL\'s format: SCRAM-SHA-256$4096:salt$StoredKey:ServerKey', () => {
    const v = scramSha256Verifier('correct horse battery staple', 'ejabberd')
    const p = parts(v)
    assert.equal(p.iterations, 4096)
    assert.deepEqual([p.salt.length, p.storedKey.length, p.serverKey.length], [16, 32, 32])
  })

  it('derives the salt from password and role, as documented', () => {
    const password = 'correct horse battery staple'
    const expected = createHmac('sha256', password).update('imctl pg salt:ejabberd').digest().subarray(0, 16)
    assert.deepEqual(parts(scramSha256Verifier(password, 'ejabberd')).salt, expected)
  })

  it('lets a client that knows the password log in, and nobody else (server-side check)', () => {
    // Given the verifier PostgreSQL stores
    const {iterations, salt, storedKey, serverKey} = parts(scramSha256Verifier('correct horse battery staple', 'ejabberd'))
    const authMessage = 'n=ejabberd,r=abc,r=abcdef,s=' + salt.toString('base64') + ',i=4096,c=biws,r=abcdef'
    const verify = (password: string) => {
      // When a client proves a password, the server recovers ClientKey and compares its hash
      const {proof, serverSignature} = clientProof(password, salt, iterations, authMessage)
      const clientKey = xor(proof, hmac(storedKey, authMessage))
      return {ok: sha256(clientKey).equals(storedKey), serverProvesItself: hmac(serverKey, authMessage).equals(serverSignature)}
    }
    // Then the right password passes both ways, a wrong one does not
    assert.deepEqual(verify('correct horse battery staple'), {ok: true, serverProvesItself: true})
    assert.deepEqual(verify('correct horse battery stapler'), {ok: false, serverProvesItself: false})
  })

  it('is deterministic for the same password and role and differs between roles and passwords', () => {
    const a = scramSha256Verifier('pw-0123456789', 'ejabberd')
    assert.equal(scramSha256Verifier('pw-0123456789', 'ejabberd'), a)
    assert.notEqual(scramSha256Verifier('pw-0123456789', 'other'), a)
    assert.notEqual(scramSha256Verifier('pw-0123456780', 'ejabberd'), a)
    assert.notEqual(parts(scramSha256Verifier('pw-0123456789', 'other')).salt.toString('hex'), parts(a).salt.toString('hex'))
  })
})

describe('KnownHosts', () => {
  /** An SSH public key blob: string type, string key data. */
  function blob(type: string, data: Buffer): Buffer {
    const len = (b: Buffer) => Buffer.from([0, 0, 0, b.length])
    return Buffer.concat([len(Buffer.from(type)), Buffer.from(type), len(data), data])
  }
  const keyA: HostKey = parseHostKeyBlob(blob('ssh-ed25519', Buffer.from(Array.from({length: 32}, (_, i) => i + 1))))
  const keyB: HostKey = parseHostKeyBlob(blob('ssh-ed25519', Buffer.alloc(32, 7)))

  it('reads the key type from the blob', () => {
    assert.equal(keyA.type, 'ssh-ed25519')
  })

  it('fingerprints like OpenSSH: SHA256: and unpadded base64', () => {
    // ssh-keygen -lf on "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g"
    assert.equal(fingerprint(keyA), 'SHA256:mKqU+0K8OhKmA8bBQi9Rz0Q5l7/g160hIP+rJYSTNj4')
    assert.match(fingerprint(keyB), /^SHA256:[A-Za-z0-9+/]{43}$/)
  })

  it('names endpoints as OpenSSH does', () => {
    assert.equal(endpointName('10.0.0.11', 22), '10.0.0.11')
    assert.equal(endpointName('10.0.0.11', 2222), '[10.0.0.11]:2222')
    assert.equal(endpointName('fd00::1', 2222), '[fd00::1]:2222')
  })

  it('goes from unknown to known once a key is added, in a private file', () => {
    // Given no known_hosts file yet
    const file = join(tempDir(), '.imctl', 'known_hosts')
    const kh = new KnownHosts(file)
    assert.deepEqual(kh.check('10.0.0.11', 22, keyA), {kind: 'unknown'})
    // When the key is added
    kh.add('10.0.0.11', 22, keyA)
    // Then it is known, written in OpenSSH's format, and only for that endpoint
    assert.deepEqual(kh.check('10.0.0.11', 22, keyA), {kind: 'known'})
    assert.equal(readFileSync(file, 'utf8'), '10.0.0.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\n')
    assert.equal(statSync(file).mode & 0o777, 0o600)
    assert.deepEqual(kh.check('10.0.0.11', 2222, keyA), {kind: 'unknown'})
    assert.deepEqual(kh.check('10.0.0.12', 22, keyA), {kind: 'unknown'})
    assert.deepEqual(kh.pinnedTypes('10.0.0.11', 22), ['ssh-ed25519'])
  })

  it('reports another key for a pinned endpoint as changed, naming the pinned fingerprint', () => {
    const kh = new KnownHosts(join(tempDir(), 'known_hosts'))
    kh.add('10.0.0.11', 2222, keyA)
    assert.deepEqual(kh.check('10.0.0.11', 2222, keyB), {kind: 'changed', pinned: ['ssh-ed25519 SHA256:mKqU+0K8OhKmA8bBQi9Rz0Q5l7/g160hIP+rJYSTNj4']})
  })

  it('reads lines written by others: comments, several names, several keys', () => {
    const file = join(tempDir(), 'known_hosts')
    const b64 = keyA.blob.toString('base64')
    writeFileSync(file, `# pinned by hand\n\nbastion,10.0.0.11 ssh-ed25519 ${b64}\n10.0.0.11 ecdsa-sha2-nistp256 AAAA\n`)
    const kh = new KnownHosts(file)
    assert.deepEqual(kh.check('bastion', 22, keyA), {kind: 'known'})
    assert.deepEqual(kh.check('10.0.0.11', 22, keyA), {kind: 'known'})
    assert.deepEqual(kh.pinnedTypes('10.0.0.11', 22), ['ssh-ed25519', 'ecdsa-sha2-nistp256'])
  })
})

describe('parseHostFlag', () => {
  it('reads every field', () => {
    assert.deepEqual(parseHostFlag('name=db1,address=10.0.0.11,port=2222,user=admin,sudo,key=~/.ssh/id,jump=ops@bastion.example.com:2200'), {
      name: 'db1',
      address: '10.0.0.11',
      port: 2222,
      user: 'admin',
      sudo: true,
      key: '~/.ssh/id',
      jump: {address: 'bastion.example.com', port: 2200, user: 'ops'},
    })
  })

  it('reads the short forms: agent, sudo=false, a bare jump host, blanks around commas', () => {
    assert.deepEqual(parseHostFlag(' name=im1 , address=fd00::13 ,agent,sudo=false,jump=bastion'), {name: 'im1', address: 'fd00::13', key: 'agent', sudo: false, jump: {address: 'bastion'}})
  })

  it('refuses unknown fields, bad ports and a missing name or address', () => {
    throwsUserError(() => parseHostFlag('name=db1,address=10.0.0.11,colour=red'), '--host name=db1,address=10.0.0.11,colour=red: unknown field "colour"', ['Fields: name, address, port, user, sudo, key, agent, jump.'])
    for (const port of ['0', '65536', '22x', '', '2.5']) {
      throwsUserError(() => parseHostFlag(`name=db1,address=10.0.0.11,port=${port}`), `--host name=db1,address=10.0.0.11,port=${port}: port ${port} is not a port`, ['Write port=22 (1 to 65535).'])
    }
    throwsUserError(() => parseHostFlag('name=db1'), '--host name=db1: needs name= and address=')
    throwsUserError(() => parseHostFlag('address=10.0.0.11'), '--host address=10.0.0.11: needs name= and address=')
    throwsUserError(() => parseHostFlag('name=a,address=b,jump=x:y:z'), '--host name=a,address=b,jump=x:y:z: jump=x:y:z is not [user@]address[:port]')
  })
})

describe('init: cluster.yaml and its secrets file', () => {
  const answers: InitAnswers = {
    name: 'chat-prod',
    domain: 'chat.example.com',
    release: 'ejabberd-23.01-debian12',
    hosts: [
      {name: 'db1', address: '10.0.0.11', key: '~/.ssh/id_ed25519'},
      {name: 'cache1', address: '10.0.0.12', port: 2222, user: 'admin', sudo: true, key: 'agent'},
      {name: 'im1', address: '10.0.0.13', jump: {address: 'bastion.example.com', port: 2200, user: 'ops'}},
    ],
    placement: {postgresql: 'db1', redis: 'cache1', ejabberd: 'im1'},
  }
  const expectedHosts: HostConfig[] = [
    {name: 'db1', address: '10.0.0.11', port: 22, user: 'root', sudo: false, auth: {kind: 'key', keyFile: '/home/tester/.ssh/id_ed25519'}},
    {name: 'cache1', address: '10.0.0.12', port: 2222, user: 'admin', sudo: true, auth: {kind: 'agent'}},
    {name: 'im1', address: '10.0.0.13', port: 22, user: 'root', sudo: false, auth: {kind: 'agent'}, jump: {address: 'bastion.example.com', port: 2200, user: 'ops', auth: {kind: 'agent'}}},
  ]

  it('clusterYaml parses back to the same hosts and placement', () => {
    // Given the answers, when written and read back
    const text = clusterYaml(answers, '../schema/cluster.schema.json')
    const config = parseClusterConfig(text, '/srv/clusters/cluster.yaml', {home: '/home/tester'})
    // Then
    assert.deepEqual(config.hosts, expectedHosts)
    assert.deepEqual([config.name, config.domain, config.release], ['chat-prod', 'chat.example.com', 'ejabberd-23.01-debian12'])
    assert.deepEqual([config.components.postgresql.host, config.components.redis.host, config.components.ejabberd.host], ['db1', 'cache1', 'im1'])
    assert.equal(config.secretsFile, '/srv/clusters/chat-prod.secrets.yaml')
  })

  it('clusterYaml writes the schema header, short flow mappings, and leaves defaults out', () => {
    const text = clusterYaml(answers, '../schema/cluster.schema.json')
    const lines = text.split('\n')
    assert.equal(lines[0], '# yaml-language-server: $schema=../schema/cluster.schema.json')
    assert.equal(lines[1], '# imctl cluster definition. Secrets are never stored here: see secretsFile.')
    for (const l of ['    auth: { key: ~/.ssh/id_ed25519 }', '    auth: { agent: true }', '    jump: { address: bastion.example.com, port: 2200, user: ops }', '  redis: { host: cache1 }']) {
      assert.ok(lines.includes(l), `missing ${JSON.stringify(l)} in\n${text}`)
    }
    const data = parse(text) as {hosts: Record<string, unknown>[]}
    assert.deepEqual(Object.keys(data.hosts[0]!), ['name', 'address', 'auth'])
    assert.ok(!clusterYaml(answers).startsWith('# yaml-language-server'))
  })

  it('clusterYaml keeps secretsFile and knownHostsFile when given', () => {
    const config = parseClusterConfig(clusterYaml({...answers, secretsFile: 'private/s.yaml', knownHostsFile: 'kh'}), '/srv/c/cluster.yaml')
    assert.deepEqual([config.secretsFile, config.knownHostsFile], ['/srv/c/private/s.yaml', '/srv/c/kh'])
  })

  it('writeClusterFiles creates cluster.yaml and a 0600 secrets file with every secret', () => {
    const dir = tempDir()
    const file = join(dir, 'cluster.yaml')
    const result = writeClusterFiles(file, answers)
    assert.deepEqual(result, {
      configFile: file,
      secretsFile: join(dir, 'chat-prod.secrets.yaml'),
      secretsCreated: ['postgresql.ejabberd_password', 'redis.password', 'ejabberd.admin_password'],
    })
    assert.equal(statSync(result.secretsFile).mode & 0o777, 0o600)
    assert.equal(readFileSync(file, 'utf8'), clusterYaml(answers))
    const secrets = loadSecrets(result.secretsFile)
    for (const v of [secrets.postgresql.ejabberd_password, secrets.redis.password, secrets.ejabberd.admin_password]) {
      assert.match(v, /^[A-Za-z0-9_-]{32}$/)
      assert.ok(!readFileSync(file, 'utf8').includes(v))
    }
  })

  it('writeClusterFiles refuses an existing cluster.yaml without force and leaves it as it was', () => {
    const dir = tempDir()
    const file = join(dir, 'cluster.yaml')
    writeFileSync(file, 'mine\n')
    throwsUserError(() => writeClusterFiles(file, answers), `${file} already exists`)
    assert.equal(readFileSync(file, 'utf8'), 'mine\n')
    assert.equal(existsSync(join(dir, 'chat-prod.secrets.yaml')), false)
  })

  it('writeClusterFiles with force rewrites cluster.yaml but keeps every existing secret', () => {
    // Given a cluster written once
    const dir = tempDir()
    const file = join(dir, 'cluster.yaml')
    const first = writeClusterFiles(file, answers)
    const before = loadSecrets(first.secretsFile)
    // When written again with another domain, with force
    const second = writeClusterFiles(file, {...answers, domain: 'im.example.com'}, {force: true})
    // Then the file changed and the secrets did not
    assert.deepEqual(second.secretsCreated, [])
    assert.deepEqual(loadSecrets(second.secretsFile), before)
    assert.equal(parseClusterConfig(readFileSync(file, 'utf8'), file).domain, 'im.example.com')
  })

  it('writeClusterFiles with force fills in only the secrets the file lacks', () => {
    const dir = tempDir()
    const file = join(dir, 'cluster.yaml')
    const {secretsFile} = writeClusterFiles(file, answers)
    const kept = loadSecrets(secretsFile)
    writeFileSync(secretsFile, `postgresql: {ejabberd_password: ${kept.postgresql.ejabberd_password}}\nredis: {password: short}\n`, {mode: 0o600})
    const again = writeClusterFiles(file, answers, {force: true})
    assert.deepEqual(again.secretsCreated, ['redis.password', 'ejabberd.admin_password'])
    const now = loadSecrets(secretsFile)
    assert.equal(now.postgresql.ejabberd_password, kept.postgresql.ejabberd_password)
    assert.notEqual(now.redis.password, 'short')
  })

  it('writeClusterFiles validates before writing anything', () => {
    const dir = tempDir()
    const file = join(dir, 'cluster.yaml')
    assert.throws(() => writeClusterFiles(file, {...answers, placement: {...answers.placement, redis: 'nope'}}), (e: unknown) => {
      assert.ok(e instanceof ValidationError)
      assert.deepEqual(e.problems.map((p) => `${p.path}: ${p.message}`), ['components.redis.host: no host named "nope"'])
      return true
    })
    assert.equal(existsSync(file), false)
    assert.equal(existsSync(join(dir, 'chat-prod.secrets.yaml')), false)
  })
})

describe('loadSecrets', () => {
  const full = 'postgresql: {ejabberd_password: aaaaaaaaaaaaaaaa}\nredis: {password: bbbbbbbbbbbbbbbb}\nejabberd: {admin_password: cccccccccccccccc}\n'

  it('reads a private, complete file', () => {
    const file = join(tempDir(), 's.yaml')
    writeFileSync(file, full, {mode: 0o600})
    assert.deepEqual(loadSecrets(file), {postgresql: {ejabberd_password: 'aaaaaaaaaaaaaaaa'}, redis: {password: 'bbbbbbbbbbbbbbbb'}, ejabberd: {admin_password: 'cccccccccccccccc'}})
  })

  it('refuses a file others can read', () => {
    const file = join(tempDir(), 's.yaml')
    writeFileSync(file, full)
    chmodSync(file, 0o644)
    throwsUserError(() => loadSecrets(file), `secrets file ${file} is readable by others (mode 644)`, [`Run: chmod 600 ${file}`])
    chmodSync(file, 0o640)
    throwsUserError(() => loadSecrets(file), `secrets file ${file} is readable by others (mode 640)`)
  })

  it('names every missing (or too short) key', () => {
    const file = join(tempDir(), 's.yaml')
    writeFileSync(file, 'postgresql: {ejabberd_password: aaaaaaaaaaaaaaaa}\nredis: {password: short}\n', {mode: 0o600})
    throwsUserError(() => loadSecrets(file), `secrets file ${file} lacks redis.password, ejabberd.admin_password`)
  })

  it('says how to create a missing file', () => {
    const file = join(tempDir(), 'none.yaml')
    throwsUserError(() => loadSecrets(file), `secrets file ${file} does not exist`)
  })
})

describe('redact and generatePassword', () => {
  it('replaces every occurrence of every secret', () => {
    assert.equal(redact('a=S3cretValue1 b=S3cretValue1 c=Other-Secret-2', ['S3cretValue1', 'Other-Secret-2', '']), 'a=******** b=******** c=********')
    assert.equal(redact('nothing to hide', ['S3cretValue1']), 'nothing to hide')
  })

  it('generates 32 URL-safe characters, different each time', () => {
    const a = generatePassword()
    assert.match(a, /^[A-Za-z0-9_-]{32}$/)
    assert.notEqual(generatePassword(), a)
  })
})

describe('versionMatches', () => {
  it('treats * as any run of characters and everything else literally', () => {
    const cases: [string, string, boolean][] = [
      ['15.*', '15.8-0+deb12u1', true],
      ['15.*', '16.1-1', false],
      ['15.*', '115.0', false],
      ['5:7.0.*', '5:7.0.15-1~deb12u1', true],
      ['5:7.0.*', '5:7.2.4-1', false],
      ['5:7.0.*', '7.0.15-1', false],
      ['23.01-*', '23.01-1+deb12u1', true],
      ['23.01-*', '23.01', false],
      ['1.1.*', '1x1.5', false],
      ['1.2.0-7', '1.2.0-7', true],
      ['1.2.0-7', '1.2.0-70', false],
      ['2.(1)+*', '2.(1)+b1', true],
    ]
    for (const [pattern, version, want] of cases) assert.equal(versionMatches(pattern, version), want, `${pattern} vs ${version}`)
  })
})

describe('parseHostFlag refuses what it cannot read', () => {
  it('reads sudo=yes/no and rejects other words', () => {
    assert.equal(parseHostFlag('name=a,address=10.0.0.1,user=u,sudo=yes').sudo, true)
    assert.equal(parseHostFlag('name=a,address=10.0.0.1,sudo=no').sudo, false)
    assert.throws(() => parseHostFlag('name=a,address=10.0.0.1,sudo=maybe'), (e: Error) => e instanceof UserError && /sudo=maybe is neither yes nor no/.test(e.message))
  })

  it('range-checks the jump host port', () => {
    assert.deepEqual(parseHostFlag('name=a,address=10.0.0.1,jump=ops@b:2222').jump, {address: 'b', port: 2222, user: 'ops'})
    assert.throws(() => parseHostFlag('name=a,address=10.0.0.1,jump=b:99999'), (e: Error) => e instanceof UserError && /jump port 99999 is not a port/.test(e.message))
  })
})
