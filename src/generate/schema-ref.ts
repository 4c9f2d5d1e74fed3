// Where a spec's `$schema` comment should point, so editors find the JSON Schema.
import {existsSync} from 'node:fs'
import {dirname, join, relative, sep} from 'node:path'

import {TOOL_VERSION} from './project.js'

/** The schema inside an installed iocpgen, relative to a project root. */
export const INSTALLED_SCHEMA = 'node_modules/iocpgen/schema/iocpgen.schema.json'

/** The schema of this version on the registry's CDN, for a spec with no iocpgen installed near it. */
export const PUBLISHED_SCHEMA = `https://unpkg.com/iocpgen@${TOOL_VERSION}/schema/iocpgen.schema.json`

const COMMENT = /^(#\s*yaml-language-server:\s*\$schema=)(\S*)/m

/** The schema a spec in `dir` should name: an installed iocpgen above it, else the published file. */
export function schemaFor(dir: string): string {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, INSTALLED_SCHEMA))) return relative(dir, join(d, INSTALLED_SCHEMA)).split(sep).join('/')
    if (dirname(d) === d) return PUBLISHED_SCHEMA
  }
}

/**
 * The spec text with its yaml-language-server comment pointing at `schema`: replaced where it
 * is, else added as the first line. JSON specs cannot hold comments and are returned as given.
 */
export function withSchemaComment(text: string, schema: string, json: boolean): string {
  if (json) return text
  if (COMMENT.test(text)) return text.replace(COMMENT, (_, lead: string) => `${lead}${schema}`)
  return `# yaml-language-server: $schema=${schema}\n${text}`
}
