import assert from 'node:assert/strict'
import {chmodSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {stringify} from 'yaml'
import {UserError} from '../../src/errors.js'
import {silentIo} from '../../src/io.js'
import {loadCluster} from '../../src/ops/cluster.js'
import {checkEndpointUrl, loadS3Credentials, parseCredentialsFile, resolveS3Endpoint, s3EndpointArgs} from '../../src/ops/backup/s3-endpoint.js'
import {credentialsEnvFile, scheduleBackup, type Systemd} from '../../src/ops/backup/schedule.js'
import {openBackupStore} from '../../src/ops/backup/store.js'
import {ONE_HOST_YAML, SECRETS} from './helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'imctl-s3-endpoint-'))
const secretFile = (name: string, text: string, mode = 0o600) => {
  const f = join(dir, name)
  writeFileSync(f, text)
  chmodSync(f, mode)
  return f
}

describe('external S3 endpoint: URL, credentials, CA', () => {
  it('takes http(s) URLs and refuses one that carries credentials, a query or another scheme', () => {
    assert.equal(checkEndpointUrl('https://s3.eu-central-1.amazonaws.com/'), 'https://s3.eu-central-1.amazonaws.com')
    assert.equal(checkEndpointUrl('http://10.0.0.5:9000'), 'http://10.0.0.5:9000')
    assert.throws(() => checkEndpointUrl('https://AKIA:secret@s3.example.com'), (e: Error) => e instanceof UserError && /carries credentials/.test(e.message) && !e.message.includes('secret'))
    for (const bad of ['s3.example.com', 'ftp://s3.example.com', 'https://s3.example.com/?x=1']) assert.throws(() => checkEndpointUrl(bad), UserError, bad)
  })

  it("reads AWS's credentials format: the default profile, a named one, the only one, or KEY=value lines", () => {
    const aws = '# keys\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s3cr3t/+=\n\n[profile backup]\naws_access_key_id=AKIABACKUP\naws_secret_access_key=other\naws_session_token=tok\n'
    assert.deepEqual(parseCredentialsFile(aws), {accessKeyId: 'AKIADEFAULT', secretAccessKey: 's3cr3t/+='})
    assert.deepEqual(parseCredentialsFile(aws, 'backup'), {accessKeyId: 'AKIABACKUP', secretAccessKey: 'other', sessionToken: 'tok'})
    assert.equal(parseCredentialsFile(aws, 'nope'), null)
    assert.deepEqual(parseCredentialsFile('[ops]\naws_access_key_id=A\naws_secret_access_key=B\n'), {accessKeyId: 'A', secretAccessKey: 'B'})
    assert.deepEqual(parseCredentialsFile('AWS_ACCESS_KEY_ID="A"\nexport AWS_SECRET_ACCESS_KEY=B\n'), {accessKeyId: 'A', secretAccessKey: 'B'})
    assert.equal(parseCredentialsFile('[default]\naws_access_key_id=A\n'), null)
  })

  it('takes the keys from the file (which must be 0600) before the environment, and says what to do when there are none', () => {
    const good = secretFile('creds', '[default]\naws_access_key_id=FILEKEY\naws_secret_access_key=filesecret\n')
    const env = {AWS_ACCESS_KEY_ID: 'ENVKEY', AWS_SECRET_ACCESS_KEY: 'envsecret'}
    assert.deepEqual(loadS3Credentials({endpoint: 'https://s3', credentialsFile: good}, env), {credentials: {accessKeyId: 'FILEKEY', secretAccessKey: 'filesecret'}, source: good})
    assert.deepEqual(loadS3Credentials({endpoint: 'https://s3'}, {...env, AWS_SESSION_TOKEN: 't'}).credentials, {accessKeyId: 'ENVKEY', secretAccessKey: 'envsecret', sessionToken: 't'})
    const loose = secretFile('loose', '[default]\naws_access_key_id=A\naws_secret_access_key=B\n', 0o640)
    assert.throws(() => loadS3Credentials({endpoint: 'https://s3', credentialsFile: loose}, env), (e: Error) => e instanceof UserError && /mode 0640/.test(e.message) && (e as UserError).nextSteps.includes(`chmod 600 ${loose}`))
    assert.throws(() => loadS3Credentials({endpoint: 'https://s3'}, {}), (e: Error) => e instanceof UserError && /no credentials/.test(e.message))
    assert.throws(() => loadS3Credentials({endpoint: 'https://s3', credentialsFile: join(dir, 'missing')}, env), /does not exist/)
  })

  it('resolves region and CA from flags or the standard variables, and refuses a CA file that holds no certificate', () => {
    const env = {AWS_ACCESS_KEY_ID: 'K', AWS_SECRET_ACCESS_KEY: 'S', AWS_REGION: 'eu-west-3'}
    const spec = resolveS3Endpoint({endpoint: 'https://s3.example.com'}, env)
    assert.deepEqual({region: spec.region, pathStyle: spec.pathStyle, ca: spec.ca}, {region: 'eu-west-3', pathStyle: true, ca: undefined})
    assert.equal(resolveS3Endpoint({endpoint: 'https://s3', region: 'us-west-2', pathStyle: false}, env).region, 'us-west-2')
    const notPem = secretFile('not-a-ca', 'hello')
    assert.throws(() => resolveS3Endpoint({endpoint: 'https://s3', caFile: notPem}, env), /holds no PEM certificate/)
    const pem = secretFile('ca.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
    assert.ok(resolveS3Endpoint({endpoint: 'https://s3'}, {...env, AWS_CA_BUNDLE: pem}).ca)
  })

  it('gives a scheduled run its flags with absolute paths and no secret', () => {
    assert.deepEqual(s3EndpointArgs({endpoint: 'https://s3.example.com/', region: 'eu-west-3', credentialsFile: '/etc/imctl/s3', caFile: '/etc/ssl/ca.pem', pathStyle: false}), [
      '--s3-endpoint', 'https://s3.example.com', '--s3-region', 'eu-west-3', '--s3-credentials', '/etc/imctl/s3', '--s3-ca', '/etc/ssl/ca.pem', '--no-s3-path-style',
    ])
  })

  it('--s3-endpoint needs an s3:// --to, and is refused before any host is contacted', async () => {
    const config = join(dir, 'cluster.yaml')
    writeFileSync(config, ONE_HOST_YAML)
    writeFileSync(join(dir, 'solo.secrets.yaml'), stringify(SECRETS), {mode: 0o600})
    await assert.rejects(openBackupStore(loadCluster(config), '/srv/backups', {io: silentIo, s3: {endpoint: 'https://s3'}}), /needs --to s3:\/\/BUCKET/)
    // Without --s3-endpoint an s3:// --to still means the cluster's own MinIO, which this cluster lacks.
    await assert.rejects(openBackupStore(loadCluster(config), 's3://company/x', {io: silentIo}), /has no MinIO.*|--s3-endpoint/)
  })
})

describe('external S3 endpoint: the schedule keeps secrets out of the unit', () => {
  const config = join(dir, 'cluster.yaml')
  writeFileSync(config, ONE_HOST_YAML)
  writeFileSync(join(dir, 'solo.secrets.yaml'), stringify(SECRETS), {mode: 0o600})
  const units = join(dir, 'units')
  const keys = join(dir, 'keys')
  const systemd: Systemd = {scope: 'system', unitDir: units, available: async () => true, systemctl: async () => ({exitCode: 0, stdout: '', stderr: ''})}
  const base = {configFile: config, keyFile: join(dir, 'key'), io: silentIo, imctl: ['/usr/bin/node', '/opt/imctl/bin/run.js'], systemd, credentialsDir: keys, every: '1d', to: 's3://company-backups/imctl'}
  const envFile = join(keys, 'imctl-backup-solo.s3.env')

  it('keys from the environment go into a 0600 EnvironmentFile, never into ExecStart', async () => {
    const env = {AWS_ACCESS_KEY_ID: 'AKIAENVKEY', AWS_SECRET_ACCESS_KEY: 'wJalr/XUtnFEMI+K7MDENG=', AWS_REGION: 'eu-west-3'}
    const r = await scheduleBackup({...base, s3: {endpoint: 'https://s3.example.com'}, env})
    assert.equal(r.action, 'scheduled')
    const service = readFileSync(join(units, 'imctl-backup-solo.service'), 'utf8')
    assert.match(service, new RegExp(`^EnvironmentFile=${envFile}$`, 'm'))
    assert.match(service, /^ExecStart=.* --to s3:\/\/company-backups\/imctl --s3-endpoint https:\/\/s3\.example\.com --s3-region eu-west-3$/m)
    assert.ok(!service.includes('AKIAENVKEY') && !service.includes('wJalr'), service)
    assert.equal(statSync(envFile).mode & 0o777, 0o600)
    assert.equal(readFileSync(envFile, 'utf8'), '# Written by `imctl backup schedule`: the S3 keys of the scheduled backups. Keep it 0600.\nAWS_ACCESS_KEY_ID=AKIAENVKEY\nAWS_SECRET_ACCESS_KEY=wJalr/XUtnFEMI+K7MDENG=\n')
  })

  it('a credentials file is passed by its path, and the environment file goes', async () => {
    const creds = secretFile('sched-creds', '[default]\naws_access_key_id=A\naws_secret_access_key=B\n')
    await scheduleBackup({...base, s3: {endpoint: 'https://s3.example.com', credentialsFile: creds}, env: {}})
    const service = readFileSync(join(units, 'imctl-backup-solo.service'), 'utf8')
    assert.match(service, new RegExp(`--s3-credentials ${creds}`))
    assert.doesNotMatch(service, /EnvironmentFile/)
    assert.equal(existsSync(envFile), false)
  })

  it('refuses keys a systemd environment file could not hold unquoted', () => {
    assert.throws(() => credentialsEnvFile({accessKeyId: 'A', secretAccessKey: 'has space'}), /would need quoted/)
  })
})
