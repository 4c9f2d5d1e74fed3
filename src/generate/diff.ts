// A small unified diff for --dry-run: common prefix and suffix trimmed, LCS on the rest.
export function unifiedDiff(path: string, before: string, after: string, context = 3): string {
  const a = before.split('\n')
  const b = after.split('\n')
  let start = 0
  while (start < a.length && start < b.length && a[start] === b[start]) start++
  let endA = a.length
  let endB = b.length
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) endA--, endB--
  const midA = a.slice(start, endA)
  const midB = b.slice(start, endB)
  if (midA.length * midB.length > 4_000_000) return `--- a/${path}\n+++ b/${path}\n(${midA.length} lines replaced by ${midB.length}; too large to show)\n`

  // LCS table over the changed middle.
  const lcs: Uint32Array[] = Array.from({length: midA.length + 1}, () => new Uint32Array(midB.length + 1))
  for (let i = midA.length - 1; i >= 0; i--) {
    for (let j = midB.length - 1; j >= 0; j--) {
      lcs[i]![j] = midA[i] === midB[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!)
    }
  }
  const ops: {op: ' ' | '-' | '+'; line: string}[] = []
  for (const line of a.slice(Math.max(0, start - context), start)) ops.push({op: ' ', line})
  let i = 0
  let j = 0
  while (i < midA.length || j < midB.length) {
    if (i < midA.length && j < midB.length && midA[i] === midB[j]) ops.push({op: ' ', line: midA[i++]!}), j++
    // Removals before additions, as diff prints them.
    else if (i < midA.length && (j === midB.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) ops.push({op: '-', line: midA[i++]!})
    else ops.push({op: '+', line: midB[j++]!})
  }
  for (const line of a.slice(endA, endA + context)) ops.push({op: ' ', line})
  const firstLine = Math.max(0, start - context) + 1
  const countA = ops.filter((o) => o.op !== '+').length
  const countB = ops.filter((o) => o.op !== '-').length
  return [`--- a/${path}`, `+++ b/${path}`, `@@ -${firstLine},${countA} +${firstLine},${countB} @@`, ...ops.map((o) => o.op + o.line), ''].join('\n')
}
