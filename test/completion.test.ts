// iocpgen completion bash: the script is sourced into a real bash, and its function is asked
// what it offers at each point of a command line, as bash's programmable completion would.
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

const root = join(import.meta.dirname, '..')
let script = ''
let dir = ''

beforeAll(() => {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'run.js'), 'completion', 'bash'], {encoding: 'utf8'})
  expect(r.status, r.stderr).toBe(0)
  script = join(mkdtempSync(join(tmpdir(), 'completion-')), 'iocpgen.bash')
  writeFileSync(script, r.stdout)
  // A directory of specs and other files to complete in.
  dir = mkdtempSync(join(tmpdir(), 'completion-cwd-'))
  for (const f of ['chat.yaml', 'chat.yml', 'lobby.json', 'notes.txt', 'chart.png']) writeFileSync(join(dir, f), '')
  mkdirSync(join(dir, 'specs'))
})

/** What completing `line` (the cursor at its end) offers, sorted. */
function offers(line: string): string[] {
  const words = line.split(' ')
  const program = `source ${JSON.stringify(script)}
COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(' ')}); COMP_CWORD=${words.length - 1}
_iocpgen; printf '%s\\n' "\${COMPREPLY[@]}"`
  const r = spawnSync('bash', ['-c', program], {cwd: dir, encoding: 'utf8'})
  if (r.error) throw new Error(`bash is needed for this test: ${r.error.message}`)
  expect(r.stderr).toBe('')
  return r.stdout.split('\n').filter(Boolean).sort()
}

describe('bash completion', () => {
  it('completes command names', () => {
    expect(offers('iocpgen va')).toEqual(['validate'])
    expect(offers('iocpgen ')).toEqual(expect.arrayContaining(['init', 'validate', 'new', 'generate', 'locks', 'completion']))
  })

  it('completes spec files (and directories), not other files, where a command takes a spec', () => {
    expect(offers('iocpgen validate ')).toEqual(['chat.yaml', 'chat.yml', 'lobby.json', 'specs'])
    expect(offers('iocpgen validate ch')).toEqual(['chat.yaml', 'chat.yml'])
    expect(offers('iocpgen locks --core c')).toEqual(['chat.yaml', 'chat.yml'])
    expect(offers('iocpgen new app --spec ')).toEqual(['chat.yaml', 'chat.yml', 'lobby.json', 'specs'])
    expect(offers('iocpgen new app -s l')).toEqual(['lobby.json'])
  })

  it('completes the values a flag takes, also after "="', () => {
    expect(offers('iocpgen validate --error-format ')).toEqual(['github', 'json', 'sarif', 'text'])
    expect(offers('iocpgen validate --error-format = j')).toEqual(['json'])
    expect(offers('iocpgen locks chat.yaml --format ')).toEqual(['cpp', 'dot', 'json', 'mermaid', 'text'])
    expect(offers('iocpgen generate --dir ')).toEqual(['specs'])
  })

  it("completes each command's own flags", () => {
    expect(offers('iocpgen validate --')).toEqual(['--code', '--error-format', '--json', '--no-code', '--quiet'])
    expect(offers('iocpgen new app --no')).toEqual(['--no-install'])
    expect(offers('iocpgen generate --dr')).toEqual(['--dry-run'])
  })
})
