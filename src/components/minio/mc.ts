import type {MinioFacts} from '../../plan/facts.js'
import type {McClient} from '../../plan/resources.js'
import {shScript, type RemoteCommand} from '../../transport/command.js'

/**
 * MinIO's admin side (buckets, users, policies) through its own `mc` client on the
 * first MinIO host, as data. The root credentials stay in mc's alias config there
 * (0600); a user's secret key travels on stdin only, never in argv.
 */

/** Longest wait for write quorum: every node starts on its own lane, some behind other components' steps. */
export const WRITABLE_TIMEOUT_S = 300

/** Runs `mc --config-dir DIR ARGS...` in a POSIX shell script (`$bin`, `$cfg` are its first two arguments). */
function mcScript(mc: McClient, script: string, args: string[]): string[] {
  return shScript(`bin="$1"; cfg="$2"; shift 2; mc() { "$bin" --config-dir "$cfg" "$@"; }; ${script}`, [mc.bin, mc.configDir, ...args])
}

/** Waits (bounded) until the cluster has write quorum: all nodes start in parallel, so the first may wait for the others. */
export function waitWritable(mc: McClient, seconds = WRITABLE_TIMEOUT_S): RemoteCommand {
  return {
    argv: mcScript(
      mc,
      'timeout "$2" "$bin" --config-dir "$cfg" ready --json "$1" >/dev/null && exit 0; ' +
        'echo "the MinIO cluster has no write quorum after $2 s: see journalctl -u imctl-minio on every MinIO host" >&2; exit 1',
      [mc.alias, String(seconds)],
    ),
    root: true,
    description: `wait until the MinIO cluster accepts writes (at most ${seconds} s)`,
  }
}

/**
 * After a node (re)starts: waits (bounded) until that node answers MinIO's cluster
 * health, i.e. it is up and the cluster has write quorum. mc asks anonymously, with
 * a throwaway config dir, so it works on every MinIO host.
 */
export function waitNodeServes(bin: string, url: string, seconds = WRITABLE_TIMEOUT_S): RemoteCommand {
  return {
    argv: shScript(
      'd=$(mktemp -d) || exit 1; MC_HOST_node="$2" timeout "$3" "$1" --config-dir "$d" ready --json node >/dev/null; rc=$?; rm -rf "$d"; [ "$rc" = 0 ] && exit 0; ' +
        'echo "MinIO at $2 does not serve after $3 s (the node is down, or the cluster has no write quorum): see journalctl -u imctl-minio on every MinIO host" >&2; exit 1',
      [bin, url, String(seconds)],
    ),
    description: `wait until MinIO at ${url} is up and the cluster accepts writes (at most ${seconds} s)`,
  }
}

export function makeBucket(mc: McClient, bucket: string): RemoteCommand {
  return {argv: mcScript(mc, 'mc mb --ignore-existing "$1/$2" >/dev/null', [mc.alias, bucket]), root: true, description: `create bucket ${bucket}`}
}

/** Creates or replaces a policy from the JSON document on stdin. */
export function putPolicy(mc: McClient, policy: string, document: string): RemoteCommand {
  return {argv: mcScript(mc, 'mc admin policy create "$1" "$2" /dev/stdin >/dev/null', [mc.alias, policy]), stdin: document, root: true, description: `create or update policy ${policy}`}
}

/** Creates the user or sets its secret key (and enables it); mc reads the secret key from stdin when argv has none. */
export function putUser(mc: McClient, user: string, secret: string): RemoteCommand {
  // mc prints the secret key back in some output modes: keep its output off the wire.
  return {argv: mcScript(mc, 'mc admin user add "$1" "$2" >/dev/null', [mc.alias, user]), stdin: `${secret}\n`, root: true, description: `create user ${user} or set its secret key`}
}

/** Attaches a policy to a user; one already attached is not an error. */
export function attachPolicy(mc: McClient, policy: string, user: string): RemoteCommand {
  return {argv: mcScript(mc, 'mc admin policy attach "$1" "$2" --user "$3" >/dev/null', [mc.alias, policy, user]), root: true, description: `attach policy ${policy} to ${user}`}
}

export function detachPolicy(mc: McClient, policy: string, user: string): RemoteCommand {
  return {argv: mcScript(mc, 'mc admin policy detach "$1" "$2" --user "$3" >/dev/null', [mc.alias, policy, user]), root: true, description: `detach policy ${policy} from ${user}`}
}

