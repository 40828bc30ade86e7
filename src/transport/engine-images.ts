import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type Docker from 'dockerode'
import {execa} from 'execa'

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

/** Builds an image from a directory of templates/ on the engine, FROM the base image. */
export async function buildImage(docker: Docker, contextDir: string, files: string[], tag: string, base: string): Promise<void> {
  const stream = await docker.buildImage({context: contextDir, src: files}, {t: tag, dockerfile: 'Containerfile', buildargs: {BASE: base}})
  await followProgress(docker, stream)
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
