import {createWriteStream} from 'node:fs'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import type Docker from 'dockerode'
import type {ReleaseManifest} from '../../config/manifest.js'
import type {IoHost} from '../../io.js'
import {releaseImages} from '../../plan/desired.js'
import {artifactContextFiles, buildImage, ensureBaseImage, imageExists} from '../../transport/engine-images.js'
import type {LocalArtifact} from '../artifacts.js'
import {IMAGES_GROUP, type BundledImage, type BundleFile, type BundleGroup} from './format.js'
import {hashFile} from './write.js'

/**
 * Every image the release runs on engine hosts, with the tags install computes: built
 * on the local engine when missing (as an online install would build it on its engine),
 * then saved together in one tar (`docker save` format), so the layers they share (the
 * Debian base) are in it once.
 */
export async function saveReleaseImages(opts: {docker: Docker; manifest: ReleaseManifest; artifacts: LocalArtifact[]; dir: string; io: IoHost}): Promise<{group: BundleGroup; images: BundledImage[]}> {
  const {docker, io} = opts
  const wanted = releaseImages(opts.manifest)
  for (const r of wanted) {
    if (await imageExists(docker, r.tag)) continue
    io.notify({type: 'info', message: `bundle: building image ${r.tag} on the local engine`})
    const base = await ensureBaseImage(docker, {notify: (m) => io.notify({type: 'info', message: m})})
    const extra = (r.artifacts ?? []).flatMap((a) => {
      const local = opts.artifacts.find((x) => x.name === a.name && x.version === a.version)
      if (!local) throw new Error(`bug: image ${r.tag} needs artifact ${a.name} ${a.version}, which the bundle did not make`)
      return artifactContextFiles(a, local.dir)
    })
    await buildImage(docker, r.contextDir, r.contextFiles, r.tag, base, extra)
  }
  if (!wanted.length) return {group: {path: IMAGES_GROUP, kind: 'images', files: []}, images: []}
  io.notify({type: 'info', message: `bundle: saving ${wanted.length} images`})
  const name = 'images.tar'
  const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) =>
    docker.modem.dial({path: '/images/get?', method: 'GET', options: {names: wanted.map((r) => r.tag)}, isStream: true, statusCodes: {200: true, 500: 'server error'}}, (err, res) => (err ? reject(err) : resolve(res as NodeJS.ReadableStream))),
  )
  await pipeline(stream, createWriteStream(join(opts.dir, name)))
  return {
    group: {path: IMAGES_GROUP, kind: 'images', files: [{path: name, ...(await hashFile(join(opts.dir, name)))}]},
    images: wanted.map((r) => ({component: r.component, tag: r.tag, file: `${IMAGES_GROUP}/${name}`})),
  }
}
