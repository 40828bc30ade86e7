import {dirname, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

/** The installed package's root (holds templates/, manifests/, schema/). */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const templatesDir = resolve(packageRoot, 'templates')
export const manifestsDir = resolve(packageRoot, 'manifests')
export const schemaFile = resolve(packageRoot, 'schema', 'cluster.schema.json')
