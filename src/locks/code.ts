// Reads the locks a project's TypeScript takes (calls on the typed handles of
// src/generated/locks.ts) and compares them with the operations its spec declares.
import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, isAbsolute, join, relative, resolve, sep} from 'node:path'

import type * as TsMorph from 'ts-morph'

import {type Diagnostic, diagnostic, type Position, sortDiagnostics} from '../diagnostics/diagnostic.js'
import {pascal} from '../generate/names.js'
import type {Operation, Spec, Step} from '../spec/model.js'

export interface CodeLockResult {
  diagnostics: Diagnostic[]
  /** The operations as the code performs them (same model as Spec.operations, positions in source files), for drawing the graph. */
  operations: (Operation & {file: string})[]
}

/** The project around a spec: the nearest directory upward holding tsconfig.json and src/generated/locks.ts; undefined if none. */
export function projectOf(specFile: string): string | undefined {
  for (let dir = dirname(resolve(specFile)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'tsconfig.json')) && existsSync(join(dir, 'src', 'generated', 'locks.ts'))) return dir
    if (dirname(dir) === dir) return undefined
  }
}

// ts-morph carries the TypeScript compiler: load it only when a project is checked, so that
// validating a plain spec file stays fast.
const load = () => createRequire(import.meta.url)('ts-morph') as typeof TsMorph
type Ts = typeof TsMorph.ts
type Node = TsMorph.ts.Node
type Mode = 'read' | 'write'

interface Loc extends Position {
  /** Absolute path. */
  file: string
  endCol?: number
}

/** A lock taken in code, and what runs while it is held. */
interface Take {
  kind: 'lock'
  lock: string
  mode: Mode
  at: Loc
  node: Node
  then: CodeStep[]
}

type CodeStep = Take | {kind: 'call'; fn: Fn}

/** A function of the project, with the locks its body takes. */
interface Fn {
  name: string
  /** Its name where it is declared (a handler's variable, a function's name). */
  at: Loc
  node: Node
  steps: CodeStep[]
}

/** One acquisition on a walk from an entry: the locks held around it and the functions on the way. */
interface CodePath {
  key: string[]
  take: Take
  held: Take[]
  chain: string[]
}

interface SpecPath {
  key: string[]
  step: Extract<Step, {kind: 'lock'}>
}

const keyOf = (lock: string, mode: Mode) => `${lock}:${mode}`
const joinKey = (key: readonly string[]) => key.join(' > ')
const showKey = (k: string) => {
  const [lock, mode] = k.split(':')
  return `${lock} (${mode})`
}

