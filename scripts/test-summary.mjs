// Sums the vitest JSON reports of every workspace package and prints one closing line:
// "tests: N passed, N failed, N skipped". Exits non-zero when anything failed or nothing ran.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

let passed = 0
let failed = 0
let skipped = 0
const rows = []
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
    rows.push(`${`${group}/${dir}`.padEnd(44)} ${String(p).padStart(5)} passed ${String(f).padStart(3)} failed`)
  }
}
console.log(rows.join('\n'))
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failed > 0 || passed === 0 ? 1 : 0)