/**
 * Read-only: buckets, users with their policies, the named policies' documents, and
 * whether each user's secret key (on stdin, `USER SECRET` per line) signs a request.
 * Sections start with a `#` line; mc prints one JSON object per line (errors too).
 */
export function minioStateQuery(mc: McClient, policies: string[], users: {user: string; secret: string}[]): RemoteCommand {
  return {
    argv: mcScript(
      mc,
      'alias="$1"; url="$2"; shift 2; ' +
        'echo "#buckets"; timeout 30 "$bin" --config-dir "$cfg" ls --json "$alias" || exit 1; ' +
        'echo "#users"; timeout 30 "$bin" --config-dir "$cfg" admin user list --json "$alias" || exit 1; ' +
        'for p; do echo "#policy $p"; timeout 30 "$bin" --config-dir "$cfg" admin policy info "$alias" "$p" --json; done; ' +
        'echo "#keys"; scheme="${url%%://*}"; rest="${url#*://}"; ' +
        // The key goes into this one mc's environment, not its argv; listing buckets needs no particular right.
        'while read -r u s; do if MC_HOST_imctlprobe="$scheme://$u:$s@$rest" timeout 30 "$bin" --config-dir "$cfg" ls imctlprobe >/dev/null 2>&1; ' +
        'then echo "$u ok"; else echo "$u bad"; fi; done',
      [mc.alias, mc.url, ...policies],
    ),
    stdin: users.map((u) => `${u.user} ${u.secret}\n`).join(''),
    root: true,
    description: `read MinIO's buckets, users and policies ${policies.join(', ')}`,
  }
}

export function parseMinioState(stdout: string): MinioFacts {
  const facts: MinioFacts = {buckets: [], users: {}, policies: {}}
  const keys: Record<string, boolean> = {}
  let section = ''
  for (const line of stdout.split('\n')) {
    if (line.startsWith('#')) {
      section = line.slice(1)
      continue
    }
    if (!line.trim()) continue
    if (section === 'keys') {
      const [user, verdict] = line.trim().split(' ')
      if (user) keys[user] = verdict === 'ok'
      continue
    }
    let doc: Record<string, unknown>
    try {
      doc = JSON.parse(line) as Record<string, unknown>
    } catch {
      throw new Error(`mc printed a line that is not JSON in section ${section}: ${line.slice(0, 200)}`)
    }
    if (doc.status !== 'success') continue
    if (section === 'buckets' && typeof doc.key === 'string') facts.buckets.push(doc.key.replace(/\/$/, ''))
    else if (section === 'users' && typeof doc.accessKey === 'string') {
      facts.users[doc.accessKey] = {
        policies: typeof doc.policyName === 'string' ? doc.policyName.split(',').filter(Boolean).sort() : [],
        enabled: doc.userStatus === 'enabled',
        secretWorks: false,
      }
    } else if (section.startsWith('policy ')) {
      const policy = (doc.policyInfo as {Policy?: unknown} | undefined)?.Policy
      if (policy) facts.policies[section.slice('policy '.length)] = canonicalPolicy(policy)
    }
  }
  for (const [user, ok] of Object.entries(keys)) if (facts.users[user]) facts.users[user].secretWorks = ok
  facts.buckets.sort()
  return facts
}

/** A policy document in one canonical form: keys sorted, string lists sorted (MinIO sorts actions when it stores them). */
export function canonicalPolicy(doc: unknown): string {
  const norm = (v: unknown): unknown => {
    if (Array.isArray(v)) {
      const items = v.map(norm)
      return items.every((x) => typeof x === 'string') ? [...(items as string[])].sort() : items
    }
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, norm((v as Record<string, unknown>)[k])]),
      )
    }
    return v
  }
  return JSON.stringify(norm(typeof doc === 'string' ? JSON.parse(doc) : doc))
}

/** Read, write, list and delete in one bucket, nothing else (not even listing the other buckets' contents). */
export function bucketPolicy(bucket: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {Effect: 'Allow', Action: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'], Resource: [`arn:aws:s3:::${bucket}`]},
      {
        Effect: 'Allow',
        Action: ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:PutObject'],
        Resource: [`arn:aws:s3:::${bucket}/*`],
      },
    ],
  })
}
