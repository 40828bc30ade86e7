/**
 * TLS on every hop, on two real sandbox hosts (h1: PostgreSQL and Redis, h2: ejabberd):
 * install with `tls: {ca: imctl}` → health over verified TLS → converged → every
 * listener shows a certificate of the cluster's CA with the right names, and refuses
 * plaintext (psql sslmode=disable, redis-cli without TLS, XMPP without STARTTLS) →
 * `cert rotate` while clients log in over TLS in a loop: no failure, new serials.
 * Throughout, a canary planted as the cluster's secrets never shows in imctl's
 * output, in any process's argv on the hosts during install, nor in their logs.
 */
import assert from 'node:assert/strict'
import {execFile, execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {createPrivateKey, randomBytes, X509Certificate} from 'node:crypto'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import {join} from 'node:path'
import tls, {type PeerCertificate} from 'node:tls'
import {after, before, describe, it} from 'node:test'
import {client as xmppClient} from '@xmpp/client'
import {Redis} from 'ioredis'
import pg from 'pg'
import {parse, stringify} from 'yaml'
import {trustWebSocket} from '../../src/pki/websocket.js'
import {createSandbox, editConfig, imctl, transcript, type Sandbox} from './harness.js'

const CANARY = `canary${randomBytes(6).toString('hex')}`
const PASSWORDS = {pg: `${CANARY}pg`, redis: `${CANARY}rd`, admin: `${CANARY}ad`}

describe('TLS on every hop, cert rotate without downtime, and no secret anywhere', {timeout: 900_000}, () => {
  let sb: Sandbox
  let c: string
  let ca: string
  let domain: string
  let h1: string
  let h2: string
  /** PostgreSQL takes only the cluster's hosts: this machine reaches it from h2, through an SSH forward. */
  let forward: ChildProcess | undefined
  const PG_LOCAL = 47300

  before(async () => {
    sb = await createSandbox('tl1', 2)
    c = sb.config
    editConfig(c, (t) => t.replace(/^knownHostsFile: (.*)$/m, 'knownHostsFile: $1\ntls: { ca: imctl }'))
    // The canary as every password of the cluster (the file keeps its mode 0600).
    const secretsFile = join(sb.dir, 'tl1.secrets.yaml')
    const doc = parse(readFileSync(secretsFile, 'utf8'))
    doc.postgresql.ejabberd_password = PASSWORDS.pg
    doc.redis.password = PASSWORDS.redis
    doc.ejabberd.admin_password = PASSWORDS.admin
    writeFileSync(secretsFile, stringify(doc))
    h1 = sb.hosts.find((h) => h.name === 'h1')!.address
    h2 = sb.hosts.find((h) => h.name === 'h2')!.address
    domain = parse(readFileSync(c, 'utf8')).domain
  })

  after(async () => {
    forward?.kill()
    await sb?.destroy()
  })

  it('installs with every process argv on both hosts sampled: the canary is never in one', async () => {
    const samples: string[] = []
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        await Promise.all(
          sb.hosts.map(
            (h) => new Promise<void>((res) => execFile('podman', ['exec', h.container, 'ps', '-eo', 'args'], {encoding: 'utf8'}, (_e, out) => (samples.push(out ?? ''), res()))),
          ),
        )
        await new Promise((r) => setTimeout(r, 200))
      }
    })()
    const r = await imctl(['install', '-c', c, '--json', '--accept-new-host-keys'], {timeoutMs: 600_000})
    sampling = false
    await sampler
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.ok(samples.length > 20, `only ${samples.length} argv samples`)
    assert.ok(samples.some((s) => s.includes('apt-get') || s.includes('dpkg') || s.includes('psql')), 'the samples never caught a step at work')
    assert.equal(samples.filter((s) => s.includes(CANARY)).length, 0, 'a secret showed in a process argv')
    ca = readFileSync(join(sb.dir, 'tl1.pki', 'ca.crt'), 'utf8')
    assert.equal(sb.onHost('h2', 'cat /etc/ejabberd/imctl-ca.pem'), ca)
    assert.equal(sb.onHost('h1', 'stat -c "%U %a" /etc/postgresql/15/main/imctl-server.key /etc/redis/imctl-server.key').trim(), 'postgres 600\nredis 600')
  })

  it('health is green, each check over verified TLS; a second run changes nothing', async () => {
    const h = await imctl(['health', '-c', c, '--json'])
    assert.equal(h.exitCode, 0, h.stdout)
    const detail = (re: RegExp) => h.json.result.checks.find((x: {check: string}) => re.test(x.check))?.detail ?? ''
    assert.match(detail(/^login as ejabberd/), /over TLS \(certificate verified\)/)
    assert.match(detail(/^AUTH and PING/), /over TLS \(certificate verified\)/)
    assert.match(detail(/^WebSocket login/), /over WSS/)
    const p = await imctl(['plan', '-c', c, '--json'])
    assert.equal(p.exitCode, 0, p.stdout)
    assert.equal(p.json.result.changes, 0, JSON.stringify(p.json.result.steps?.map((s: {what: string}) => s.what)))
  })

  it('every listener shows a certificate of the cluster CA with the right names (openssl s_client from h2)', () => {
    // -verify_return_error ends the handshake on a bad chain or name; whether the server then closes cleanly is not the point.
    const sClient = (args: string) => sb.onHost('h2', `echo | timeout 20 openssl s_client ${args} -CAfile /etc/ejabberd/imctl-ca.pem -verify_return_error -showcerts 2>&1 || true`)
    const sans = (out: string) => execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], {input: /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)![0], encoding: 'utf8'})
    const cases: [string, string, RegExp[]][] = [
      ['PostgreSQL', `-connect ${h1}:5432 -starttls postgres -verify_ip ${h1}`, [/DNS:h1/, new RegExp(`IP Address:${h1}`)]],
      ['Redis', `-connect ${h1}:6379 -verify_ip ${h1}`, [/DNS:h1/, new RegExp(`IP Address:${h1}`)]],
      ['XMPP STARTTLS', `-connect ${h2}:5222 -starttls xmpp -xmpphost ${domain} -verify_hostname ${domain}`, [new RegExp(`DNS:${domain}`), /DNS:h2/]],
      ['XMPP direct TLS', `-connect ${h2}:5223 -verify_hostname ${domain}`, [new RegExp(`DNS:${domain}`)]],
      ['HTTPS/WSS', `-connect ${h2}:5280 -verify_hostname ${domain}`, [new RegExp(`IP Address:${h2}`)]],
      ['MQTT over TLS', `-connect ${h2}:1883 -verify_ip ${h2}`, [new RegExp(`DNS:${domain}`)]],
    ]
    for (const [what, args, names] of cases) {
      const out = sClient(args)
      assert.match(out, /Verify return code: 0 \(ok\)/, `${what}: ${out.slice(-800)}`)
      const san = sans(out)
      for (const n of names) assert.match(san, n, `${what}: ${san}`)
    }
  })

  it('refuses plaintext: psql sslmode=disable, a Node client from h2, redis-cli without TLS, XMPP without STARTTLS', async () => {
    forward = spawn('ssh', ['-N', '-i', join(sb.dir, 'id_ed25519'), '-o', `UserKnownHostsFile=${join(sb.dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'ExitOnForwardFailure=yes', '-L', `127.0.0.1:${PG_LOCAL}:${h1}:5432`, `root@${h2}`], {stdio: 'ignore'})
    for (let i = 0; i < 100 && !(await canConnect('127.0.0.1', PG_LOCAL)); i++) await new Promise((r) => setTimeout(r, 100))
    // psql (PostgreSQL's own client) to the cluster address: pg_hba rejects it before any password.
    const psql = sb.onHost('h1', `PGCONNECT_TIMEOUT=5 psql "host=${h1} user=ejabberd dbname=ejabberd sslmode=disable" -c 'select 1' </dev/null 2>&1 || true`)
    assert.match(psql, /pg_hba\.conf rejects connection .* no encryption/, psql)
    // From h2, a cluster host (through the forward), with the right password: no.
    const plain = new pg.Client({host: '127.0.0.1', port: PG_LOCAL, user: 'ejabberd', password: PASSWORDS.pg, database: 'ejabberd', ssl: false, connectionTimeoutMillis: 10_000})
    await assert.rejects(plain.connect(), /pg_hba\.conf rejects connection .* no encryption/)
    await plain.end().catch(() => {})
    // Redis: no plaintext listener at all; with TLS it answers (and wants the password).
    assert.doesNotMatch(sb.onHost('h1', `timeout 5 redis-cli -h ${h1} -p 6379 PING 2>&1 || true`), /PONG|NOAUTH/)
    assert.match(sb.onHost('h1', `timeout 5 redis-cli --tls --cacert /etc/redis/imctl-ca.crt -h ${h1} -p 6379 PING 2>&1 || true`), /NOAUTH/)
    assert.doesNotMatch(await rawExchange(h1, 6379, 'PING\r\n'), /PONG|NOAUTH/)
    // XMPP on 5222: STARTTLS is required, no SASL mechanism is offered and an auth attempt fails.
    const header = `<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`
    const features = await rawExchange(h2, 5222, header, /<\/stream:features>/)
    assert.match(features, /<starttls xmlns=['"]urn:ietf:params:xml:ns:xmpp-tls['"]><required\/><\/starttls>/, features)
    assert.doesNotMatch(features, /<mechanisms/)
    const auth = await rawExchange(h2, 5222, header + `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0nobody\0wrong').toString('base64')}</auth>`, /<\/stream:stream>|<failure|<success/)
    assert.doesNotMatch(auth, /<success/)
    assert.match(auth, /encryption-required|policy-violation|<failure/, auth)
    // HTTP on the WebSocket port: TLS only.
    assert.doesNotMatch(await rawExchange(h2, 5280, `GET /ws HTTP/1.1\r\nHost: ${domain}\r\n\r\n`), /^HTTP\/1\.1 /)
  })

  /**
   * Runs imctl (a rotation) while PostgreSQL logins, Redis PINGs and XMPP logins over WSS loop,
   * each trusting what `trust()` returns at that moment; every failure is kept.
   */
  async function underClientLoop(args: string[], trust: () => string, env: NodeJS.ProcessEnv = {}) {
    const failures: string[] = []
    const counts = {pg: 0, redis: 0, xmpp: 0}
    let running = true
    const loop = async (name: keyof typeof counts, once: (ca: string) => Promise<void>) => {
      const attempt = () => once(trust()).then(() => void counts[name]++)
      while (running) await attempt().catch((e) => failures.push(`${name}: ${(e as Error).message}`))
      // One more after the rotation, on the new certificates.
      await attempt().catch((e) => failures.push(`${name} after: ${(e as Error).message}`))
    }
    const loops = Promise.all([
      loop('pg', async (ca) => {
        // From h2 (ejabberd's host) the role logs in with its client certificate only, as ejabberd does.
        const db = new pg.Client({host: '127.0.0.1', port: PG_LOCAL, user: 'ejabberd', database: 'ejabberd', connectionTimeoutMillis: 10_000, ssl: {...verifyFor(h1, ca), ...clientCert()}})
        try {
          await db.connect()
          assert.equal((await db.query('SELECT 1 AS one')).rows[0].one, 1)
        } finally {
          await db.end().catch(() => {})
        }
      }),
      loop('redis', async (ca) => {
        const r = new Redis({host: h1, port: 6379, password: PASSWORDS.redis, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 10_000, tls: verifyFor(h1, ca)})
        r.on('error', () => {})
        try {
          await r.connect()
          assert.equal(await r.ping(), 'PONG')
        } finally {
          r.disconnect()
        }
      }),
      loop('xmpp', async (ca) => {
        const untrust = trustWebSocket(`${h2}:5280`, ca, domain)
        const x = xmppClient({service: `wss://${h2}:5280/ws`, domain, username: 'admin', password: PASSWORDS.admin, resource: `rotate-${counts.xmpp}`})
        x.on('error', () => {})
        x.reconnect?.stop()
        try {
          await x.start()
        } finally {
          await x.stop().catch(() => {})
          untrust()
        }
      }),
    ])
    // Let every loop get going on the old certificates first.
    while (Object.values(counts).some((n) => n < 2) && !failures.length) await new Promise((r) => setTimeout(r, 100))
    const t0 = Date.now()
    const rot = await imctl(args, {timeoutMs: 300_000, env})
    const seconds = (Date.now() - t0) / 1000
    running = false
    await loops
    assert.equal(rot.exitCode, 0, rot.stdout + rot.stderr)
    assert.deepEqual(failures, [])
    assert.ok(counts.pg >= 3 && counts.redis >= 3 && counts.xmpp >= 3, JSON.stringify(counts))
    // Reloads, not restarts: nothing in the plan restarted a service.
    const applied: string[] = rot.json.result.passes.flatMap((p: {result: {applied: {what: string}[]}}) => p.result.applied.map((a) => a.what))
    assert.ok(applied.every((w) => !w.startsWith('restart ')), applied.join('\n'))
    console.log(`${args.slice(0, 3).join(' ')} took ${seconds.toFixed(1)} s; clients meanwhile: ${JSON.stringify(counts)}, 0 failures`)
    return {result: rot.json.result, applied}
  }

  const servedSerials = async () => ({pg: await pgSerial('127.0.0.1', PG_LOCAL, h1), redis: await tlsSerial(h1, 6379, h1), xmpp: await tlsSerial(h2, 5223, domain)})

  it('cert rotate: a client loop over TLS sees no failure, and every listener serves a new serial', async () => {
    const before = await servedSerials()
    const {result, applied} = await underClientLoop(['cert', 'rotate', '-c', c, '--json'], () => ca)
    for (const cert of result.certificates) assert.notEqual(cert.before, cert.after, `${cert.component} on ${cert.host}`)
    const after = await servedSerials()
    for (const k of ['pg', 'redis', 'xmpp'] as const) assert.notEqual(after[k], before[k], `${k} still serves serial ${before[k]}`)
    const served = Object.fromEntries(result.certificates.map((x: {component: string; after: string}) => [x.component, x.after.toUpperCase()]))
    assert.deepEqual(after, {pg: served.postgresql, redis: served.redis, xmpp: served.ejabberd})
    assert.ok(applied.includes('reload postgresql@15-main') && applied.includes('reload redis-server') && applied.includes('reload ejabberd'), applied.join('\n'))
    const p = await imctl(['plan', '-c', c, '--json'])
    assert.equal(p.json.result.changes, 0)
  })

  it('cert rotate --ca, then --finish-ca: clients that take the new CA see no failure, and the hosts end up trusting it alone', async () => {
    const pkiDir = join(sb.dir, 'tl1.pki')
    let trusted = ca
    // A client that refreshes its trust store from what imctl publishes (the current CA, and the previous one during the overlap).
    const published = () => {
      try {
        trusted = readFileSync(join(pkiDir, 'ca.crt'), 'utf8') + (existsSync(join(pkiDir, 'ca.previous.crt')) ? readFileSync(join(pkiDir, 'ca.previous.crt'), 'utf8') : '')
      } catch {
        // ca.crt is being replaced this very moment: keep the last one read.
      }
      return trusted
    }
    // Without the 130 s wait for Erlang's PEM cache between the passes: ejabberd opens no new database
    // connection meanwhile here, and the test stays short (the wait is in the product, not proven here).
    const overlap = await underClientLoop(['cert', 'rotate', '--ca', '-c', c, '--json'], published, {IMCTL_CERT_CA_OVERLAP_SECONDS: '0'})
    assert.equal(overlap.result.passes.length, 2)
    const newCa = readFileSync(join(pkiDir, 'ca.crt'), 'utf8')
    assert.notEqual(newCa, ca)
    assert.equal(sb.onHost('h2', 'cat /etc/ejabberd/imctl-ca.pem'), newCa + ca)
    const issuer = new X509Certificate(newCa)
    const served = sb.onHost('h2', `echo | openssl s_client -connect ${h1}:5432 -starttls postgres 2>/dev/null | openssl x509`)
    assert.ok(new X509Certificate(served).checkIssued(issuer), 'PostgreSQL does not serve a certificate of the new CA')
    await underClientLoop(['cert', 'rotate', '--finish-ca', '-c', c, '--json'], () => newCa)
    assert.equal(sb.onHost('h2', 'cat /etc/ejabberd/imctl-ca.pem'), newCa)
    assert.equal(sb.onHost('h2', 'cat /etc/imctl/redis-tunnel-ca.pem'), newCa)
    const p = await imctl(['plan', '-c', c, '--json'])
    assert.equal(p.json.result.changes, 0)
    ca = newCa
  })

  it('the canary never showed in imctl output nor in any log on the hosts', () => canaryNowhere())

  it('ejabberd connects again to PostgreSQL and Redis trusting the new CA alone', async () => {
    // ejabberd's database and Redis connections are cut: it must connect again, verifying with the new CA alone.
    sb.onHost('h1', `runuser -u postgres -- psql -Atc "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'ejabberd'"`)
    sb.onHost('h1', `REDISCLI_AUTH=$(awk '/^requirepass/ {print $2}' /etc/redis/redis.conf) redis-cli --no-auth-warning --tls --cacert /etc/redis/imctl-ca.crt -h 127.0.0.1 CLIENT KILL TYPE normal`)
    // It reconnects on its own schedule (its Redis client backs off): health is asked again, for up to about 2 minutes.
    let h = await imctl(['health', '-c', c, '--json'])
    for (let i = 0; i < 5 && h.exitCode !== 0; i++) {
      await new Promise((r) => setTimeout(r, 5000))
      h = await imctl(['health', '-c', c, '--json'])
    }
    assert.equal(h.exitCode, 0, h.stdout)
    assert.ok(Number(sb.onHost('h1', `runuser -u postgres -- psql -Atc "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE usename = 'ejabberd' AND ssl"`).trim()) > 0, 'ejabberd did not reconnect over TLS')
  })

  it('ejabberd logs in with its client certificate; a password from its host is not enough', async () => {
    assert.doesNotMatch(sb.onHost('h2', 'cat /etc/ejabberd/ejabberd.yml'), /sql_password/)
    assert.equal(sb.onHost('h2', 'stat -c "%U %a" /etc/ejabberd/imctl-sql-client.pem').trim(), 'ejabberd 600')
    const withPassword = new pg.Client({host: '127.0.0.1', port: PG_LOCAL, user: 'ejabberd', password: PASSWORDS.pg, database: 'ejabberd', connectionTimeoutMillis: 10_000, ssl: verifyFor(h1)})
    await assert.rejects(withPassword.connect(), /certificate/)
    await withPassword.end().catch(() => {})
  })

  it('the canary is in no log after PostgreSQL restarted under ejabberd (its driver prints its connection options then)', async () => {
    const since = sb.onHost('h2', 'date -u "+%Y-%m-%d %H:%M:%S"').trim()
    sb.onHost('h1', 'systemctl restart postgresql@15-main')
    // ejabberd reconnects by itself (sql_start_interval: 3), with its client certificate.
    const ejabberdSessions = () => sb.onHost('h1', `runuser -u postgres -- psql -Atc "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE usename = 'ejabberd' AND ssl AND client_dn = '/O=imctl/CN=ejabberd'" 2>/dev/null || echo 0`).trim()
    for (let i = 0; i < 60 && !(Number(ejabberdSessions()) > 0); i++) await new Promise((r) => setTimeout(r, 1000))
    assert.ok(Number(ejabberdSessions()) > 0, 'ejabberd did not reconnect with its client certificate')
    // The certificate it shows is the one issued last (by the CA rotation's second pass), not one cached from before.
    const serials = sb.onHost('h1', `runuser -u postgres -- psql -Atc "SELECT DISTINCT client_serial FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE usename = 'ejabberd'"`).trim()
    assert.equal(serials, BigInt(`0x${new X509Certificate(clientCert().cert).serialNumber}`).toString())
    const h = await imctl(['health', '-c', c, '--json'])
    assert.equal(h.exitCode, 0, h.stdout)
    // The restart did make the driver report its options (else this test proves nothing): without a password in them.
    const report = sb.onHost('h2', `{ journalctl --no-pager -o cat --since '${since}'; cat /var/log/ejabberd/*.log; } | grep -F '{password,' | head -3 || true`)
    assert.match(report, /\{password,<<>>\}/, `no crash report of the PostgreSQL driver since ${since}`)
    canaryNowhere()
  })

  function canaryNowhere(): void {
    assert.ok(transcript.length > 0)
    for (const out of transcript) assert.ok(!out.includes(CANARY), 'imctl printed a secret')
    for (const h of sb.hosts) {
      // Where it shows, with the canary masked: which log, and what wrote it.
      const found = sb.onHost(h.name, `{ journalctl --no-pager -o short; grep -H '' /var/log/ejabberd/*.log /var/log/postgresql/*.log /var/log/redis/*.log /var/log/imctl/audit.log 2>/dev/null; } | grep -F '${CANARY}' | sed 's/${CANARY}/<canary>/g' | cut -c1-300 | head -20 || true`).trim()
      assert.equal(found, '', `${h.name}: the canary is in its logs:\n${found}`)
    }
  }

  /** ejabberd's client certificate and key as imctl keeps them now (read again until the two match: a rotation replaces them one by one). */
  function clientCert(): {cert: string; key: string} {
    const dir = join(sb.dir, 'tl1.pki')
    for (let i = 0; ; i++) {
      const cert = readFileSync(join(dir, 'client-ejabberd.crt'), 'utf8')
      const key = readFileSync(join(dir, 'client-ejabberd.key'), 'utf8')
      if (new X509Certificate(cert).checkPrivateKey(createPrivateKey(key)) || i > 50) return {cert, key}
    }
  }

  /** TLS options that verify the cluster CA (or `trust`) and the given name (an address or the domain). */
  function verifyFor(name: string, trust = ca): tls.ConnectionOptions {
    return {ca: trust, checkServerIdentity: (_h: string, cert: PeerCertificate) => tls.checkServerIdentity(name, cert)}
  }

  function tlsSerial(host: string, port: number, name: string): Promise<string> {
    return new Promise((res, rej) => {
      const s = tls.connect({host, port, ...verifyFor(name), servername: net.isIP(name) ? undefined : name}, () => {
        res(s.getPeerCertificate().serialNumber)
        s.end()
      })
      s.on('error', rej)
    })
  }

  /** PostgreSQL's SSLRequest, then the TLS handshake on the same socket (the certificate checked for `name`). */
  function pgSerial(host: string, port: number, name: string): Promise<string> {
    return new Promise((res, rej) => {
      const sock = net.connect(port, host, () => sock.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])))
      sock.once('data', (b) => {
        if (b.toString() !== 'S') return rej(new Error(`PostgreSQL answered ${JSON.stringify(b.toString())} to SSLRequest`))
        const s = tls.connect({socket: sock, ...verifyFor(name)}, () => {
          res(s.getPeerCertificate().serialNumber)
          s.destroy()
        })
        s.on('error', rej)
      })
      sock.on('error', rej)
    })
  }
})

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = net.connect(port, host, () => (s.destroy(), res(true)))
    s.on('error', () => res(false))
  })
}

/** Writes `send` in plaintext and returns what came back until `until` matched, the peer closed, or 5 s passed. */
function rawExchange(host: string, port: number, send: string, until?: RegExp): Promise<string> {
  return new Promise((res) => {
    let got = ''
    const s = net.connect(port, host, () => s.write(send))
    const done = () => {
      clearTimeout(timer)
      s.destroy()
      res(got)
    }
    const timer = setTimeout(done, 5000)
    s.on('data', (b) => {
      got += b.toString('latin1')
      if (until?.test(got)) done()
    })
    s.on('close', done)
    s.on('error', done)
  })
}
