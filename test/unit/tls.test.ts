import assert from 'node:assert/strict'
import {createPrivateKey, X509Certificate} from 'node:crypto'
import {chmodSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {parse} from 'yaml'
import {REDIS_TUNNEL, redisTunnelPort} from '../../src/components/ejabberd/index.js'
import {component} from '../../src/components/registry.js'
import {parseClusterConfig} from '../../src/config/load.js'
import {loadManifest} from '../../src/config/manifest.js'
import type {ClusterConfig, ComponentName} from '../../src/config/model.js'
import {redact, secretValues} from '../../src/config/secrets.js'
import {ValidationError} from '../../src/errors.js'
import {desiredState} from '../../src/plan/desired.js'
import {openPorts} from '../../src/plan/firewall.js'
import {planChanges} from '../../src/plan/planner.js'
import type {FileResource, Resource} from '../../src/plan/resources.js'
import {clientCertificate, ensurePki, finishCaRotation, rotateCa, type ClusterPki} from '../../src/pki/pki.js'
import {SECRETS, THREE_HOSTS_YAML, configFrom, convergedFacts} from './helpers.js'

const TLS_YAML = THREE_HOSTS_YAML.replace(/^components:/m, 'tls: {ca: imctl}\ncomponents:')

/** A config in a temp dir of its own (the PKI goes beside its secrets file). */
function tlsConfig(yaml = TLS_YAML): ClusterConfig {
  const dir = mkdtempSync(join(tmpdir(), 'imctl-tls-'))
  return parseClusterConfig(yaml, join(dir, 'cluster.yaml'))
}

function problems(yaml: string, dir = mkdtempSync(join(tmpdir(), 'imctl-tls-'))): string[] {
  try {
    parseClusterConfig(yaml, join(dir, 'cluster.yaml'))
    return []
  } catch (e) {
    assert.ok(e instanceof ValidationError, String(e))
    return e.problems.map((p) => `${p.line}: ${p.path}: ${p.message}`)
  }
}

function resourcesWith(config: ClusterConfig, pki: ClusterPki): Resource[] {
  return desiredState(config, loadManifest(config.release), {...SECRETS, tls: pki})
}

function file(resources: Resource[], path: string): FileResource {
  const f = resources.find((r): r is FileResource => r.kind === 'file' && r.path === path)
  assert.ok(f, `no file ${path}`)
  return f
}

describe('tls: in cluster.yaml', () => {
  it('is optional: without it the model has no tls and no direct-TLS port', () => {
    const config = parseClusterConfig(THREE_HOSTS_YAML, '/tmp/imctl-unit/cluster.yaml')
    assert.equal(config.tls, undefined)
    assert.equal(config.components.ejabberd.c2sTlsPort, undefined)
  })

  it('puts the PKI beside the secrets file and claims the direct-TLS port 5223', () => {
    const config = tlsConfig()
    assert.deepEqual(config.tls?.ca, {kind: 'imctl'})
    assert.equal(config.tls?.dir, join(config.secretsFile, '..', `${config.name}.pki`))
    assert.equal(config.tls?.days, 397)
    assert.equal(config.components.ejabberd.c2sTlsPort, 5223)
  })

  it('refuses, with lines, what TLS cannot do yet or what is wrong', () => {
    assert.deepEqual(problems(THREE_HOSTS_YAML.replace('ejabberd: {host: im1}', 'ejabberd: {host: im1, ports: {c2sTls: 5223}}')).map((p) => p.replace(/^\d+/, 'L')), [
      'L: components.ejabberd.ports.c2sTls: c2sTls is the direct-TLS XMPP port, and this cluster has no `tls:`',
    ])
    assert.match(problems(TLS_YAML.replace('tls: {ca: imctl}', 'tls: {ca: mine}')).join('\n'), /tls\.ca: ca is `imctl` or your own CA/)
    assert.match(problems(TLS_YAML.replace('ejabberd: {host: im1}', 'ejabberd: {host: im1, ports: {c2sTls: 5222}}')).join('\n'), /port 5222 on host im1 is already used by ejabberd c2s/)
    const dir = mkdtempSync(join(tmpdir(), 'imctl-tls-'))
    writeFileSync(join(dir, 'ca.pem'), 'x')
    writeFileSync(join(dir, 'ca.key'), 'x')
    chmodSync(join(dir, 'ca.key'), 0o644)
    assert.match(problems(TLS_YAML.replace('tls: {ca: imctl}', 'tls: {ca: {cert: ca.pem, key: ca.key}}'), dir).join('\n'), /tls\.ca\.key: ca\.key is readable by others \(mode 644\)/)
    assert.match(problems(TLS_YAML.replace('tls: {ca: imctl}', 'tls: {ca: {cert: nope.pem, key: ca.key}}'), dir).join('\n'), /tls\.ca\.cert: nope\.pem does not exist/)
  })
})

describe('the PKI', () => {
  it('issues each component a certificate with its host, address (and domain), keys 0600; a second read changes nothing', () => {
    const config = tlsConfig()
    const pki = ensurePki(config)
    const dir = config.tls!.dir
    assert.equal(statSync(dir).mode & 0o777, 0o700)
    for (const f of ['ca.key', 'postgresql-db1.key', 'redis-cache1.key', 'ejabberd-im1.key']) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f)
    const caX = new X509Certificate(pki.caCert)
    assert.ok(caX.ca)
    const byComponent = Object.fromEntries(pki.servers.map((s) => [s.component, new X509Certificate(s.cert)]))
    assert.ok(byComponent.ejabberd!.checkIssued(caX) && byComponent.ejabberd!.verify(caX.publicKey))
    const im1 = config.hosts.find((h) => h.name === 'im1')!
    assert.equal(byComponent.ejabberd!.subjectAltName, `DNS:im1, IP Address:${im1.address}, DNS:${config.domain}, DNS:localhost, IP Address:127.0.0.1`)
    assert.doesNotMatch(byComponent.postgresql!.subjectAltName!, new RegExp(config.domain))
    assert.ok(!byComponent.redis!.ca)
    const again = ensurePki(config)
    assert.deepEqual(again.servers.map((s) => s.serial), pki.servers.map((s) => s.serial))
    assert.equal(again.caCert, pki.caCert)
  })

  it('issues again when a host moved, on request, and keeps only private keys secret', () => {
    const config = tlsConfig()
    const first = ensurePki(config)
    const moved = parseClusterConfig(TLS_YAML.replace(/address: (\d+\.\d+\.\d+\.)(\d+)(\s+# db1|$)/m, 'address: $1$2$3'), config.file)
    const db1 = moved.hosts.find((h) => h.name === 'db1')!
    db1.address = '10.9.9.9'
    const second = ensurePki(moved)
    const serial = (p: ClusterPki, c: string) => p.servers.find((s) => s.component === c)!.serial
    assert.notEqual(serial(second, 'postgresql'), serial(first, 'postgresql'))
    assert.equal(serial(second, 'ejabberd'), serial(first, 'ejabberd'))
    const third = ensurePki(moved, {reissue: true})
    assert.notEqual(serial(third, 'ejabberd'), serial(second, 'ejabberd'))
    const values = secretValues({...SECRETS, tls: third})
    for (const s of third.servers) {
      assert.ok(values.includes(s.key))
      assert.ok(!values.includes(s.cert))
    }
  })

  it('issues ejabberd a client certificate: CN=ejabberd (its role), clientAuth only, no names; key 0600 and secret; rotated on request', () => {
    const config = tlsConfig()
    const pki = ensurePki(config)
    assert.deepEqual(pki.clients.map((c) => c.role), ['ejabberd'])
    const client = clientCertificate(pki, 'ejabberd')
    const x = new X509Certificate(client.cert)
    assert.equal(x.subject, 'O=imctl\nCN=ejabberd')
    assert.equal(x.subjectAltName, undefined)
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.2'])
    assert.ok(!x.ca)
    const caX = new X509Certificate(pki.caCert)
    assert.ok(x.checkIssued(caX) && x.verify(caX.publicKey))
    assert.ok(x.checkPrivateKey(createPrivateKey(client.key)))
    const dir = config.tls!.dir
    assert.equal(statSync(join(dir, 'client-ejabberd.key')).mode & 0o777, 0o600)
    assert.equal(readFileSync(join(dir, 'client-ejabberd.crt'), 'utf8'), client.cert)
    assert.equal(clientCertificate(ensurePki(config), 'ejabberd').serial, client.serial)
    const rotated = clientCertificate(ensurePki(config, {reissue: true}), 'ejabberd')
    assert.notEqual(rotated.serial, client.serial)
    const values = secretValues({...SECRETS, tls: ensurePki(config)})
    assert.ok(values.includes(rotated.key) && !values.includes(rotated.cert))
  })

  it('issues the client certificate anew when it was signed by another CA or names another subject', () => {
    const config = tlsConfig()
    const first = clientCertificate(ensurePki(config), 'ejabberd')
    const dir = config.tls!.dir
    // A certificate with the wrong subject in its place (the server certificate of im1, with its key).
    writeFileSync(join(dir, 'client-ejabberd.crt'), readFileSync(join(dir, 'ejabberd-im1.crt')))
    writeFileSync(join(dir, 'client-ejabberd.key'), readFileSync(join(dir, 'ejabberd-im1.key')), {mode: 0o600})
    const second = clientCertificate(ensurePki(config), 'ejabberd')
    assert.notEqual(second.serial, first.serial)
    assert.equal(new X509Certificate(second.cert).subject, 'O=imctl\nCN=ejabberd')
    // After a CA rotation: kept during the overlap, issued by the new CA in the second pass.
    rotateCa(config)
    assert.equal(clientCertificate(ensurePki(config, {acceptPreviousCa: true}), 'ejabberd').serial, second.serial)
    const switched = ensurePki(config)
    assert.ok(new X509Certificate(clientCertificate(switched, 'ejabberd').cert).checkIssued(new X509Certificate(switched.caCert)))
  })

  it('rotates the CA with an overlap: certificates of the old one stay until the second pass, then the old CA goes', () => {
    const config = tlsConfig()
    const first = ensurePki(config)
    rotateCa(config)
    const overlap = ensurePki(config, {acceptPreviousCa: true})
    assert.deepEqual(overlap.servers.map((s) => s.serial), first.servers.map((s) => s.serial))
    assert.notEqual(overlap.caCert, first.caCert)
    assert.equal(overlap.caBundle, overlap.caCert + first.caCert)
    assert.throws(() => rotateCa(config), /not finished/)
    const switched = ensurePki(config)
    const caX = new X509Certificate(switched.caCert)
    assert.ok(switched.servers.every((s) => new X509Certificate(s.cert).checkIssued(caX)))
    assert.ok(finishCaRotation(config))
    assert.equal(ensurePki(config).caBundle, switched.caCert)
    assert.ok(!existsSync(join(config.tls!.dir, 'ca.previous.crt')))
  })
})

describe('desired state with tls', () => {
  const config = tlsConfig()
  const pki = ensurePki(config)
  const resources = resourcesWith(config, pki)

  it('PostgreSQL: ssl on, hostssl for ejabberd, plaintext from other hosts rejected; key 0600', () => {
    const conf = file(resources, '/etc/postgresql/15/main/conf.d/50-imctl.conf').content
    assert.match(conf, /^ssl = on$/m)
    assert.match(conf, /^ssl_key_file = '\/etc\/postgresql\/15\/main\/imctl-server\.key'$/m)
    const hba = file(resources, '/etc/postgresql/15/main/pg_hba.conf').content
    assert.match(hba, /^hostssl ejabberd\s+ejabberd\s+\S+\/32\s+scram-sha-256$/m)
    assert.doesNotMatch(hba, /^host\s+ejabberd/m)
    assert.match(hba, /^hostnossl all\s+all\s+0\.0\.0\.0\/0\s+reject$/m)
    const key = file(resources, '/etc/postgresql/15/main/imctl-server.key')
    assert.deepEqual([key.owner, key.mode, key.secret, key.reloadable], ['postgres', '600', true, true])
  })

  it('PostgreSQL: ejabberd\'s host logs in with its client certificate only (cert), checked against the cluster CA', () => {
    const conf = file(resources, '/etc/postgresql/15/main/conf.d/50-imctl.conf').content
    assert.match(conf, /^ssl_ca_file = '\/etc\/postgresql\/15\/main\/imctl-ca\.crt'$/m)
    const ca = file(resources, '/etc/postgresql/15/main/imctl-ca.crt')
    assert.deepEqual([ca.content, ca.owner, ca.mode, ca.secret, ca.reloadable, ca.notify], [pki.caBundle, 'postgres', '644', false, true, ['postgresql@15-main']])
    const hba = file(resources, '/etc/postgresql/15/main/pg_hba.conf').content
    const lines = hba.split('\n').filter((l) => /^host/.test(l))
    assert.deepEqual(lines, [
      'host    all             all             127.0.0.1/32            scram-sha-256',
      'host    all             all             ::1/128                 scram-sha-256',
      'hostssl ejabberd        ejabberd        10.0.0.11/32    scram-sha-256',
      'hostssl ejabberd        ejabberd        10.0.0.12/32    scram-sha-256',
      'hostssl ejabberd        ejabberd        10.0.0.13/32    cert',
      'hostnossl all           all             0.0.0.0/0               reject',
      'hostnossl all           all             ::/0                    reject',
    ])
  })

  it('ejabberd: no database password; its client certificate and key in one file, 0600, reloaded like its other certificates', () => {
    const text = file(resources, '/etc/ejabberd/ejabberd.yml').content
    assert.doesNotMatch(text, /sql_password/)
    assert.ok(!text.includes(SECRETS.postgresql.ejabberd_password))
    const lines = text.split('\n').filter((l) => /^sql_/.test(l))
    assert.deepEqual(lines, [
      'sql_type: pgsql',
      'sql_server: "10.0.0.11"',
      'sql_port: 5432',
      'sql_database: "ejabberd"',
      'sql_username: "ejabberd"',
      'sql_ssl: true',
      'sql_ssl_verify: true',
      'sql_ssl_cafile: "/etc/ejabberd/imctl-ca.pem"',
      'sql_ssl_certfile: "/etc/ejabberd/imctl-sql-client.pem"',
      'sql_start_interval: 3',
    ])
    const client = clientCertificate(pki, 'ejabberd')
    const pem = file(resources, '/etc/ejabberd/imctl-sql-client.pem')
    assert.deepEqual([pem.content, pem.owner, pem.group, pem.mode, pem.secret, pem.reloadable, pem.notify], [client.cert + client.key, 'ejabberd', 'ejabberd', '600', true, true, ['ejabberd']])
  })

  it('Redis: TLS port only; ejabberd reaches it through stunnel on loopback that checks the CA and the address', () => {
    const conf = file(resources, '/etc/redis/redis.conf').content
    assert.match(conf, /^port 0$/m)
    assert.match(conf, /^tls-port 6379$/m)
    const cache1 = config.hosts.find((h) => h.name === 'cache1')!.address
    const tunnel = file(resources, '/etc/imctl/redis-tunnel.conf').content
    assert.match(tunnel, /^accept = 127\.0\.0\.1:16379$/m)
    assert.match(tunnel, new RegExp(`^connect = ${cache1.replace(/\./g, '\\.')}:6379$`, 'm'))
    assert.match(tunnel, new RegExp(`^checkIP = ${cache1.replace(/\./g, '\\.')}$`, 'm'))
    const yml = parse(file(resources, '/etc/ejabberd/ejabberd.yml').content)
    assert.equal(yml.redis_server, '127.0.0.1')
    assert.equal(yml.redis_port, 16379)
    const pkgs = resources.find((r) => r.kind === 'packages' && r.host === 'im1')
    assert.ok(pkgs?.kind === 'packages' && pkgs.packages.some((p) => p.name === 'stunnel4'))
  })

  it('ejabberd: SQL over verified TLS, STARTTLS required, direct TLS, WSS and MQTT over TLS', () => {
    const yml = parse(file(resources, '/etc/ejabberd/ejabberd.yml').content)
    assert.deepEqual([yml.sql_ssl, yml.sql_ssl_verify, yml.sql_ssl_cafile], [true, true, '/etc/ejabberd/imctl-ca.pem'])
    assert.deepEqual(yml.certfiles, ['/etc/ejabberd/imctl.pem'])
    const byPort = Object.fromEntries(yml.listen.map((l: {port: number}) => [l.port, l]))
    assert.equal(byPort[5222].starttls_required, true)
    assert.equal(byPort[5223].tls, true)
    assert.equal(byPort[5280].tls, true)
    assert.equal(byPort[1883].tls, true)
    assert.equal(byPort[5281].tls, undefined)
    assert.equal(yml.hide_sensitive_log_data, true)
  })

  it('without tls: no certificate, no tunnel, and the templates render as before', () => {
    const plain = desiredState(parseClusterConfig(THREE_HOSTS_YAML, '/tmp/imctl-unit/cluster.yaml'), loadManifest(config.release), SECRETS)
    const paths = plain.flatMap((r) => (r.kind === 'file' ? [r.path] : []))
    assert.ok(!paths.some((p) => /imctl-server|imctl\.pem|imctl-ca|redis-tunnel/.test(p)), paths.join('\n'))
    assert.match(file(plain, '/etc/postgresql/15/main/pg_hba.conf').content, /^host    ejabberd        ejabberd/m)
    assert.doesNotMatch(file(plain, '/etc/postgresql/15/main/pg_hba.conf').content, /\scert$/m)
    assert.doesNotMatch(file(plain, '/etc/postgresql/15/main/conf.d/50-imctl.conf').content, /ssl/)
    assert.match(file(plain, '/etc/ejabberd/ejabberd.yml').content, new RegExp(`^sql_password: "${SECRETS.postgresql.ejabberd_password}"$`, 'm'))
    assert.doesNotMatch(file(plain, '/etc/ejabberd/ejabberd.yml').content, /sql_ssl/)
    assert.match(file(plain, '/etc/redis/redis.conf').content, /^port 6379$/m)
    assert.ok(!plain.some((r) => r.kind === 'packages' && r.packages.some((p) => p.name === 'stunnel4')))
  })
})

describe('planning a certificate change', () => {
  const ORDER: ComponentName[] = ['postgresql', 'redis', 'ejabberd']
  const config = tlsConfig()
  const pki = ensurePki(config)
  const resources = resourcesWith(config, pki)
  const facts = convergedFacts(config, resources)
  for (const host of Object.values(facts)) host.packages['stunnel4'] = '3:5.68-2+deb12u1'
  facts.im1!.paths['/etc/imctl'] = {type: 'directory', owner: 'root', group: 'root', mode: '755'}
  const plan = (rs: Resource[]) => planChanges(rs, facts, ORDER, (c) => component(c).dependsOn, (t) => redact(t, secretValues({...SECRETS, tls: pki})))

  it('a converged cluster plans nothing', () => {
    assert.deepEqual(plan(resources).steps.map((s) => s.what), [])
  })

  it('new certificates reload each service (no restart); the key diff is redacted', () => {
    const rotated = resourcesWith(config, ensurePki(config, {reissue: true}))
    const steps = plan(rotated).steps
    const whats = steps.map((s) => `${s.host}: ${s.what}`)
    for (const w of ['db1: reload postgresql@15-main', 'cache1: reload redis-server', 'im1: reload ejabberd']) assert.ok(whats.includes(w), whats.join('\n'))
    assert.ok(!whats.some((w) => w.includes('restart')), whats.join('\n'))
    const keyStep = steps.find((s) => s.what.startsWith('write /etc/redis/imctl-server.key'))!
    assert.doesNotMatch(keyStep.diff ?? '', /PRIVATE KEY-----\n[A-Za-z0-9+/]/)
    const reload = steps.find((s) => s.what === 'reload redis-server')!
    assert.ok(reload.run.type === 'exec' && reload.run.commands[0]!.stdin === `${SECRETS.redis.password}\n`)
    assert.ok(reload.run.type === 'exec' && !reload.run.commands[0]!.argv.join(' ').includes(SECRETS.redis.password))
  })

  it('a certificate and a config change together still restart', () => {
    const rotated = resourcesWith(config, ensurePki(config, {reissue: true})).map((r) =>
      r.kind === 'file' && r.path === '/etc/redis/redis.conf' ? {...r, content: r.content + '# changed\n'} : r,
    )
    const whats = plan(rotated).steps.map((s) => s.what)
    assert.ok(whats.includes('restart redis-server'), whats.join('\n'))
    assert.ok(whats.includes('reload postgresql@15-main'), whats.join('\n'))
  })

  it('reads the key files it wrote', () => {
    const key = readFileSync(join(config.tls!.dir, 'redis-cache1.key'), 'utf8')
    assert.match(key, /^-----BEGIN PRIVATE KEY-----/)
  })
})

describe('tls beside Patroni mode and the firewall', () => {
  it('refuses `tls:` with PostgreSQL under Patroni (not yet), at the line of `hosts`', () => {
    const yaml = TLS_YAML.replace('  - name: im1', '  - name: db2\n    address: 10.0.0.14\n    auth: {agent: true}\n  - name: im1').replace('postgresql: {host: db1}', 'postgresql: {hosts: [db1, db2], etcd: [db1, db2, im1]}')
    const line = yaml.split('\n').findIndex((l) => l.includes('hosts: [db1, db2]')) + 1
    assert.deepEqual(problems(yaml), [`${line}: components.postgresql.hosts: TLS with PostgreSQL under Patroni (\`hosts\`) is not there yet`])
  })

  it('the firewall opens the direct-TLS port on the entry host; the Redis tunnel stays on loopback with no rule', () => {
    const config = tlsConfig(`${TLS_YAML}firewall: {enabled: true}\n`)
    const resources = resourcesWith(config, ensurePki(config))
    const table = resources.find((r) => r.kind === 'firewall' && r.host === 'im1')
    assert.ok(table?.kind === 'firewall' && table.table !== null)
    assert.match(table.table, /\n\t\ttcp dport 5223 accept\n/)
    const tunnel = file(resources, REDIS_TUNNEL.conf).content
    const local = redisTunnelPort(config.components.redis.port)
    assert.match(tunnel, new RegExp(`accept = 127\\.0\\.0\\.1:${local}\\n`))
    assert.ok(!resources.some((r) => r.kind === 'firewall' && r.table?.includes(`dport ${local} `)), 'no rule for the tunnel')
    assert.match(table.table, /\n\t\tiif "lo" accept\n/)
    // Only the entry host opens it; without tls: nobody does
    assert.ok(!resources.some((r) => r.kind === 'firewall' && r.host !== 'im1' && r.table?.includes('dport 5223')))
    const plain = configFrom(`${THREE_HOSTS_YAML}firewall: {enabled: true}\n`)
    assert.ok(!openPorts(plain, 'im1').some((p) => p.port === 5223))
    // Both want /etc/imctl on im1: a fresh host creates it once
    const facts = convergedFacts(config, [])
    const steps = planChanges(resources, facts, ['postgresql', 'redis', 'ejabberd'], (c) => component(c).dependsOn).steps
    assert.equal(steps.filter((s) => s.host === 'im1' && s.what.startsWith('directory /etc/imctl ')).length, 1, steps.map((s) => `${s.host}: ${s.what}`).join('\n'))
  })
})

describe('a change left pending by an interrupted run', () => {
  const config = tlsConfig()
  const resources = resourcesWith(config, ensurePki(config))
  const facts = convergedFacts(config, resources)
  for (const host of Object.values(facts)) host.packages['stunnel4'] = '3:5.68-2+deb12u1'
  facts.im1!.paths['/etc/imctl'] = {type: 'directory', owner: 'root', group: 'root', mode: '755'}

  it('restarts a service that a file other than its certificates notifies (the pending change may be that file)', () => {
    facts.cache1!.pendingRestarts = ['redis-server']
    const whats = planChanges(resources, facts, ['postgresql', 'redis', 'ejabberd'], (c) => component(c).dependsOn).steps.map((s) => s.what)
    assert.deepEqual(whats, ['restart redis-server'])
    facts.cache1!.pendingRestarts = []
  })
})
