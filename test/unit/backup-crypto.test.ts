import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync, statSync, writeFileSync, chmodSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createWriteStream} from 'node:fs'
import {describe, it} from 'node:test'
import {ArtifactCheck, checkDecrypts, decryptArtifact, decryptor, encryptor, fileDigest, HashTap, loadBackupKey, MAGIC, sealManifest} from '../../src/ops/backup/crypto.js'
import {UserError} from '../../src/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'imctl-crypto-'))

async function encryptTo(file: string, plain: Buffer, key: Buffer): Promise<HashTap> {
  const tap = new HashTap()
  await pipeline(Readable.from([plain.subarray(0, 7), plain.subarray(7)]), encryptor(key), tap, createWriteStream(file))
  return tap
}

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of s) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

describe('backup encryption', () => {
  const key = Buffer.alloc(32, 7)
  const plain = Buffer.from('row 1\nrow 2\n'.repeat(1000))

  it('round-trips through AES-256-GCM with the header and tag in place, and the tap sees the written bytes', async () => {
    // Given a plaintext encrypted in two chunks
    const file = join(dir, 'a.enc')
    const tap = await encryptTo(file, plain, key)
    // Then the file is MAGIC + 12-byte IV + ciphertext + 16-byte tag, hashed as written
    const bytes = readFileSync(file)
    assert.equal(bytes.length, MAGIC.length + 12 + plain.length + 16)
    assert.ok(bytes.subarray(0, MAGIC.length).equals(MAGIC))
    assert.equal(tap.size, bytes.length)
    assert.deepEqual(await fileDigest(file), {sha256: tap.hash.digest('hex'), size: bytes.length})
    // And it decrypts back to the plaintext
    assert.equal(await checkDecrypts(file, key), plain.length)
    assert.ok((await readAll(decryptArtifact(file, key))).equals(plain))
  })

  it('encrypts an empty input to a header and a tag that still check out', async () => {
    const file = join(dir, 'empty.enc')
    await encryptTo(file, Buffer.alloc(0), key)
    assert.equal(statSync(file).size, MAGIC.length + 12 + 16)
    assert.equal(await checkDecrypts(file, key), 0)
  })

  it('refuses a flipped byte anywhere and a wrong key', async () => {
    const file = join(dir, 'b.enc')
    await encryptTo(file, plain, key)
    const good = readFileSync(file)
    for (const at of [3, MAGIC.length + 2, Math.floor(good.length / 2), good.length - 1]) {
      const bad = Buffer.from(good)
      bad[at] = bad[at]! ^ 1
      writeFileSync(file, bad)
      await assert.rejects(checkDecrypts(file, key), `byte ${at}`)
    }
    writeFileSync(file, good)
    await assert.rejects(checkDecrypts(file, Buffer.alloc(32, 8)))
    await assert.rejects(checkDecrypts(join(dir, 'empty.enc'), Buffer.alloc(32, 8)))
  })

  it('decrypts front to back as a stream, in chunks of any size, and checks the tag at the end', async () => {
    // Given an artifact read in 5-byte chunks (header and tag split across chunks)
    const file = join(dir, 'c.enc')
    await encryptTo(file, plain, key)
    const bytes = readFileSync(file)
    const chunks = Array.from({length: Math.ceil(bytes.length / 5)}, (_, i) => bytes.subarray(i * 5, i * 5 + 5))
    // Then the stream gives the plaintext back
    assert.ok((await readAll(Readable.from(chunks).pipe(decryptor(key)))).equals(plain))
    // And a flipped byte, a wrong key or a cut artifact fail it
    const bad = Buffer.from(bytes)
    bad[bad.length >> 1] = bad[bad.length >> 1]! ^ 1
    await assert.rejects(readAll(Readable.from([bad]).pipe(decryptor(key))), /authentication tag/)
    await assert.rejects(readAll(Readable.from([bytes]).pipe(decryptor(Buffer.alloc(32, 8)))), /authentication tag/)
    await assert.rejects(readAll(Readable.from([bytes.subarray(0, 30)]).pipe(decryptor(key))), /too short|authentication tag/)
    await assert.rejects(readAll(Readable.from([Buffer.from('not an artifact at all, no')]).pipe(decryptor(key))), /bad header/)
  })

  it('checks an artifact in one pass: sha256 and size of every byte, and whether it decrypts', async () => {
    const file = join(dir, 'd.enc')
    const tap = await encryptTo(file, plain, key)
    const good = new ArtifactCheck(key)
    await pipeline(Readable.from([readFileSync(file)]), good)
    assert.deepEqual({sha256: good.sha256, size: good.size, plain: good.plainBytes, error: good.decryptError}, {sha256: tap.hash.digest('hex'), size: statSync(file).size, plain: plain.length, error: undefined})
    // A damaged header still gets every byte hashed, and the failure recorded rather than thrown
    const bad = readFileSync(file)
    bad[0] = bad[0]! ^ 1
    const check = new ArtifactCheck(key)
    await pipeline(Readable.from([bad]), check)
    assert.equal(check.size, bad.length)
    assert.match(check.decryptError ?? '', /bad header/)
  })

  it('seals a manifest: any change to it changes the seal, and so does another key', () => {
    const body = {id: 'x', artifacts: [{name: 'a', sha256: 'f'.repeat(64)}]}
    const seal = sealManifest(body, key)
    assert.match(seal, /^[0-9a-f]{64}$/)
    assert.equal(sealManifest(structuredClone(body), key), seal)
    assert.notEqual(sealManifest({...body, id: 'y'}, key), seal)
    assert.notEqual(sealManifest(body, Buffer.alloc(32, 8)), seal)
  })
})

describe('backup key file', () => {
  it('is created once with mode 0600, then read back the same; a missing key is an error when not creating', () => {
    const file = join(dir, 'keys', 'k')
    assert.throws(() => loadBackupKey(file, false), (e: Error) => e instanceof UserError && /does not exist/.test(e.message))
    const made = loadBackupKey(file, true)
    assert.equal(made.created, true)
    assert.equal(statSync(file).mode & 0o777, 0o600)
    assert.equal(made.key.length, 32)
    const again = loadBackupKey(file, true)
    assert.equal(again.created, false)
    assert.ok(again.key.equals(made.key))
    assert.equal(again.fingerprint, made.fingerprint)
    assert.match(made.fingerprint, /^[0-9a-f]{16}$/)
  })

  it('refuses a key others can read, and one that is not 64 hex characters', () => {
    const open = join(dir, 'open-key')
    writeFileSync(open, 'ab'.repeat(32) + '\n', {mode: 0o644})
    chmodSync(open, 0o644)
    assert.throws(() => loadBackupKey(open, false), /readable by others/)
    const short = join(dir, 'short-key')
    writeFileSync(short, 'abcd\n', {mode: 0o600})
    assert.throws(() => loadBackupKey(short, false), /not 64 hex characters/)
  })
})
