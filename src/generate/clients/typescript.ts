// Emits src/generated/client.ts: a Node client on the runtime's wire module.
import type {Spec} from '../../spec/model.js'
import type {ClientOutput} from './index.js'

export function typescriptClient(_spec: Spec, _header: string): ClientOutput {
  return {files: [], view: {}}
}
