// Emits clients/python: an asyncio client with dataclasses, standard library only.
import type {Spec} from '../../spec/model.js'
import type {ClientOutput} from './index.js'

export function pythonClient(_spec: Spec, _header: string): ClientOutput {
  return {files: [], view: {}}
}
