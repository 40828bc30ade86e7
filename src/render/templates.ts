import {readFileSync} from 'node:fs'
import {isIPv6} from 'node:net'
import {join} from 'node:path'
import Handlebars from 'handlebars'
import {templatesDir} from '../paths.js'

export type TemplateRenderer = (name: string, vars: object) => string

/** Renders templates/<name> with Handlebars; a missing variable is an error, never an empty string. */
export function createRenderer(dir = templatesDir): TemplateRenderer {
  const hb = Handlebars.create()
  hb.registerHelper('isIPv6', (addr: string) => isIPv6(addr))
  hb.registerHelper('cidr', (addr: string) => (isIPv6(addr) ? `${addr}/128` : `${addr}/32`))
  const cache = new Map<string, HandlebarsTemplateDelegate>()
  return (name, vars) => {
    let tpl = cache.get(name)
    if (!tpl) {
      tpl = hb.compile(readFileSync(join(dir, name), 'utf8'), {noEscape: true, strict: true})
      cache.set(name, tpl)
    }
    return tpl(vars)
  }
}