export function checkCodeLocks(spec: Spec, projectDir: string): CodeLockResult {
  const {Project, ts} = load()
  const root = resolve(projectDir)
  const project = new Project({tsConfigFilePath: join(root, 'tsconfig.json')})
  const program = project.getProgram().compilerObject
  const checker = program.getTypeChecker()
  const srcDir = join(root, 'src') + sep
  const generatedDir = join(root, 'src', 'generated') + sep
  const isProjectFile = (sf: TsMorph.ts.SourceFile) => {
    const file = resolve(sf.fileName)
    return !sf.isDeclarationFile && file.startsWith(srcDir) && !file.startsWith(generatedDir) && !file.split(sep).includes('node_modules')
  }
  const files = program
    .getSourceFiles()
    .filter(isProjectFile)
    .sort((a, b) => a.fileName.localeCompare(b.fileName))

  // Files as the spec's path is given: absolute, or relative to the working directory.
  const shown = (file: string) => (isAbsolute(spec.file) ? file : relative(process.cwd(), file).split(sep).join('/'))
  const where = (l: Loc) => `${shown(l.file)}:${l.line}:${l.col}`
  const specWhere = (p: Position) => `${spec.file}:${p.line}:${p.col}`
  const locOf = (node: Node): Loc => {
    const sf = node.getSourceFile()
    const start = sf.getLineAndCharacterOfPosition(node.getStart(sf))
    const end = sf.getLineAndCharacterOfPosition(node.getEnd())
    const loc: Loc = {file: resolve(sf.fileName), line: start.line + 1, col: start.character + 1}
    if (end.line === start.line) loc.endCol = end.character + 1
    return loc
  }

  const kindOf = new Map(spec.locks.map((l) => [l.name, l.kind]))
  // A mutex has one mode; an rwlock's `lock` does not exist, so only read and write reach here.
  const modeOf = (lock: string, mode: Mode): Mode => (kindOf.get(lock) === 'rwlock' ? mode : 'write')

  const unwrap = (e: Node): Node => {
    while (ts.isParenthesizedExpression(e) || ts.isNonNullExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isAwaitExpression(e)) e = e.expression
    return e
  }
  const isFnExpr = (n: Node): n is TsMorph.ts.ArrowFunction | TsMorph.ts.FunctionExpression => ts.isArrowFunction(n) || ts.isFunctionExpression(n)
  const hasBody = (n: Node): n is TsMorph.ts.FunctionLikeDeclaration & {body: Node} =>
    (ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n) || ts.isConstructorDeclaration(n) || ts.isGetAccessorDeclaration(n) || ts.isSetAccessorDeclaration(n) || isFnExpr(n)) && n.body !== undefined

  /** `recv.lock|read|write(...)` on a handle whose type has a string literal `lockName`. */
  type TakeCall = {lock: string; mode: Mode; site: Node; recv: Node}
  const takeCalls = new Map<Node, TakeCall | undefined>()
  const takeOf = (call: TsMorph.ts.CallExpression): TakeCall | undefined => {
    if (!takeCalls.has(call)) takeCalls.set(call, readTake(call))
    return takeCalls.get(call)
  }
  const readTake = (call: TsMorph.ts.CallExpression): TakeCall | undefined => {
    const callee = unwrap(call.expression)
    if (!ts.isPropertyAccessExpression(callee)) return undefined
    const method = callee.name.text
    if (method !== 'lock' && method !== 'read' && method !== 'write') return undefined
    const recv = callee.expression
    const type = checker.getNonNullableType(checker.getTypeAtLocation(recv))
    const prop = checker.getPropertyOfType(type, 'lockName')
    if (!prop) return undefined
    const name = checker.getTypeOfSymbolAtLocation(prop, recv)
    if (!name.isStringLiteral()) return undefined
    return {lock: name.value, mode: method === 'read' ? 'read' : 'write', site: siteOf(recv), recv}
  }
  // The name the lock is reached by: `users` in locks.users, `group` in held.group(id), or a variable.
  const siteOf = (recv: Node): Node => {
    let e = unwrap(recv)
    while (ts.isCallExpression(e)) e = unwrap(e.expression)
    if (ts.isPropertyAccessExpression(e)) return e.name
    if (ts.isElementAccessExpression(e)) return e.argumentExpression
    return e
  }

  // Functions by declaration, created before their body is walked so that recursion ends.
  const fns = new Map<Node, Fn>()
  const nameOf = (node: Node): Node | undefined => {
    if ((ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isFunctionExpression(node) || ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node)) && node.name) return node.name
    if (ts.isConstructorDeclaration(node)) return node.parent.name ?? node
    let p = node.parent
    while (p && (ts.isParenthesizedExpression(p) || ts.isAsExpression(p) || ts.isSatisfiesExpression(p))) p = p.parent
    if (p && (ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p))) return p.name
    return undefined
  }
  const fnOf = (node: Node & {body: Node}): Fn => {
    let fn = fns.get(node)
    if (fn) return fn
    const name = nameOf(node)
    fn = {name: name && (ts.isIdentifier(name) || ts.isStringLiteral(name)) ? name.text : ts.isConstructorDeclaration(node) ? 'constructor' : '(anonymous)', at: locOf(name ?? node), node, steps: []}
    fns.set(node, fn)
    walk(node.body, fn.steps)
    return fn
  }
  const projectFn = (decl: Node | undefined): Fn | undefined => (decl && hasBody(decl) && isProjectFile(decl.getSourceFile()) ? fnOf(decl) : undefined)

  /** The project function a reference names: through imports, variables and shorthand properties. */
  const fnOfRef = (ref: Node, depth = 0): Fn | undefined => {
    const e = unwrap(ref)
    if (isFnExpr(e)) return projectFn(e)
    if (depth > 8) return undefined
    let symbol = checker.getSymbolAtLocation(ts.isPropertyAccessExpression(e) ? e.name : e)
    if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol)
    for (const decl of symbol?.declarations ?? []) {
      const fn = fnOfDecl(decl, depth)
      if (fn) return fn
    }
    return undefined
  }
  const fnOfDecl = (decl: Node, depth = 0): Fn | undefined => {
    if (hasBody(decl)) return projectFn(decl)
    if ((ts.isVariableDeclaration(decl) || ts.isPropertyAssignment(decl) || ts.isPropertyDeclaration(decl)) && decl.initializer) return isProjectFile(decl.getSourceFile()) ? fnOfRef(decl.initializer, depth + 1) : undefined
    if (ts.isShorthandPropertyAssignment(decl)) {
      const value = checker.getShorthandAssignmentValueSymbol(decl)
      for (const d of value?.declarations ?? []) {
        const fn = fnOfDecl(d, depth + 1)
        if (fn) return fn
      }
    }
    if (ts.isClassDeclaration(decl)) return projectFn(decl.members.find(ts.isConstructorDeclaration))
    return undefined
  }
  const fnOfCall = (call: TsMorph.ts.CallExpression | TsMorph.ts.NewExpression): Fn | undefined => {
    const decl = checker.getResolvedSignature(call)?.getDeclaration()
    return (decl && projectFn(decl)) ?? fnOfRef(call.expression)
  }

  /** Collects what a piece of code takes and calls, in order; nested functions run only when called or passed. */
  const walk = (node: Node, out: CodeStep[]): void => {
    if (ts.isCallExpression(node) || ts.isNewExpression(node)) return walkCall(node, out)
    if (hasBody(node) || ts.isClassLike(node)) return
    ts.forEachChild(node, (child) => walk(child, out))
  }
  const walkArg = (arg: Node, out: CodeStep[]) => {
    const e = unwrap(arg)
    // A function handed to any call may be called by it: walked where it is passed.
    if (isFnExpr(e)) walk(e.body, out)
    else walk(arg, out)
  }
  const walkCall = (call: TsMorph.ts.CallExpression | TsMorph.ts.NewExpression, out: CodeStep[]) => {
    const take = ts.isCallExpression(call) ? takeOf(call) : undefined
    if (take) {
      walk(take.recv, out)
      const step: Take = {kind: 'lock', lock: take.lock, mode: take.mode, at: locOf(take.site), node: call, then: []}
      out.push(step)
      const [body, ...rest] = (call as TsMorph.ts.CallExpression).arguments
      if (body) {
        const e = unwrap(body)
        const fn = isFnExpr(e) ? undefined : fnOfRef(e)
        if (isFnExpr(e)) walk(e.body, step.then)
        else if (fn) step.then.push({kind: 'call', fn})
        else walk(body, out)
      }
      for (const a of rest) walkArg(a, out)
      return
    }
    const callee = unwrap(call.expression)
    if (isFnExpr(callee)) walk(callee.body, out)
    else walk(call.expression, out)
    for (const a of call.arguments ?? []) walkArg(a, out)
    const fn = isFnExpr(callee) ? undefined : fnOfCall(call)
    if (fn) out.push({kind: 'call', fn})
  }

  /** Every acquisition reachable from a function, each with the locks held; once per (function, held locks). */
  const pathsOf = (entry: Fn): CodePath[] => {
    const out: CodePath[] = []
    const seen = new Set<string>()
    const stack = new Set<Fn>([entry])
    const go = (steps: CodeStep[], held: Take[], key: string[], chain: string[]) => {
      for (const s of steps) {
        if (s.kind === 'lock') {
          const k = [...key, keyOf(s.lock, modeOf(s.lock, s.mode))]
          out.push({key: k, take: s, held, chain})
          go(s.then, [...held, s], k, chain)
        } else if (!stack.has(s.fn)) {
          const id = `${indexOf(s.fn)}|${joinKey(key)}`
          if (seen.has(id)) continue
          seen.add(id)
          stack.add(s.fn)
          go(s.fn.steps, held, key, [...chain, s.fn.name])
          stack.delete(s.fn)
        }
      }
    }
    go(entry.steps, [], [], [entry.name])
    return out
  }
  const ids = new Map<Fn, number>()
  const indexOf = (fn: Fn) => {
    let i = ids.get(fn)
    if (i === undefined) ids.set(fn, (i = ids.size))
    return i
  }

  /** The code's steps as spec steps, calls inlined (a recursive call is cut). */
  const asSteps = (steps: CodeStep[], stack: Set<Fn>): (Step & {file?: string})[] =>
    steps.flatMap((s): (Step & {file?: string})[] => {
      if (s.kind === 'lock') return [{kind: 'lock', lock: s.lock, mode: modeOf(s.lock, s.mode), then: asSteps(s.then, stack), at: {line: s.at.line, col: s.at.col}, file: s.at.file}]
      if (stack.has(s.fn)) return []
      stack.add(s.fn)
      const inner = asSteps(s.fn.steps, stack)
      stack.delete(s.fn)
      return inner
    })

  // Where each operation lives: the handler of its message, else a function of its name.
  const inboundByOp = new Map(spec.messages.filter((m) => m.direction !== 'server-to-client').map((m) => [m.name, m]))
  const messageOf = (op: string) => inboundByOp.get(op) ?? inboundByOp.get(pascal(op))
  const handlerTables: TsMorph.ts.ObjectLiteralExpression[] = []
  const namedFns = new Map<string, Node[]>()
  const isHandlers = (t: TsMorph.ts.Type | undefined) => t !== undefined && (t.aliasSymbol?.name === 'Handlers' || t.getSymbol()?.name === 'Handlers')
  for (const sf of files) {
    const scan = (node: Node): void => {
      if (ts.isObjectLiteralExpression(node) && isHandlers(checker.getContextualType(node))) handlerTables.push(node)
      if (hasBody(node)) {
        const name = nameOf(node)
        if (name && ts.isIdentifier(name) && !ts.isConstructorDeclaration(node)) namedFns.set(name.text, [...(namedFns.get(name.text) ?? []), node])
      }
      ts.forEachChild(node, scan)
    }
    scan(sf)
  }
  const tableFiles = () => [...new Set(handlerTables.map((t) => shown(resolve(t.getSourceFile().fileName))))].join(', ')
  const entryOf = (op: string): Fn | undefined => {
    const message = messageOf(op)
    if (message) {
      for (const table of handlerTables) {
        for (const p of table.properties) {
          if (!p.name || !(ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)) || p.name.text !== message.name) continue
          const fn = ts.isPropertyAssignment(p) ? fnOfRef(p.initializer) : fnOfDecl(p)
          if (fn) return fn
        }
      }
    }
    const decl = namedFns.get(op)?.[0]
    return decl && hasBody(decl) ? fnOf(decl) : undefined
  }
  const lookedFor = (op: string) => {
    const message = messageOf(op)
    const fn = `a function named ${op} in src/ (outside src/generated/)`
    if (!message) return fn
    const table = handlerTables.length ? `the ${message.name} entry of the Handlers table (${tableFiles()})` : `a ${message.name} entry in an object typed Handlers (none found)`
    return `${table}, then ${fn}`
  }

  // The spec's side: every chain of lock steps from an operation, its calls inlined.
  const specOps = new Map(spec.operations.map((o) => [o.name, o]))
  const specPaths = (op: Operation): Map<string, SpecPath> => {
    const out = new Map<string, SpecPath>()
    const go = (steps: Step[], key: string[], stack: Set<string>) => {
      for (const s of steps) {
        if (s.kind === 'lock') {
          const k = [...key, keyOf(s.lock, modeOf(s.lock, s.mode))]
          if (!out.has(joinKey(k))) out.set(joinKey(k), {key: k, step: s})
          go(s.then, k, stack)
        } else if (s.kind === 'call') {
          const callee = specOps.get(s.operation)
          if (!callee || stack.has(callee.name)) continue
          go(callee.steps, key, new Set([...stack, callee.name]))
        }
      }
    }
    go(op.steps, [], new Set([op.name]))
    return out
  }

  const diagnostics: Diagnostic[] = []
  const operations: (Operation & {file: string})[] = []
  const reached = new Set<Node>()
  const heldText = (held: Take[]) => (held.length ? `while holding ${held.map((h) => `${h.lock} (${modeOf(h.lock, h.mode)}, taken at ${where(h.at)})`).join(', ')}` : 'with no lock held')
  const via = (chain: string[]) => (chain.length > 1 ? ` (via ${chain.join(' -> ')})` : '')
  const yamlOf = (key: string[]): string => {
    const [lock, mode] = key[0]!.split(':')
    const then = key.length > 1 ? `, then: [${yamlOf(key.slice(1))}]` : ''
    return `{lock: ${lock}${kindOf.get(lock!) === 'rwlock' ? `, mode: ${mode}` : ''}${then}}`
  }

  for (const op of spec.operations) {
    const declared = specPaths(op)
    const entry = entryOf(op.name)
    if (!entry) {
      if (declared.size > 0) diagnostics.push(diagnostic('E423', spec.file, op.at, `operation ${op.name} takes locks, but no code for it was found`, `looked for ${lookedFor(op.name)}; add it, or remove the operation from the spec`))
      continue
    }
    operations.push({name: op.name, steps: asSteps(entry.steps, new Set([entry])), at: {line: entry.at.line, col: entry.at.col}, file: entry.at.file})
    const found = pathsOf(entry)
    const done = new Map<string, CodePath>()
    for (const p of found) {
      reached.add(p.take.node)
      if (!done.has(joinKey(p.key))) done.set(joinKey(p.key), p)
    }
    const reported = new Set<string>()
    for (const p of found) {
      const k = joinKey(p.key)
      const parent = joinKey(p.key.slice(0, -1))
      if (declared.has(k) || (p.key.length > 1 && !declared.has(parent))) continue
      const once = `${k}|${where(p.take.at)}`
      if (reported.has(once)) continue
      reported.add(once)
      const taken = showKey(p.key.at(-1)!)
      const under = p.key.length > 1 ? declared.get(parent)!.step : undefined
      const hint = under
        ? `if this is intended, add ${yamlOf(p.key.slice(-1))} under then: of the ${showKey(p.key.at(-2)!)} step of operations.${op.name} (${specWhere(under.at)}); else take ${p.take.lock} elsewhere`
        : `if this is intended, add - ${yamlOf(p.key.slice(-1))} under operations.${op.name}; else take ${p.take.lock} elsewhere`
      diagnostics.push(diagnostic('E421', shown(p.take.at.file), p.take.at, `${op.name} takes ${taken} ${heldText(p.held)}${via(p.chain)}, which the spec does not declare`, hint, [`declared chains of ${op.name}: ${[...declared.values()].map((d) => d.key.map(showKey).join(' > ')).join('; ') || 'none'}`]))
    }
    for (const [k, d] of declared) {
      const parent = joinKey(d.key.slice(0, -1))
      if (done.has(k) || (d.key.length > 1 && !done.has(parent))) continue
      const holding = d.key.length > 1 ? ` while holding ${d.key.slice(0, -1).map(showKey).join(', ')}` : ''
      diagnostics.push(diagnostic('E422', shown(entry.at.file), entry.at, `${op.name} no longer takes ${showKey(d.key.at(-1)!)}${holding} as the spec declares (code: ${entry.name})`, `take the lock in the code, or remove the step from operations.${op.name}`, [`declared at ${specWhere(d.step.at)}: ${d.key.map(showKey).join(' > ')}`]))
    }
  }

  // Acquisitions no operation reaches: reported from the outermost function that takes them.
  const takes: {node: TsMorph.ts.CallExpression; at: Loc}[] = []
  for (const sf of files) {
    const scan = (node: Node): void => {
      if (ts.isCallExpression(node)) {
        const t = takeOf(node)
        if (t) takes.push({node, at: locOf(t.site)})
      }
      ts.forEachChild(node, scan)
    }
    scan(sf)
  }
  const orphans = takes.filter((t) => !reached.has(t.node))
  // A function expression passed to a call belongs to the function around it.
  const ownerOf = (node: Node): (Node & {body: Node}) | undefined => {
    for (let p = node.parent; p; p = p.parent) {
      if (hasBody(p) && !(isFnExpr(p) && p.parent && (ts.isCallExpression(p.parent) || ts.isNewExpression(p.parent)) && p.parent.expression !== p)) return p
    }
    return undefined
  }
  const owners = [...new Set(orphans.map((t) => ownerOf(t.node)).filter((o) => o !== undefined))].map(fnOf)
  const callees = (fn: Fn, into = new Set<Fn>()): Set<Fn> => {
    const go = (steps: CodeStep[]) => {
      for (const s of steps) {
        if (s.kind === 'lock') go(s.then)
        else if (!into.has(s.fn)) (into.add(s.fn), go(s.fn.steps))
      }
    }
    go(fn.steps)
    return into
  }
  const calledBy = new Set<Fn>()
  for (const o of owners) for (const c of callees(o)) if (c !== o) calledBy.add(c)
  const roots = owners.filter((o) => !calledBy.has(o))
  const names = new Set(spec.operations.map((o) => o.name))
  const report = (at: Loc, held: Take[], chain: string[], fn: string | undefined, lock: string, mode: Mode) => {
    const step = yamlOf([keyOf(lock, modeOf(lock, mode))])
    const hint = fn
      ? `declare it: add an operation named ${fn} to the spec with - ${step}, or move the code into the handler or function of an operation`
      : `move it into a function and add an operation named after it with - ${step}, or into the handler or function of an operation`
    const who = fn ?? `top-level code of ${shown(at.file)}`
    diagnostics.push(diagnostic('E421', shown(at.file), at, `${who} takes ${showKey(keyOf(lock, modeOf(lock, mode)))} ${heldText(held)}${via(chain)}, but no operation of the spec reaches it`, hint))
  }
  for (const fn of roots) {
    for (const p of pathsOf(fn)) {
      if (reached.has(p.take.node)) continue
      reached.add(p.take.node)
      // Only the outermost: what it takes inside follows from declaring that.
      if (p.key.length === 1) report(p.take.at, p.held, p.chain, fn.name, p.take.lock, p.take.mode)
    }
    if (!names.has(fn.name) && fn.name !== '(anonymous)') {
      names.add(fn.name)
      operations.push({name: fn.name, steps: asSteps(fn.steps, new Set([fn])), at: {line: fn.at.line, col: fn.at.col}, file: fn.at.file})
    }
  }
  // Anything left: top-level code, or a callback handed over by reference and never called.
  const left = new Set<Node>(orphans.filter((t) => !reached.has(t.node)).map((t) => t.node))
  for (const t of orphans) {
    if (!left.has(t.node)) continue
    let inside = false
    for (let p: Node | undefined = t.node.parent; p && !inside; p = p.parent) inside = left.has(p)
    if (inside) continue
    const take = takeOf(t.node)!
    const owner = ownerOf(t.node)
    report(t.at, [], [], owner && fnOf(owner).name, take.lock, take.mode)
  }

  return {diagnostics: sortDiagnostics(diagnostics), operations}
}
