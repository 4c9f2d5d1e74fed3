// An unknown command gets the closest one as a suggestion, whether or not a terminal is
// attached: never a prompt, so scripts and CI see the same line and exit code 2.
import type {Hook} from '@oclif/core'

import {closest} from '../util/suggest.js'

const hook: Hook.CommandNotFound = async function (opts) {
  const ids = opts.config.commands.filter((c) => !c.hidden).map((c) => c.id)
  // With spaces as topic separators, the id runs on into the arguments: "valdate:x.yaml".
  const id = opts.id.split(':')[0]!
  const guess = closest(id, ids)
  const bin = opts.config.bin
  this.error(`"${id}" is not an ${bin} command.${guess ? ` Did you mean "${guess}"?` : ''} "${bin} help" lists them.`, {exit: 2})
}

export default hook
