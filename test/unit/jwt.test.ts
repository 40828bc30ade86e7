import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {parseClusterConfig} from '../../src/config/load.js'
import {loadManifest} from '../../src/config/manifest.js'
import {secretSections} from '../../src/config/model.js'
import {ensureSecrets, redact, secretValues, type ClusterSecrets} from '../../src/config/secrets.js'
import {UserError, ValidationError} from '../../src/errors.js'
import {jwkFile, jwtSignService, signJwt} from '../../src/ops/jwt.js'
import {desiredState} from '../../src/plan/desired.js'
import type {FileResource, Resource} from '../../src/plan/resources.js'
import {ONE_HOST_YAML, SECRETS} from './helpers.js'

const KEY = 'qF3mZ8rT1wY6uI0oP5aS9dG2hJ7kL4xC3vB8nM1qW6e'
const JWT_SECRETS: ClusterSecrets = {...SECRETS, ejabberd_jwt: {key: KEY}}
const withJwt = (jwt: string) => ONE_HOST_YAML.replace('ejabberd: {host: box}', `ejabberd: {host: box, jwt: ${jwt}}`)

function problems(yaml: string) {
  try {
    parseClusterConfig(yaml, '/tmp/imctl-unit/cluster.yaml')
  } catch (e) {
    assert.ok(e instanceof ValidationError, String(e))
    return e.problems.map((p) => ({line: p.line, column: p.column, path: p.path, message: p.message, hint: p.hint}))
  }
  assert.fail('validated, but it should not')
}

function file(resources: Resource[], path: string): FileResource {
  const f = resources.find((r): r is FileResource => r.kind === 'file' && r.path === path)
  assert.ok(f, `no file ${path}`)
  return f
}

describe('ejabberd JWT login: config', () => {
  it('is off unless enabled, so existing configs are unchanged', () => {
    const config = parseClusterConfig(ONE_HOST_YAML, '/tmp/imctl-unit/cluster.yaml')
    assert.equal(config.components.ejabberd.jwt, undefined)
    assert.deepEqual(secretSections(config), [])
    assert.equal(parseClusterConfig(withJwt('{enabled: false}'), '/tmp/imctl-unit/cluster.yaml').components.ejabberd.jwt, undefined)
  })

  it('enabled: the claim defaults to jid, and the key becomes a needed secret', () => {
    const config = parseClusterConfig(withJwt('{enabled: true}'), '/tmp/imctl-unit/cluster.yaml')
    assert.deepEqual(config.components.ejabberd.jwt, {jidField: 'jid'})
    assert.deepEqual(secretSections(config), ['ejabberd_jwt'])
    assert.deepEqual(parseClusterConfig(withJwt('{enabled: true, jidField: user_jid}'), '/tmp/imctl-unit/cluster.yaml').components.ejabberd.jwt, {jidField: 'user_jid'})
  })

  it('reports a bad claim name, an unknown key, a missing enabled and a claim while off at file:line', () => {
    assert.deepEqual(problems(withJwt('{enabled: true, jidField: "my-jid"}')), [
      {line: 12, column: 56, path: 'components.ejabberd.jwt.jidField', message: '"my-jid" is not valid here', hint: 'a claim name: letters, digits and underscores, e.g. jid'},
    ])
    assert.deepEqual(problems(withJwt('{enabled: true, key: abc}')), [
      {line: 12, column: 46, path: 'components.ejabberd.jwt.key', message: 'unknown key "key"', hint: 'allowed here: enabled, jidField'},
    ])
    assert.deepEqual(problems(withJwt('{jidField: jid}')), [
      {line: 12, column: 30, path: 'components.ejabberd.jwt', message: 'missing required key "enabled"', hint: undefined},
    ])
    assert.deepEqual(problems(withJwt('{enabled: false, jidField: jid}')), [
      {line: 12, column: 47, path: 'components.ejabberd.jwt.jidField', message: '`jidField` has no effect while JWT login is off', hint: 'set `enabled: true`, or remove jidField'},
    ])
  })
})

