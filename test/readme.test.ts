// The README is what a user who installed from the registry reads first: its links must work
// outside the repository, and every sample of the tool's output must be the tool's output.
// Its `yaml file=NAME` blocks are written to a scratch directory, then each `console` block's
// `$ ` commands run there in order (npx iocpgen is this checkout's CLI), and what each
// prints, stdout and stderr as a terminal shows them, must equal the lines under it.
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {run} from './support/run.js'

const root = join(import.meta.dirname, '..')
const readme = readFileSync(join(root, 'README.md'), 'utf8')

interface Block {
  info: string
  body: string
  line: number
}

function blocks(markdown: string): Block[] {
  const out: Block[] = []
  const re = /^```([^\n]*)\n([\s\S]*?)^```$/gm
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) out.push({info: m[1]!.trim(), body: m[2]!, line: markdown.slice(0, m.index).split('\n').length})
  return out
}

/** A console block as [command, expected output] pairs. */
function sessions(body: string): [string, string][] {
  const out: [string, string][] = []
  for (const line of body.replace(/\n$/, '').split('\n')) {
    if (line.startsWith('$ ')) out.push([line.slice(2), ''])
    else if (out.length > 0) out[out.length - 1]![1] += `${line}\n`
    else throw new Error(`output before any command: ${line}`)
  }
  return out
}

describe('README', () => {
  it('links only to absolute addresses or to its own headings', () => {
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!)
    expect(links.length).toBeGreaterThan(0)
    expect(links.filter((l) => !/^(https:\/\/|#)/.test(l))).toEqual([])
    // GitHub's heading anchors: lower case, punctuation dropped, spaces as dashes.
    const anchors = new Set([...readme.matchAll(/^#+ (.+)$/gm)].map((m) => '#' + m[1]!.toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')))
    expect(links.filter((l) => l.startsWith('#') && !anchors.has(l))).toEqual([])
  })

  it('shows the output the tool prints for every sample command', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'readme-'))
    const bin = join(scratch, '.bin')
    mkdirSync(bin)
    // npx iocpgen ... runs this checkout's CLI, as an installed package's bin would.
    writeFileSync(join(bin, 'npx'), `#!/bin/sh\n[ "$1" = iocpgen ] || { echo "not iocpgen: $*" >&2; exit 127; }\nshift\nexec "${process.execPath}" "${join(root, 'bin', 'run.js')}" "$@"\n`)
    chmodSync(join(bin, 'npx'), 0o755)
    const env = {...process.env, PATH: `${bin}:${process.env.PATH}`, NO_COLOR: '1', FORCE_COLOR: '0'}
    let commands = 0
    for (const b of blocks(readme)) {
      const file = /^yaml file=(\S+)$/.exec(b.info)?.[1]
      if (file) writeFileSync(join(scratch, file), b.body)
      if (b.info !== 'console') continue
      for (const [command, expected] of sessions(b.body)) {
        const r = await run('sh', ['-c', `${command} 2>&1`], {cwd: scratch, env})
        expect(r.stdout.replace(/[ \t]+$/gm, ''), `README.md:${b.line}: ${command}`).toBe(expected.replace(/[ \t]+$/gm, ''))
        commands++
      }
    }
    expect(commands).toBeGreaterThanOrEqual(3)
  }, 60_000)
})
