import {Args, type Command} from '@oclif/core'

import {BaseCommand} from '../util/command.js'

/** How an argument or a flag's value is completed. */
type Kind = 'spec' | 'dir' | 'ref' | 'command' | {words: string[]}

// Arguments and flags are completed by name: a spec file, a directory, a git ref.
const SPEC_NAMES = new Set(['spec', 'specs', 'old', 'new', 'file'])
function kindOf(name: string, options?: readonly string[]): Kind | undefined {
  if (options?.length) return {words: [...options]}
  if (SPEC_NAMES.has(name)) return 'spec'
  if (name === 'dir') return 'dir'
  if (name === 'against') return 'ref'
  if (name === 'command') return 'command'
  return undefined
}

const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`

function complete(kind: Kind): string {
  if (typeof kind === 'object') return `COMPREPLY=($(compgen -W ${q(kind.words.join(' '))} -- "$cur"))`
  return {spec: '_iocpgen_specs', dir: 'COMPREPLY=($(compgen -d -- "$cur"))', ref: '_iocpgen_refs', command: 'COMPREPLY=($(compgen -W "$_iocpgen_commands" -- "$cur"))'}[kind]
}

/** The bash completion script for these commands: generated, so it follows every flag. */
export function bashScript(commands: readonly Command.Loadable[]): string {
  const visible = commands.filter((c) => !c.hidden).sort((a, b) => a.id.localeCompare(b.id))
  const values: string[] = []
  const flagWords: string[] = []
  const args: string[] = []
  for (const c of visible) {
    const words: string[] = []
    for (const [name, f] of Object.entries(c.flags)) {
      words.push(`--${name}`)
      if (f.type === 'boolean' && f.allowNo) words.push(`--no-${name}`)
      const kind = f.type === 'option' ? kindOf(name, f.options) : undefined
      if (!kind) continue
      const names = [`--${name}`, ...(f.char ? [`-${f.char}`] : [])]
      values.push(`    ${names.map((n) => `'${c.id} ${n}'`).join('|')}) ${complete(kind)}; return ;;`)
    }
    flagWords.push(`    ${c.id}) COMPREPLY=($(compgen -W ${q(words.join(' '))} -- "$cur")) ;;`)
    const first = Object.entries(c.args)[0]
    const kind = first && kindOf(first[0], first[1].options)
    if (kind) args.push(`    ${c.id}) ${complete(kind)} ;;`)
  }
  return `# bash completion for iocpgen, made by "iocpgen completion bash". Load it with
#   source <(iocpgen completion bash)
# or save it where bash-completion looks (~/.local/share/bash-completion/completions/iocpgen).
_iocpgen_commands=${q(visible.map((c) => c.id).join(' '))}

# Spec files (YAML or JSON) and the directories that may hold them.
_iocpgen_specs() {
  local f
  COMPREPLY=()
  while IFS= read -r f; do
    if [[ -d $f || $f == *.yaml || $f == *.yml || $f == *.json ]]; then COMPREPLY+=("$f"); fi
  done < <(compgen -f -- "$cur")
}

_iocpgen_refs() {
  COMPREPLY=($(compgen -W "$(git for-each-ref --format='%(refname:short)' 2>/dev/null) HEAD" -- "$cur"))
}

_iocpgen() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} cmd= i
  # --flag=value: bash splits at the "=".
  if [[ $cur == = ]]; then cur=; elif [[ $prev == = ]]; then prev=\${COMP_WORDS[COMP_CWORD-2]}; fi
  for ((i = 1; i < COMP_CWORD; i++)); do
    if [[ \${COMP_WORDS[i]} != -* ]]; then cmd=\${COMP_WORDS[i]}; break; fi
  done
  if [[ -z $cmd ]]; then
    COMPREPLY=($(compgen -W "$_iocpgen_commands --version -v" -- "$cur"))
    return
  fi
  case "$cmd $prev" in
${values.join('\n')}
  esac
  if [[ $cur == -* ]]; then
    case $cmd in
${flagWords.join('\n')}
    esac
    return
  fi
  case $cmd in
${args.join('\n')}
  esac
}
complete -o filenames -F _iocpgen iocpgen
`
}

export default class Completion extends BaseCommand {
  static override summary = 'Print a bash completion script: commands, flags, flag values and spec files.'
  static override description = `Load it in the current shell with: source <(iocpgen completion bash)
It completes command names, each command's flags, the values a flag takes (--error-format,
--format), spec files (.yaml, .yml, .json) where a command takes one, directories for --dir,
and git refs for --against. zsh can load it after "autoload -U bashcompinit && bashcompinit";
for PowerShell, see "iocpgen autocomplete".`

  static override examples = ['source <(<%= config.bin %> <%= command.id %> bash)', '<%= config.bin %> <%= command.id %> bash > ~/.local/share/bash-completion/completions/iocpgen']

  static override args = {
    shell: Args.string({description: 'the shell', options: ['bash'], default: 'bash'}),
  }

  async run(): Promise<void> {
    await this.parse(Completion)
    this.log(bashScript(this.config.commands).trimEnd())
  }
}
