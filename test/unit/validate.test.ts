import assert from 'node:assert/strict'
import {readdirSync, readFileSync} from 'node:fs'
import {join, relative, resolve} from 'node:path'
import {describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'
import {Ajv} from 'ajv'
import {parse} from 'yaml'
import {loadClusterConfig, parseClusterConfig} from '../../src/config/load.js'
import {ValidationError, type ConfigProblem} from '../../src/errors.js'

const root = resolve(fileURLToPath(import.meta.url), '../../..')
const fixtures = join(root, 'test/fixtures')
const badDir = join(fixtures, 'bad')

interface Expected {
  line: number
  column: number
  /** Dotted path of the offending node, as shown in the message. */
  path: string
  message: string
  hint?: string
}

/**
 * Every file in test/fixtures/bad is valid-agent-cluster.yaml with one fault.
 * Line numbers count the `# bad: ...` comment on line 1.
 */
const BAD: Record<string, Expected> = {
  '01-unknown-top-level-key': {line: 6, column: 1, path: 'replicas', message: 'unknown key "replicas"', hint: 'allowed here: apiVersion, name, domain, release, secretsFile, knownHostsFile, hosts, components, firewall, tls'},
  // The error points at the unknown key itself, not at the host it sits in.
  '02-unknown-host-key': {line: 9, column: 5, path: 'hosts[0].hostname', message: 'unknown key "hostname"', hint: 'allowed here: name, address, port, user, sudo, auth, jump'},
  '03-port-as-string': {line: 9, column: 11, path: 'hosts[0].port', message: 'must be integer, not string "22"'},
  '04-port-out-of-range': {line: 17, column: 11, path: 'hosts[2].port', message: '70000 is out of range', hint: 'a port is 1 to 65535'},
  // A missing key can only be pointed at by the mapping that lacks it: here the document.
  '05-missing-domain': {line: 2, column: 1, path: '', message: 'missing required key "domain"', hint: 'add `domain: chat.example.com`'},
  '06-missing-host-address': {line: 10, column: 5, path: 'hosts[1]', message: 'missing required key "address"', hint: 'add `address: 10.0.0.11`'},
  '07-bad-api-version': {line: 2, column: 13, path: 'apiVersion', message: 'must be "imctl/v1"'},
  '08-bad-cluster-name': {line: 3, column: 7, path: 'name', message: '"Chat_Prod" is not valid here', hint: 'lower-case letters, digits and dashes, starting with a letter (up to 31)'},
  '09-bad-domain': {line: 4, column: 9, path: 'domain', message: '"chat_example.com" is not valid here', hint: 'a lower-case DNS name'},
  '10-duplicate-host-name': {line: 10, column: 11, path: 'hosts[1].name', message: 'duplicate host name "db1" (also hosts[0])', hint: 'give every host its own name'},
  '11-duplicate-yaml-key': {line: 6, column: 1, path: '', message: 'YAML syntax: Map keys must be unique'},
  '12-yaml-syntax-error': {line: 14, column: 23, path: '', message: 'YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]'},
  '13-address-not-ip': {line: 16, column: 14, path: 'hosts[2].address', message: '"im1.example.com" is not an IP address', hint: 'IPv4 or IPv6 address'},
  '14-wildcard-address': {line: 8, column: 14, path: 'hosts[0].address', message: '0.0.0.0 cannot be a cluster address', hint: 'services bind to this address'},
  '15-same-address-and-port': {line: 16, column: 14, path: 'hosts[2].address', message: 'same address and SSH port as hosts[0] (10.0.0.11:22)', hint: 'each host needs its own address'},
  '16-placement-unknown-host': {line: 20, column: 17, path: 'components.redis.host', message: 'no host named "cache2"', hint: 'use one of: db1, cache1, im1'},
  '17-port-taken-by-postgresql': {line: 20, column: 28, path: 'components.redis.port', message: 'port 5432 on host db1 is already used by postgresql', hint: 'choose another port'},
  '18-service-on-ssh-port': {line: 19, column: 33, path: 'components.postgresql.port', message: 'port 22 on host db1 is already used by sshd', hint: 'choose another port'},
  '19-ejabberd-port-clash': {line: 21, column: 39, path: 'components.ejabberd.ports.mqtt', message: 'port 5222 on host im1 is already used by ejabberd c2s', hint: 'choose another port'},
  '20-auth-key-and-agent': {line: 9, column: 11, path: 'hosts[0].auth', message: 'auth needs exactly one of `key` or `agent`', hint: '`auth: {agent: true}`'},
  '21-sudo-as-root': {line: 10, column: 11, path: 'hosts[0].sudo', message: '`sudo: true` with user root', hint: 'set `user:` to the non-root login'},
  '22-user-without-sudo': {line: 12, column: 11, path: 'hosts[1].user', message: 'user admin is not root and sudo is off', hint: 'add `sudo: true`'},
  '23-unknown-release': {line: 5, column: 10, path: 'release', message: 'unknown release "ejabberd-24.06-debian12"', hint: 'use one of: ejabberd-23.01-debian12'},
  '24-unknown-component': {line: 22, column: 3, path: 'components.coturn', message: 'unknown key "coturn"', hint: 'allowed here: postgresql, redis, ejabberd'},
  '25-unknown-ejabberd-port': {line: 21, column: 33, path: 'components.ejabberd.ports.xmpp', message: 'unknown key "xmpp"', hint: 'allowed here: c2s, c2sTls, http, mqtt, api'},
  '26-empty-hosts': {line: 6, column: 8, path: 'hosts', message: 'must NOT have fewer than 1 items'},
  '27-jump-bad-address': {line: 17, column: 21, path: 'hosts[2].jump.address', message: '"bastion example" is not an address or host name'},
  '28-bad-user-name': {line: 12, column: 11, path: 'hosts[1].user', message: '"Admin" is not valid here', hint: 'a Unix user name'},
  '29-multicast-address': {line: 11, column: 14, path: 'hosts[1].address', message: '224.0.0.5 cannot be a cluster address', hint: 'services bind to this address'},
}

function problemsOf(file: string): ConfigProblem[] {
  try {
    loadClusterConfig(file)
  } catch (e) {
    assert.ok(e instanceof ValidationError, `expected a ValidationError, got ${String(e)}`)
    return e.problems
  }
  assert.fail(`${file} validated, but it should not`)
}

describe('loadClusterConfig on the bad-config corpus', () => {
  it('has a table entry for every fixture file and a file for every entry', () => {
    const files = readdirSync(badDir).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -'.yaml'.length)).sort()
    assert.deepEqual(files, Object.keys(BAD).sort())
    assert.ok(files.length >= 22)
  })

  it('accepts the base every bad file is derived from (so each fails for its one fault)', () => {
    const config = loadClusterConfig(join(fixtures, 'valid-agent-cluster.yaml'))
    assert.deepEqual(config.hosts.map((h) => [h.name, h.address, h.user, h.sudo, h.auth.kind]), [
      ['db1', '10.0.0.11', 'root', false, 'agent'],
      ['cache1', '10.0.0.12', 'admin', true, 'agent'],
      ['im1', '10.0.0.13', 'root', false, 'agent'],
    ])
  })

  for (const [name, want] of Object.entries(BAD)) {
    it(`${name}: ${want.line}:${want.column} ${want.message}`, () => {
      // Given one fault in an otherwise valid file
      const file = join(badDir, `${name}.yaml`)
      // When it is validated
      const problems = problemsOf(file)
      // Then exactly that one problem is reported, at its line and column
      assert.equal(problems.length, 1, `problems: ${JSON.stringify(problems, null, 2)}`)
      const p = problems[0]!
      assert.equal(p.file, relative(process.cwd(), file))
      assert.deepEqual({line: p.line, column: p.column, path: p.path}, {line: want.line, column: want.column, path: want.path})
      assert.ok(p.message.includes(want.message), `message ${JSON.stringify(p.message)} lacks ${JSON.stringify(want.message)}`)
      if (want.hint) assert.ok(p.hint?.includes(want.hint), `hint ${JSON.stringify(p.hint)} lacks ${JSON.stringify(want.hint)}`)
      else assert.equal(p.hint, undefined)
    })
  }

  it('reports every problem of a file, sorted by line, in the error message too', () => {
    // Given a file whose problems the validator finds out of line order
    const file = join(fixtures, 'several-problems.yaml')
    // When it is validated
    let error: ValidationError | undefined
    try {
      loadClusterConfig(file)
    } catch (e) {
      error = e as ValidationError
    }
    // Then all five are there, in line order
    assert.ok(error instanceof ValidationError)
    assert.deepEqual(
      error.problems.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`),
      [
        '5:10 release: unknown release "ejabberd-99.99-debian12"',
        '8:14 hosts[0].address: 0.0.0.0 cannot be a cluster address',
        '12:11 hosts[1].user: user admin is not root and sudo is off',
        '15:14 hosts[2].address: same address and SSH port as hosts[1] (10.0.0.12:22)',
        '20:20 components.ejabberd.host: port 5222 on host im1 is already used by redis',
      ],
    )
    const shown = relative(process.cwd(), file)
    assert.ok(error.message.startsWith(`${shown}: 5 problems found; no host was contacted\n`), error.message)
    assert.ok(error.message.includes(`\n  ${shown}:8:14: hosts[0].address: 0.0.0.0 cannot be a cluster address (`), error.message)
  })

  it('keeps port 4369 free for epmd on the ejabberd host', () => {
    // Given redis on the IM host, on epmd's port
    const text = readFileSync(join(fixtures, 'valid-agent-cluster.yaml'), 'utf8').replace('redis: {host: cache1}', 'redis: {host: im1, port: 4369}')
    const file = join(fixtures, 'valid-agent-cluster.yaml')
    assert.throws(() => parseClusterConfig(text, file), (e: unknown) => {
      assert.ok(e instanceof ValidationError)
      // Then the clash is reported where the offending port is written.
      assert.deepEqual(e.problems.map((p) => [p.path, p.message]), [['components.redis.port', "port 4369 on host im1 is needed by ejabberd's epmd but used by redis"]])
      return true
    })
  })

  it('says the file is missing rather than reporting it as invalid', () => {
    assert.throws(() => loadClusterConfig(join(fixtures, 'no-such-cluster.yaml')), (e: Error) => {
      assert.equal(e.name, 'UserError')
      assert.ok(e.message.endsWith('no-such-cluster.yaml: no such file'), e.message)
      return true
    })
  })
})

describe('the shipped example and schema', () => {
  it('examples/cluster.yaml validates (key files not checked) with defaults filled in', () => {
    const config = loadClusterConfig(join(root, 'examples/cluster.yaml'), {home: '/home/tester'})
    assert.equal(config.name, 'chat-prod')
    assert.equal(config.domain, 'chat.example.com')
    assert.equal(config.secretsFile, join(root, 'examples/chat-prod.secrets.yaml'))
    assert.equal(config.knownHostsFile, join(root, 'examples/.imctl/known_hosts'))
    assert.deepEqual(config.hosts[0]!.auth, {kind: 'key', keyFile: '/home/tester/.ssh/id_ed25519'})
    // The jump host inherits the host's auth; its own user and default port apply.
    assert.deepEqual(config.hosts[2]!.jump, {address: 'bastion.example.com', port: 22, user: 'ops', auth: {kind: 'agent'}})
    assert.deepEqual(config.components, {
      postgresql: {host: 'db1', port: 5432},
      redis: {host: 'cache1', port: 6379},
      ejabberd: {host: 'im1', hosts: ['im1'], ports: {c2s: 5222, http: 5280, mqtt: 1883, api: 5281}},
    })
  })

  it('examples/cluster.yaml fails when key files are checked and the key does not exist', () => {
    // Given a home without ~/.ssh/id_ed25519
    assert.throws(
      () => loadClusterConfig(join(root, 'examples/cluster.yaml'), {home: join(fixtures, 'no-home'), checkKeyFiles: true}),
      (e: unknown) => {
        assert.ok(e instanceof ValidationError)
        assert.equal(e.problems.length, 1)
        assert.equal(e.problems[0]!.path, 'hosts[0].auth.key')
        assert.equal(e.problems[0]!.message, 'key file ~/.ssh/id_ed25519 does not exist')
        assert.equal(e.problems[0]!.line, 9)
        return true
      },
    )
  })

  it('schema/cluster.schema.json is JSON, compiles with ajv in strict mode and accepts the example', () => {
    const schema = JSON.parse(readFileSync(join(root, 'schema/cluster.schema.json'), 'utf8')) as Record<string, unknown>
    // strictRequired would flag the `oneOf: [{required: [key]}, ...]` idiom of auth; everything else is strict.
    const validate = new Ajv({strict: true, strictRequired: false, allErrors: true}).compile(schema)
    const example = parse(readFileSync(join(root, 'examples/cluster.yaml'), 'utf8')) as unknown
    assert.equal(validate(example), true, JSON.stringify(validate.errors))
    assert.equal(validate({...(example as object), apiVersion: 'imctl/v0'}), false)
    assert.equal(validate.errors?.[0]?.keyword, 'const')
  })
})

describe('ports are claimed per machine, not per host entry', () => {
  it('two host entries with one address cannot both use a port', () => {
    // Given two entries for one address (SSH on 22 and 2222), PostgreSQL and Redis both on 5432
    const text = readFileSync(join(fixtures, 'valid-agent-cluster.yaml'), 'utf8')
    const db = /- name: db1\n\s+address: (\S+)/.exec(text)![1]!
    const twin = text
      .replace(/(- name: cache1\n\s+address: )\S+/, `$1${db}\n    port: 2222`)
      .replace('redis: {host: cache1}', 'redis: {host: cache1, port: 5432}')
    const file = join(fixtures, 'valid-agent-cluster.yaml')
    // When it is validated, Then the second claim of db1's address:5432 is refused
    assert.throws(() => parseClusterConfig(twin, file), (e: unknown) => {
      assert.ok(e instanceof ValidationError)
      assert.deepEqual(e.problems.map((p) => [p.path, p.message]), [['components.redis.port', 'port 5432 on host cache1 is already used by postgresql']])
      return true
    })
  })
})
