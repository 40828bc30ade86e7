import {readFileSync, renameSync, statSync, writeFileSync} from 'node:fs'
import {isScalar, parseDocument} from 'yaml'
import {parseClusterConfig} from './load.js'

/**
 * cluster.yaml with `release:` set and every other byte as it was: the YAML tree says where
 * the value is, and only those characters change, so comments, key order, flow lists and
 * spacing stay as the user wrote them. The result is validated like any cluster.yaml.
 */
export function withRelease(text: string, release: string, file: string): string {
  const doc = parseDocument(text)
  const node = doc.get('release', true)
  if (!isScalar(node) || !node.range) throw new Error(`bug: ${file} has no scalar release: to change`)
  const [start, end] = node.range
  const quote = text[start] === '"' || text[start] === "'" ? text[start] : ''
  const next = text.slice(0, start) + quote + release + quote + text.slice(end)
  if (parseClusterConfig(next, file).release !== release) throw new Error(`bug: changing release in ${file} did not give ${release}`)
  return next
}

/** Sets `release:` in the file (see withRelease), written atomically with the file's own mode. */
export function setRelease(file: string, release: string): void {
  const next = withRelease(readFileSync(file, 'utf8'), release, file)
  const tmp = `${file}.imctl-tmp`
  writeFileSync(tmp, next, {mode: statSync(file).mode & 0o777})
  renameSync(tmp, file)
}
