import {createHash, createHmac, pbkdf2Sync} from 'node:crypto'

/**
 * PostgreSQL's SCRAM-SHA-256 verifier (RFC 5802/7677), computed here so the
 * plain password never reaches the server. The salt is derived from the
 * password and role, so the same password always gives the same verifier and a
 * converged role can be recognised by comparing pg_authid.rolpassword.
 */
export function scramSha256Verifier(password: string, role: string, iterations = 4096): string {
  const salt = createHmac('sha256', password).update(`imctl pg salt:${role}`).digest().subarray(0, 16)
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}
