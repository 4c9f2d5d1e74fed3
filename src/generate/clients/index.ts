// The generated clients: one emitter per language, each giving its files (owned by the tool)
// and what the project README says about it.
import type {Spec} from '../../spec/model.js'
import {csharpClient} from './csharp.js'
import {pythonClient} from './python.js'
import {typescriptClient} from './typescript.js'

export interface ClientOutput {
  files: {path: string; content: string}[]
  /** Values for templates/project/README.md.hbs. */
  view: Record<string, unknown>
}

export function renderClients(spec: Spec, header: string): ClientOutput {
  const parts = [typescriptClient(spec, header), pythonClient(spec, header), csharpClient(spec, header)]
  return {files: parts.flatMap((p) => p.files), view: Object.assign({}, ...parts.map((p) => p.view))}
}