describe('ejabberd JWT login: secrets and rendered files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'imctl-jwt-'))
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('secrets generate adds a 256-bit key only when JWT is on, and keeps it', () => {
    const file = join(dir, 'a.secrets.yaml')
    assert.equal(ensureSecrets(file).created.includes('ejabberd_jwt.key'), false)
    const {secrets, created} = ensureSecrets(file, ['ejabberd_jwt'])
    assert.deepEqual(created, ['ejabberd_jwt.key'])
    assert.match(secrets.ejabberd_jwt!.key, /^[A-Za-z0-9_-]{43}$/)
    assert.equal(Buffer.from(secrets.ejabberd_jwt!.key, 'base64url').length, 32)
    assert.deepEqual(ensureSecrets(file, ['ejabberd_jwt']).created, [])
    assert.equal(ensureSecrets(file, ['ejabberd_jwt']).secrets.ejabberd_jwt!.key, secrets.ejabberd_jwt!.key)
  })

  it('ejabberd.yml adds jwt beside sql, and the key is a JWK only ejabberd reads, redacted in diffs', () => {
    const config = parseClusterConfig(withJwt('{enabled: true, jidField: user_jid}'), '/tmp/imctl-unit/cluster.yaml')
    const resources = desiredState(config, loadManifest(config.release), JWT_SECRETS)
    const yml = file(resources, '/etc/ejabberd/ejabberd.yml').content.split('\n')
    const at = yml.indexOf('auth_method:')
    assert.deepEqual(yml.slice(at, at + 6), ['auth_method:', '  - sql', '  - jwt', 'jwt_key: "/etc/ejabberd/jwt.jwk"', 'jwt_jid_field: "user_jid"', 'auth_password_format: scram'])
    const jwk = file(resources, '/etc/ejabberd/jwt.jwk')
    assert.equal(jwk.content, `{"kty":"oct","alg":"HS256","use":"sig","k":"${KEY}"}\n`)
    assert.deepEqual([jwk.owner, jwk.group, jwk.mode, jwk.secret, jwk.notify], ['ejabberd', 'ejabberd', '600', true, ['ejabberd']])
    // The JWK comes before ejabberd.yml, which names it.
    assert.ok(resources.indexOf(jwk) < resources.indexOf(file(resources, '/etc/ejabberd/ejabberd.yml')))
    assert.equal(redact(jwk.content, secretValues(JWT_SECRETS)), '{"kty":"oct","alg":"HS256","use":"sig","k":"********"}\n')
  })

  it('without jwt: auth_method sql alone and no key file', () => {
    const config = parseClusterConfig(ONE_HOST_YAML, '/tmp/imctl-unit/cluster.yaml')
    const resources = desiredState(config, loadManifest(config.release), SECRETS)
    const yml = file(resources, '/etc/ejabberd/ejabberd.yml').content.split('\n')
    assert.ok(yml.includes('auth_method: sql'))
    assert.equal(yml.some((l) => l.startsWith('jwt')), false)
    assert.equal(resources.some((r) => r.kind === 'file' && r.path.endsWith('.jwk')), false)
  })

  it('the JWK is the key as given', () => {
    assert.equal(jwkFile('abc_-123'), '{"kty":"oct","alg":"HS256","use":"sig","k":"abc_-123"}\n')
  })
})

describe('ejabberd JWT login: signing tokens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'imctl-jwt-sign-'))
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('signJwt matches the well-known HS256 example token', () => {
    const key = Buffer.from('your-256-bit-secret').toString('base64url')
    assert.equal(
      signJwt({sub: '1234567890', name: 'John Doe', iat: 1516239022}, key),
      'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
    )
  })

  it('jwt sign puts the JID in the configured claim and exp at now + ttl, with the key from the secrets file', () => {
    const cfg = join(dir, 'cluster.yaml')
    writeFileSync(cfg, withJwt('{enabled: true, jidField: user_jid}'))
    ensureSecrets(join(dir, 'solo.secrets.yaml'), ['ejabberd_jwt'])
    const key = ensureSecrets(join(dir, 'solo.secrets.yaml'), ['ejabberd_jwt']).secrets.ejabberd_jwt!.key
    const now = new Date('2026-01-02T03:04:05Z')
    const r = jwtSignService({configFile: cfg, user: 'alice', ttlMs: 3_600_000, now})
    assert.equal(r.jid, 'alice@chat.example.org')
    assert.equal(r.expires, '2026-01-02T04:04:05.000Z')
    const exp = Math.floor(now.getTime() / 1000) + 3600
    assert.equal(r.token, signJwt({user_jid: 'alice@chat.example.org', iat: exp - 3600, exp}, key))
    assert.deepEqual(JSON.parse(Buffer.from(r.token.split('.')[1]!, 'base64url').toString()), {user_jid: 'alice@chat.example.org', iat: exp - 3600, exp})
    assert.equal(jwtSignService({configFile: cfg, user: 'alice@chat.example.org', ttlMs: 60_000, now}).jid, 'alice@chat.example.org')
    assert.throws(() => jwtSignService({configFile: cfg, user: 'alice@other.example', ttlMs: 60_000, now}), (e) => e instanceof UserError && /not a user of chat.example.org/.test(e.message))
    assert.throws(() => jwtSignService({configFile: cfg, user: 'alice', ttlMs: 0, now}), (e) => e instanceof UserError && /expired/.test(e.message))
  })

  it('jwt sign on a cluster without JWT says how to turn it on', () => {
    const cfg = join(dir, 'off.yaml')
    writeFileSync(cfg, ONE_HOST_YAML)
    assert.throws(() => jwtSignService({configFile: cfg, user: 'alice', ttlMs: 60_000}), (e) => e instanceof UserError && /JWT login is off/.test(e.message))
  })
})
