import {chmodSync, mkdirSync, writeFileSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'
import {loadClusterConfig} from '../config/load.js'
import {loadManifest} from '../config/manifest.js'
import {secretSections} from '../config/model.js'
import {existsSync} from 'node:fs'
import {placeholderSecrets, loadSecrets, redact, secretValues} from '../config/secrets.js'
import {desiredState} from '../plan/desired.js'
import {ensurePki, placeholderPki} from '../pki/pki.js'

export interface RenderedFile {
  host: string
  path: string
  written: string
  owner: string
  group: string
  mode: string
  bytes: number
  secret: boolean
}

export interface RenderResult {
  out: string
  release: string
  packages: Record<string, string[]>
  files: RenderedFile[]
}

/** `imctl config render`: every file install would write, per host, under OUT/<host>/<path>. */
export function renderService(opts: {configFile: string; out: string; withSecrets: boolean}): RenderResult {
  const config = loadClusterConfig(opts.configFile)
  const manifest = loadManifest(config.release)
  // Rendering works before secrets exist; placeholders stand in for them.
  const secrets = existsSync(config.secretsFile) ? loadSecrets(config.secretsFile, secretSections(config)) : placeholderSecrets()
  if (config.tls) secrets.tls = existsSync(config.secretsFile) ? ensurePki(config) : placeholderPki(config)
  const values = secretValues(secrets)
  const out = resolve(opts.out)
  const files: RenderedFile[] = []
  const packages: Record<string, string[]> = {}
  for (const r of desiredState(config, manifest, secrets)) {
    if (r.kind === 'packages') packages[r.host] = r.packages.map((p) => `${p.name} (${p.version})`)
    if (r.kind !== 'file') continue
    const target = join(out, r.host, r.path)
    mkdirSync(dirname(target), {recursive: true})
    const text = opts.withSecrets ? r.content : redact(r.content, values)
    writeFileSync(target, text, {mode: r.secret ? 0o600 : 0o644})
    if (r.secret) chmodSync(target, 0o600)
    files.push({host: r.host, path: r.path, written: target, owner: r.owner, group: r.group, mode: r.mode, bytes: Buffer.byteLength(text), secret: r.secret})
  }
  return {out, release: config.release, packages, files}
}
