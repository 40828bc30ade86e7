import {createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type Docker from 'dockerode'
import {execa} from 'execa'
import * as tar from 'tar-stream'
import {artifactSums, type ImageArtifact} from '../plan/resources.js'

/** Debian 12 made with debootstrap from a Debian mirror: no registry needed, on any engine. */
export const BASE_IMAGE = {repo: 'localhost/imctl-sbx-base', tag: 'bookworm'}
export const baseImageRef = `${BASE_IMAGE.repo}:${BASE_IMAGE.tag}`

export async function imageExists(docker: Docker, ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect()
    return true
  } catch {
    return false
  }
}

/** Waits for a build/import progress stream; rejects on the engine's error. */
export function followProgress(docker: Docker, stream: NodeJS.ReadableStream): Promise<{stream?: string; status?: string; error?: string}[]> {
  return new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, res: {error?: string}[]) => {
      if (err) return reject(err)
      const failed = res.find((r) => r.error)
      if (failed) return reject(new Error(failed.error))
      resolve(res)
    }),
  )
}

/** Builds the base image on this machine with debootstrap and imports it into the engine, once. */
export async function ensureBaseImage(docker: Docker, opts: {mirror?: string; notify?: (m: string) => void} = {}): Promise<string> {
  if (await imageExists(docker, baseImageRef)) return baseImageRef
  const mirror = opts.mirror ?? aptMirror()
  opts.notify?.(`building the Debian 12 base image from ${mirror} with debootstrap (about half a minute)`)
  const rootfs = mkdtempSync(join(tmpdir(), 'imctl-rootfs-'))
  try {
    await execa('debootstrap', ['--variant=minbase', 'bookworm', rootfs, mirror])
    const tar = execa('tar', ['-C', rootfs, '-c', '.'], {buffer: false})
    const imported = await (docker.importImage(tar.stdout as never, {repo: BASE_IMAGE.repo, tag: BASE_IMAGE.tag}) as unknown as Promise<NodeJS.ReadableStream>)
    const progress = await followProgress(docker, imported)
    await tar
    if (!(await imageExists(docker, baseImageRef))) {
      // podman's compat API ignores the tag on import: tag the imported image by its id.
      const id = progress.map((p) => p.status ?? '').find((s) => /^sha256:[0-9a-f]{64}$/.test(s))
      if (!id) throw new Error('the engine did not report the imported image id')
      await docker.getImage(id).tag({repo: BASE_IMAGE.repo, tag: BASE_IMAGE.tag})
    }
  } finally {
    rmSync(rootfs, {recursive: true, force: true})
  }
  return baseImageRef
}

/** A file of a build context from outside its recipe folder: a local file (streamed), or text. */
export interface ExtraContextFile {
  /** Its path in the build context, e.g. `artifacts/kafka/libs/kafka_2.13-4.4.0.jar`. */
  name: string
  source: {file: string} | {content: string}
  /** Octal, e.g. '644'. */
  mode: string
}

/**
 * Builds an image from a directory of templates/ on the engine, FROM the base image; `extra`
 * files (an artifact's, from imctl's cache) join the recipe's in the build context.
 */
export async function buildImage(docker: Docker, contextDir: string, files: string[], tag: string, base: string, extra: ExtraContextFile[] = []): Promise<void> {
  const context = extra.length ? packContext(contextDir, files, extra) : {context: contextDir, src: files}
  const stream = await docker.buildImage(context as Parameters<Docker['buildImage']>[0], {t: tag, dockerfile: 'Containerfile', buildargs: {BASE: base}})
  await followProgress(docker, stream)
}

/** An artifact's files in a build context, under `artifacts/<name>/`, with the SHA256SUMS the recipe checks them against. */
export function artifactContextFiles(artifact: ImageArtifact, localDir: string): ExtraContextFile[] {
  const under = `artifacts/${artifact.name}`
  return [
    ...artifact.files.map((f): ExtraContextFile => ({name: `${under}/${f.path}`, source: {file: join(localDir, f.path)}, mode: f.mode ?? '644'})),
    {name: `${under}/SHA256SUMS`, source: {content: artifactSums(artifact.files)}, mode: '644'},
  ]
}

/** The build context as one tar stream: the recipe's files, then the extra ones, each large file streamed from disk. */
export function packContext(contextDir: string, files: string[], extra: ExtraContextFile[]): NodeJS.ReadableStream {
  const pack = tar.pack()
  const dirs = new Set<string>()
  const parents = (name: string) => {
    const parts = name.split('/').slice(0, -1)
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/')
      if (!dirs.has(d)) {
        dirs.add(d)
        pack.entry({name: d, type: 'directory', mode: 0o755})
      }
    }
  }
  void (async () => {
    for (const f of files) {
      const path = join(contextDir, f)
      pack.entry({name: f, mode: statSync(path).mode & 0o7777}, readFileSync(path))
    }
    for (const e of extra) {
      parents(e.name)
      const mode = parseInt(e.mode, 8)
      if ('content' in e.source) {
        pack.entry({name: e.name, mode}, e.source.content)
        continue
      }
      const file = e.source.file
      await new Promise<void>((resolve, reject) => {
        const entry = pack.entry({name: e.name, mode, size: statSync(file).size}, (err) => (err ? reject(err) : resolve()))
        createReadStream(file).on('error', reject).pipe(entry)
      })
    }
    pack.finalize()
  })().catch((err: Error) => pack.destroy(err))
  return pack as unknown as NodeJS.ReadableStream
}

/** The Debian mirror this machine's apt uses (deb822 or one-line sources). */
export function aptMirror(): string {
  for (const f of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    if (!existsSync(f)) continue
    const text = readFileSync(f, 'utf8')
    const m = text.match(/^URIs:\s*(\S+\/debian)\/?\s*$/m) ?? text.match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s+bookworm\s/m)
    if (m?.[1]) return m[1]
  }
  return 'http://deb.debian.org/debian'
}
