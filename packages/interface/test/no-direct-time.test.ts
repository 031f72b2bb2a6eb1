/**
 * Guard of injected time (issue 9): no package source reads the wall clock or sets a timer
 * directly. Time comes from an injected `Clock`; the real one is `systemClock` (src/clock.ts), the
 * virtual one the memory transport's scheduler. A line that really means the event loop (yield to
 * I/O with setImmediate, measure CPU time of a slice) ends with `// clock-exempt: <reason>`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

/** The two places that own time: the real clock and the virtual one. */
const EXEMPT_FILES = new Set([
  'packages/interface/src/clock.ts',
  'packages/transport-memory/src/scheduler.ts',
])

/**
 * Packages not converted yet: their findings are printed, not failed (the guard prints the listed
 * packages that have become clean). Every package takes its time from an injected Clock now.
 */
const PENDING: string[] = []

/** `raw`: matched in the source itself (the module name is a string), where the match starts in code. */
interface Rule { name: string; re: RegExp; raw?: boolean }

/** Direct uses of the real clock and of the event loop's timers (in code, not comments or strings). */
const RULES: Rule[] = [
  { name: 'Date.now(', re: /(?<![\w$.#])Date\s*\.\s*now\s*\(/g },
  { name: 'performance.now(', re: /(?<![\w$.#])performance\s*\.\s*now\s*\(/g },
  // `new Date()` reads the wall clock; `new Date(ms)` only formats a time taken elsewhere
  { name: 'new Date(', re: /(?<![\w$.#])new\s+Date\s*\(\s*\)/g },
  { name: 'setTimeout(', re: /(?<![\w$.#])setTimeout\s*\(|globalThis\s*\.\s*setTimeout\s*\(/g },
  { name: 'setInterval(', re: /(?<![\w$.#])setInterval\s*\(|globalThis\s*\.\s*setInterval\s*\(/g },
  { name: 'setImmediate(', re: /(?<![\w$.#])setImmediate\s*\(|globalThis\s*\.\s*setImmediate\s*\(/g },
  { name: 'AbortSignal.timeout(', re: /(?<![\w$.#])AbortSignal\s*\.\s*timeout\s*\(/g },
  { name: 'process.hrtime', re: /(?<![\w$.#])process\s*\.\s*hrtime\b/g },
  { name: "import from 'node:timers'", re: /\bfrom\s*(['"])(?:node:)?timers(?:\/promises)?\1|\bimport\s*\(\s*(['"])(?:node:)?timers(?:\/promises)?\2/g, raw: true },
]

const EXEMPT_COMMENT = /\/\/\s*clock-exempt:\s*\S/

/**
 * Replaces comments, string and template text and regex literals with spaces (newlines kept), so
 * the rules only see code. Template substitutions (`${...}`) stay code.
 */
function maskNonCode(src: string): string {
  const out = src.split('')
  const blank = (i: number): void => { if (out[i] !== '\n') out[i] = ' ' }
  /** Brace depth per open template substitution. */
  const templates: number[] = []
  let depth = 0
  let i = 0
  const n = src.length
  /** Whether a `/` at this point starts a regex literal (after an operator or keyword, not a value). */
  const regexAllowed = (at: number): boolean => {
    let j = at - 1
    while (j >= 0 && /\s/.test(src[j] as string)) j--
    if (j < 0) return true
    const c = src[j] as string
    if ('(,=:[!&|?{};+-*%<>~^'.includes(c)) return true
    const word = /[\w$]+$/.exec(src.slice(Math.max(0, j - 10), j + 1))?.[0]
    return word !== undefined && ['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await'].includes(word)
  }
  const skipString = (q: string): void => {
    blank(i); i++
    while (i < n && src[i] !== q && src[i] !== '\n') {
      if (src[i] === '\\') { blank(i); i++ }
      blank(i); i++
    }
    if (i < n) { blank(i); i++ }
  }
  /** Template text from i (just after the backtick or a closing `}`) to the end or the next `${`. */
  const skipTemplate = (): void => {
    while (i < n) {
      const c = src[i]
      if (c === '\\') { blank(i); blank(i + 1); i += 2; continue }
      if (c === '`') { blank(i); i++; return }
      if (c === '$' && src[i + 1] === '{') { blank(i); blank(i + 1); i += 2; templates.push(depth); return }
      blank(i); i++
    }
  }
  while (i < n) {
    const c = src[i] as string
    const next = src[i + 1]
    if (c === '/' && next === '/') {
      while (i < n && src[i] !== '\n') { blank(i); i++ }
    } else if (c === '/' && next === '*') {
      while (i < n && !(src[i] === '*' && src[i + 1] === '/')) { blank(i); i++ }
      if (i < n) { blank(i); blank(i + 1); i += 2 }
    } else if (c === "'" || c === '"') {
      skipString(c)
    } else if (c === '`') {
      blank(i); i++
      skipTemplate()
    } else if (c === '/' && regexAllowed(i)) {
      blank(i); i++
      let inClass = false
      while (i < n && src[i] !== '\n') {
        const d = src[i]
        if (d === '\\') { blank(i); blank(i + 1); i += 2; continue }
        if (d === '[') inClass = true
        else if (d === ']') inClass = false
        else if (d === '/' && !inClass) break
        blank(i); i++
      }
      if (i < n && src[i] === '/') { blank(i); i++ }
    } else if (c === '{') {
      depth++; i++
    } else if (c === '}') {
      if (templates.length > 0 && templates[templates.length - 1] === depth) {
        templates.pop()
        blank(i); i++
        skipTemplate()
      } else {
        depth--; i++
      }
    } else {
      i++
    }
  }
  return out.join('')
}

/**
 * True when the match at `at` (a name followed by `(`) declares a method of that name (a Clock's
 * `setTimeout(fn, ms): TimerHandle` or `setTimeout(fn, ms) {`) instead of calling the global.
 */
function isMethodDeclaration(code: string, at: number, matched: string): boolean {
  if (!/^set(Timeout|Interval|Immediate)/.test(matched)) return false
  let j = at + matched.length - 1 // the opening parenthesis
  let level = 0
  for (; j < code.length; j++) {
    if (code[j] === '(') level++
    else if (code[j] === ')' && --level === 0) break
  }
  let k = j + 1
  while (k < code.length && /\s/.test(code[k] as string)) k++
  if (code[k] !== ':' && code[k] !== '{') return false
  const before = code.slice(Math.max(0, at - 40), at).replace(/\b(public|private|protected|override|static|async|readonly)\s*$/, '').trimEnd()
  const prev = before.at(-1)
  return prev === undefined || '{};,'.includes(prev) || /\n\s*$/.test(code.slice(Math.max(0, at - 40), at))
}

interface Finding { file: string; line: number; rule: string; text: string }

/** The direct time uses in one source text (lines marked `// clock-exempt: <reason>` excepted). */
function findDirectTime(file: string, src: string): Finding[] {
  const code = maskNonCode(src)
  const lines = src.split('\n')
  const starts: number[] = [0]
  for (let p = src.indexOf('\n'); p !== -1; p = src.indexOf('\n', p + 1)) starts.push(p + 1)
  const lineOf = (pos: number): number => {
    let lo = 0
    let hi = starts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if ((starts[mid] as number) <= pos) lo = mid
      else hi = mid - 1
    }
    return lo + 1
  }
  const found: Finding[] = []
  for (const rule of RULES) {
    const text = rule.raw === true ? src : code
    rule.re.lastIndex = 0
    for (let m = rule.re.exec(text); m !== null; m = rule.re.exec(text)) {
      if (rule.raw === true && code.slice(m.index, m.index + 4) !== src.slice(m.index, m.index + 4)) continue // in a comment or string
      if (isMethodDeclaration(code, m.index, m[0])) continue
      const line = lineOf(m.index)
      const lineText = lines[line - 1] as string
      if (EXEMPT_COMMENT.test(lineText)) continue
      found.push({ file, line, rule: rule.name, text: lineText.trim() })
    }
  }
  return found.sort((a, b) => a.line - b.line)
}

function sourceFiles(dir: string): string[] {
  const files: string[] = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) files.push(...sourceFiles(p))
    else if (/\.[cm]?ts$/.test(name)) files.push(p)
  }
  return files
}

function scanRepo(): { byPackage: Map<string, Finding[]>; scanned: number } {
  const byPackage = new Map<string, Finding[]>()
  let scanned = 0
  const packages = join(ROOT, 'packages')
  for (const pkg of readdirSync(packages).sort()) {
    const src = join(packages, pkg, 'src')
    let files: string[]
    try {
      files = sourceFiles(src)
    } catch {
      continue // no src/
    }
    const list: Finding[] = []
    for (const f of files.sort()) {
      const rel = relative(ROOT, f).split('\\').join('/')
      scanned++
      if (EXEMPT_FILES.has(rel)) continue
      list.push(...findDirectTime(rel, readFileSync(f, 'utf8')))
    }
    byPackage.set(pkg, list)
  }
  return { byPackage, scanned }
}

const format = (fs: Finding[]): string => fs.map((f) => `${f.file}:${f.line}  ${f.rule}  ${f.text.slice(0, 120)}`).join('\n')

describe('the scanner', () => {
  it('finds direct calls in code, not in comments, strings, regexes or Clock method calls and declarations', () => {
    const src = [
      "const a = Date.now()",                                   // 1 flagged
      "// Date.now() in a comment",                            // 2
      "const s = 'setTimeout(' + \"performance.now()\"",        // 3
      "const t = `at ${Date.now()} and setInterval( text`",    // 4 flagged (substitution is code)
      "clock.setTimeout(fn, 1); this.#clock.setTimeout(fn, 2)", // 5
      "/* new Date( */ const r = /setImmediate\\(/",           // 6
      "setTimeout(fn: () => void, ms: number): TimerHandle",   // 7 (a declaration)
      "  setTimeout(fn, ms) { return this.at(fn, ms) }",      // 8 (a declaration)
      "await new Promise((r) => setImmediate(r)) // clock-exempt: yields to I/O", // 9
      "await new Promise((r) => setImmediate(r)) // clock-exempt:", // 10 flagged (no reason)
      "x = ok ? setTimeout(f, 1) : 0",                          // 11 flagged
      "const d = new Date(); globalThis.setTimeout(f, 1); new Date(ts)",    // 12 flagged twice (not new Date(ts))
      "const s2 = AbortSignal.timeout(5); process.hrtime.bigint()", // 13 flagged twice
      "import { setTimeout as sleep } from 'node:timers/promises'", // 14 flagged
      "const url = 'klp://a'; setInterval(f, 5)",              // 15 flagged (after a // in a string)
      "// import { setTimeout } from 'node:timers'",           // 16
    ].join('\n')
    const found = findDirectTime('x.ts', src).map((f) => `${f.line}:${f.rule}`)
    expect(found).toEqual([
      '1:Date.now(', '4:Date.now(', '10:setImmediate(', '11:setTimeout(', '12:new Date(', '12:setTimeout(',
      '13:AbortSignal.timeout(', '13:process.hrtime', "14:import from 'node:timers'", '15:setInterval(',
    ])
  })
})

describe('injected time everywhere (issue 9)', () => {
  it('no package source takes time or sets timers directly (outside the clock, the simulator and PENDING)', () => {
    const { byPackage, scanned } = scanRepo()
    expect(scanned).toBeGreaterThan(50)
    const offending: Finding[] = []
    const pending: string[] = []
    for (const [pkg, list] of byPackage) {
      if (PENDING.includes(pkg)) {
        if (list.length > 0) pending.push(`${pkg}: ${list.length}`)
        continue
      }
      offending.push(...list)
    }
    if (pending.length > 0) console.info(`injected time, still pending (TODO): ${pending.join(', ')}`)
    // a listed package without findings can leave PENDING (not a failure: packages being converted
    // right now may be clean for a moment)
    const clean = PENDING.filter((p) => byPackage.has(p) && (byPackage.get(p) as Finding[]).length === 0)
    if (clean.length > 0) console.info(`injected time: no findings in ${clean.join(', ')}; remove from PENDING in ${relative(ROOT, fileURLToPath(import.meta.url))}`)
    expect(offending.map((f) => `${f.file}:${f.line} ${f.rule}`), `direct time use (take it from the injected Clock, or end the line with // clock-exempt: <reason>):\n${format(offending)}\n`).toEqual([])
  })
})
