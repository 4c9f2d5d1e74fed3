// The spec as it was at a git ref, for `breaking --against`.
import {execFileSync} from 'node:child_process'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {basename, dirname, join, relative, resolve, sep} from 'node:path'

export class GitError extends Error {
  override name = 'GitError'
}

const git = (cwd: string, ...args: string[]): string => execFileSync('git', args, {cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})

/**
 * Writes `file` as of `ref` to a temporary file and returns it with the name findings give it
 * (`ref:path`); undefined when the file did not exist at the ref.
 */
export function specAtRef(file: string, ref: string): {path: string; shown: string} | undefined {
  const dir = dirname(resolve(file))
  let top: string
  try {
    top = git(dir, 'rev-parse', '--show-toplevel').trim()
  } catch (error) {
    const why = (error as {code?: string}).code === 'ENOENT' ? 'git is not installed' : `${dirname(file)} is not in a git repository`
    throw new GitError(`--against needs git history: ${why}`)
  }
  try {
    git(top, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`)
  } catch {
    throw new GitError(`--against ${ref}: no such commit, branch or tag`)
  }
  const path = relative(top, resolve(file)).split(sep).join('/')
  let text: string
  try {
    text = git(top, 'show', `${ref}:${path}`)
  } catch {
    return undefined  // not in that commit: everything in it is new
  }
  const copy = join(mkdtempSync(join(tmpdir(), 'iocpgen-against-')), basename(file))
  writeFileSync(copy, text)
  return {path: copy, shown: `${ref}:${path}`}
}
