// Sums the vitest JSON reports of every workspace package and prints one closing line:
// "tests: N passed, N failed, N skipped". Exits non-zero when anything failed or nothing ran.
// A run that skipped anything names the packages that skipped, just above the closing line (a fresh
// clone skips nothing: the crypto vectors are in vectors/).
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

let passed = 0
let failed = 0
let skipped = 0
const rows = []
const skippers = []
for (const group of ['packages', 'examples']) {
  if (!existsSync(group)) continue
  for (const dir of readdirSync(group)) {
    const file = join(group, dir, '.test-results', 'vitest.json')
    if (!existsSync(file)) continue
    const r = JSON.parse(readFileSync(file, 'utf8'))
    const p = r.numPassedTests ?? 0
    const f = (r.numFailedTests ?? 0) + (r.numFailedTestSuites ?? 0)
    const s = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0)
    passed += p; failed += f; skipped += s
    if (s > 0) skippers.push(`${group}/${dir} (${s})`)
    rows.push(`${`${group}/${dir}`.padEnd(44)} ${String(p).padStart(5)} passed ${String(f).padStart(3)} failed${s > 0 ? ` ${String(s).padStart(3)} SKIPPED` : ''}`)
  }
}
console.log(rows.join('\n'))
if (skippers.length > 0) console.log(`SKIPPED tests in: ${skippers.join(', ')} (vitest's output above says which)`)
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failed > 0 || passed === 0 ? 1 : 0)
