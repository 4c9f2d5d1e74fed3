import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {basename, dirname, extname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {createRequire} from 'node:module'

import {Args, Flags} from '@oclif/core'
import type HandlebarsModule from 'handlebars'

import {schemaFor} from '../generate/schema-ref.js'
import {BaseCommand} from '../util/command.js'

const TEMPLATE = fileURLToPath(new URL('../../templates/init/spec.yaml.hbs', import.meta.url))
const DOCS = 'https://github.com/iocpgen/iocpgen/blob/main/docs'

export default class Init extends BaseCommand {
  static override summary = 'Write a commented starter spec to edit into your protocol.'
  static override description = `Writes a small, valid spec (a game lobby: login, rooms, private messages, a heartbeat and
a login queue) with a comment on each setting. Its first line points editors running
yaml-language-server at the JSON Schema: the one in node_modules when iocpgen is installed
there, else the published copy of this version. Refuses to overwrite a file unless --force.
Exit codes: 0 written, 2 usage error (the file exists, or a bad name).`

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> lobby.yaml --name lobby']

  static override enableJsonFlag = true

  static override args = {
    file: Args.string({description: 'the spec file to write', default: 'spec.yaml'}),
  }

  static override flags = {
    name: Flags.string({char: 'n', description: 'the project name (default: from the file name)'}),
    force: Flags.boolean({description: 'overwrite the file if it exists'}),
  }

  async run(): Promise<{file: string; name: string}> {
    const {args, flags} = await this.parse(Init)
    const file = resolve(args.file)
    if (existsSync(file) && !flags.force) this.error(`${args.file} exists; pass --force to overwrite it`, {exit: 2})
    if (!existsSync(dirname(file))) this.error(`no such directory: ${dirname(args.file)}`, {exit: 2})
    if (!['.yaml', '.yml'].includes(extname(file))) this.error(`${args.file}: a spec written by init is YAML; name it .yaml or .yml`, {exit: 2})
    const name = flags.name ?? projectName(basename(file, extname(file)))
    if (!/^[a-z][a-z0-9-]{0,63}$/.test(name)) this.error(`"${name}" is not a project name: lower case letters, digits and dashes, starting with a letter (pass --name)`, {exit: 2})

    const handlebars = createRequire(import.meta.url)('handlebars') as typeof HandlebarsModule
    const render = handlebars.compile(readFileSync(TEMPLATE, 'utf8'), {noEscape: true, strict: true})
    writeFileSync(file, render({name, file: args.file, schema: schemaFor(dirname(file)), docs: DOCS}))
    this.log(`wrote ${args.file}: a starter spec for "${name}"`)
    this.log(['', 'next:', `  npx iocpgen validate ${args.file}`, `  npx iocpgen new ${name} --spec ${args.file}`].join('\n'))
    return {file: join(dirname(args.file), basename(file)), name}
  }
}

/** "My Lobby_v2" -> "my-lobby-v2"; "spec" (the default file) -> "my-server". */
function projectName(stem: string): string {
  const name = stem.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^[^a-z]+|-+$/g, '')
  return name === '' || name === 'spec' ? 'my-server' : name.slice(0, 64)
}
