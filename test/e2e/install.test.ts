/**
 * The first vertical slice on real hosts: three sandbox servers (systemd + sshd),
 * one reached as root with ssh-agent, one as a sudo user, one through a jump host.
 * install (killed with SIGKILL half-way) → re-run converges → health delivers a
 * message → a third run changes nothing. Plus the lock, the audit log, host-key
 * pinning, and that no secret ever shows in any output.
 */
import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createSandbox, editConfig, imctl, startAgent, transcript, type Sandbox} from './harness.js'

describe('install a 3-host ejabberd cluster over SSH', {timeout: 1_500_000}, () => {
  let sb: Sandbox
  let agent: {sock: string; stop(): void}
  let env: NodeJS.ProcessEnv
  let c: string

  before(async () => {
    sb = await createSandbox('e2e-ssh', 3)
    c = sb.config
    agent = startAgent(join(sb.dir, 'id_ed25519'))
    env = {SSH_AUTH_SOCK: agent.sock}
    const [h1, h2, h3] = sb.hosts
    // Given: h1 through ssh-agent as root, h2 as a non-root sudo user, h3 only through h1 as jump host.
    editConfig(c, (t) =>
      t
        .replace(`address: ${h1!.address}\n    auth: { key: ./id_ed25519 }`, `address: ${h1!.address}\n    auth: { agent: true }`)
        .replace(`address: ${h2!.address}\n    auth: { key: ./id_ed25519 }`, `address: ${h2!.address}\n    user: imctl\n    sudo: true\n    auth: { key: ./id_ed25519 }`)
        .replace(`address: ${h3!.address}\n    auth: { key: ./id_ed25519 }`, `address: ${h3!.address}\n    auth: { key: ./id_ed25519 }\n    jump: { address: ${h1!.address} }`),
    )
    const text = readFileSync(c, 'utf8')
    assert.match(text, /agent: true/)
    assert.match(text, /user: imctl/)
    assert.match(text, /jump:/)
  })

  after(async () => {
    agent?.stop()
    await sb?.destroy()
  })

  it('validates the config without contacting hosts', async () => {
    const r = await imctl(['validate', '-c', c, '--json'], {env})
    assert.equal(r.exitCode, 0, r.stdout)
    assert.equal(r.json.result.hosts, 3)
  })

  it('plan lists every step and changes nothing', async () => {
    const r = await imctl(['plan', '-c', c, '--json'], {env})
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const whats = r.json.result.steps.map((s: {host: string; what: string}) => `${s.host}: ${s.what}`)
    assert.ok(whats.includes('h1: install postgresql-15 postgresql-client-15'), whats.join('\n'))
    assert.ok(whats.includes('h2: install redis-server'))
    assert.ok(whats.includes('h3: install ejabberd erlang-p1-pgsql erlang-redis-client'))
    assert.ok(whats.includes('h3: load /usr/share/ejabberd/sql/pg.new.sql into database ejabberd on h1'))
    // Nothing was installed by planning.
    assert.equal(sb.onHost('h1', 'test -e /usr/lib/postgresql && echo present || echo absent').trim(), 'absent')
  })

  it('a SIGKILL half-way leaves a state that the next run repairs', async () => {
    // When: imctl is SIGKILLed right after writing redis.conf, before restarting Redis,
    // while the other hosts are still installing packages.
    const cut = await imctl(['install', '-c', c], {env: {...env, IMCTL_TEST_KILL_AFTER_STEP: 'h2:file:/etc/redis/redis.conf'}})
    assert.equal(cut.exitCode, null, `install was not killed:\n${cut.stdout}\n${cut.stderr}`)
    assert.match(cut.stdout + cut.stderr, /write \/etc\/redis\/redis\.conf/)

    // Then: the lock of the dead run is visible and recognised as stale ...
    const status = await imctl(['lock', 'status', '-c', c, '--json'], {env})
    assert.equal(status.exitCode, 0, status.stdout)
    assert.ok(status.json.result.hosts.some((h: {lock: unknown; staleHere: boolean}) => h.lock && h.staleHere), JSON.stringify(status.json.result))

    // ... the plan remembers the restart that the dead run owed Redis ...
    const plan = await imctl(['plan', '-c', c, '--json'], {env})
    const redisRestart = plan.json.result.steps.find((s: {what: string}) => s.what === 'restart redis-server')
    assert.ok(redisRestart, JSON.stringify(plan.json.result.steps.map((s: {what: string}) => s.what)))
    assert.match(redisRestart.why, /interrupted run/)

    // ... and a re-run takes over the stale lock and converges.
    const r = await imctl(['install', '-c', c, '--json'], {env})
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.failed, 0)
    assert.ok(r.json.warnings.some((w: string) => /stale lock/.test(w)), JSON.stringify(r.json.warnings))
  })

  it('health passes: database login, Redis PING, a message delivered over WebSocket', async () => {
    const r = await imctl(['health', '-c', c, '--json'], {env})
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    const checks = r.json.result.checks as {component: string; check: string; ok: boolean; detail: string}[]
    assert.equal(r.json.result.healthy, true)
    assert.ok(checks.find((x) => x.component === 'postgresql' && /SELECT 1/.test(x.check))?.ok)
    assert.ok(checks.find((x) => x.component === 'redis' && /PING/.test(x.check))?.ok)
    const msg = checks.find((x) => /message delivery/.test(x.check))
    assert.ok(msg?.ok, JSON.stringify(checks))
    assert.match(msg.detail, /delivered in \d+ ms/)
    // The throwaway users are gone again.
    const users = sb.onHost('h1', `runuser -u postgres -- psql -XAt -d ejabberd -c "SELECT count(*) FROM users WHERE username LIKE 'imctl-health-%'"`)
    assert.equal(users.trim(), '0')
  })

  it('shows a component\'s journal through SSH (as the sudo user on h2)', async () => {
    const r = await imctl(['logs', 'redis', '-c', c, '-n', '20', '--json'], {env})
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.ok(r.json.result.lines.some((l: string) => /redis-server\.service|Redis/.test(l)), JSON.stringify(r.json.result.lines))
    const wrong = await imctl(['logs', 'redis', '-c', c, '--host', 'h1', '--json'], {env})
    assert.equal(wrong.exitCode, 2)
    assert.match(wrong.json.error!.message, /redis does not run on h1 but on h2/)
  })

  it('a second install changes nothing and says so', async () => {
    const r = await imctl(['install', '-c', c, '--json'], {env})
    assert.equal(r.exitCode, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.changes, 0)
    assert.equal(r.json.result.steps.length, 0)
    const human = await imctl(['install', '-c', c], {env})
    assert.match(human.stdout, /0 changes: cluster e2e-ssh is converged/)
  })

  it('is secure by default: bound to cluster addresses, password-protected, plaintext-free', () => {
    const [h1, h2] = sb.hosts
    // PostgreSQL refuses the ejabberd role from an address that is not a cluster host's.
    const hba = sb.onHost('h1', 'cat /etc/postgresql/15/main/pg_hba.conf')
    assert.doesNotMatch(hba, /0\.0\.0\.0\/0|\ball\s+all\s+all\s+(?!127\.0\.0\.1|::1)/)
    assert.match(sb.onHost('h1', 'ss -ltnH'), new RegExp(`${h1!.address.replace(/\./g, '\\.')}:5432`))
    assert.doesNotMatch(sb.onHost('h1', 'ss -ltnH'), /0\.0\.0\.0:5432|\*:5432/)
    // Redis wants the password.
    assert.match(sb.onHost('h2', `redis-cli -h ${h2!.address} PING 2>&1 || true`), /NOAUTH/)
    // Secret files are private on the hosts.
    assert.equal(sb.onHost('h2', 'stat -c "%U:%G %a" /etc/redis/redis.conf').trim(), 'redis:redis 640')
    assert.equal(sb.onHost('h3', 'stat -c "%U:%G %a" /etc/ejabberd/ejabberd.yml').trim(), 'ejabberd:ejabberd 600')
    // The admin API answers on loopback only.
    assert.match(sb.onHost('h3', 'ss -ltnH'), /127\.0\.0\.1:5281/)
  })

  it('keeps one audit line per touched host per run, without secrets', () => {
    for (const h of ['h1', 'h2', 'h3']) {
      const lines = sb.onHost(h, 'cat /var/log/imctl/audit.log').trim().split('\n').map((l) => JSON.parse(l))
      // The killed run could not write its line; the repairing run did. Converged runs touch nothing.
      assert.equal(lines.length, 1, `${h}: ${JSON.stringify(lines)}`)
      assert.equal(lines[0].command, 'imctl install')
      assert.equal(lines[0].result, 'ok')
      assert.ok(lines[0].changed > 0)
      const text = JSON.stringify(lines)
      for (const s of sb.secrets) assert.ok(!text.includes(s), `${h}: a secret is in the audit log`)
    }
  })

  it('a lock held by another run stops install; lock release --force frees it', async () => {
    sb.onHost('h2', `mkdir -p /var/lib/imctl/lock && echo '{"id":"x","who":"alice","machine":"elsewhere","pid":1,"since":"2026-01-01T00:00:00Z","command":"imctl install"}' > /var/lib/imctl/lock/info`)
    const r = await imctl(['install', '-c', c, '--json'], {env})
    assert.equal(r.exitCode, 3)
    assert.match(r.json.error!.message, /locked on h2 by alice@elsewhere/)
    // The lock was all-or-nothing: h1 (taken before h2 in name order) was released again.
    assert.equal(sb.onHost('h1', 'test -e /var/lib/imctl/lock && echo held || echo free').trim(), 'free')
    const keep = await imctl(['lock', 'release', '-c', c, '--json'], {env})
    assert.equal(keep.exitCode, 3, 'a live foreign lock is kept without --force')
    const rel = await imctl(['lock', 'release', '-c', c, '--force', '--json'], {env})
    assert.equal(rel.exitCode, 0)
    assert.deepEqual(rel.json.result.released, ['h2'])
    assert.equal((await imctl(['install', '-c', c, '--json'], {env})).exitCode, 0)
  })

  it('health names the broken component; install repairs it', async () => {
    // Given: Redis stopped behind imctl's back.
    sb.onHost('h2', 'systemctl stop redis-server')
    const sick = await imctl(['health', '-c', c, '--json'], {env})
    assert.equal(sick.exitCode, 1)
    assert.equal(sick.json.result.healthy, false)
    const failed = (sick.json.result.checks as {host: string; component: string; ok: boolean; detail: string}[]).filter((x) => !x.ok)
    assert.ok(failed.some((x) => x.host === 'h2' && x.component === 'redis' && /redis-server is (inactive|failed)/.test(x.detail)), JSON.stringify(failed))
    // When: install runs, its plan is exactly one start; then health is green again.
    const fix = await imctl(['install', '-c', c, '--json'], {env})
    assert.equal(fix.exitCode, 0, fix.stdout)
    assert.deepEqual(fix.json.result.steps.map((x: {host: string; what: string; why: string}) => `${x.host}: ${x.what} (${x.why})`), ['h2: start redis-server (not running)'])
    const well = await imctl(['health', '-c', c, '--json'], {env})
    assert.equal(well.exitCode, 0, well.stdout)
  })

  it('refuses a changed host key and an unknown one', async () => {
    const known = join(sb.dir, 'known_hosts')
    const original = readFileSync(known, 'utf8')
    try {
      // A different key pinned for h2 → hard failure naming both keys.
      const other = sb.onHost('h1', 'cat /etc/ssh/ssh_host_ed25519_key.pub').trim().split(/\s+/)
      const h2 = sb.hosts[1]!.address
      writeFileSync(known, original.replace(new RegExp(`^${h2.replace(/\./g, '\\.')} .*$`, 'm'), `${h2} ${other[0]} ${other[1]}`))
      const changed = await imctl(['plan', '-c', c, '--json'], {env})
      assert.equal(changed.exitCode, 2)
      assert.match(changed.json.error!.message, /host key of .* CHANGED/)
      // No pin at all → refused in CI mode, with the fingerprint to compare.
      writeFileSync(known, original.replace(new RegExp(`^${h2.replace(/\./g, '\\.')} .*\\n`, 'm'), ''))
      const unknown = await imctl(['plan', '-c', c, '--json'], {env})
      assert.equal(unknown.exitCode, 2)
      assert.match(unknown.json.error!.message, /is not a known host \(its key is ssh-ed25519 SHA256:/)
      // --accept-new-host-keys pins it and goes on.
      const accepted = await imctl(['plan', '-c', c, '--json', '--accept-new-host-keys'], {env})
      assert.equal(accepted.exitCode, 0, accepted.stdout)
      assert.match(readFileSync(known, 'utf8'), new RegExp(`^${h2.replace(/\./g, '\\.')} ssh-ed25519 `, 'm'))
    } finally {
      writeFileSync(known, original)
    }
  })

  it('never prints a secret, and cluster.yaml holds none', () => {
    const all = transcript.join('\n') + readFileSync(c, 'utf8')
    for (const s of sb.secrets) assert.ok(!all.includes(s), 'a secret value appeared in imctl output or cluster.yaml')
  })
})
