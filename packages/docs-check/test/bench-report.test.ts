/**
 * scripts/bench-report.mjs on the committed bench-results: every result with a same-run baseline
 * appears in docs/BENCHMARKS.md with its ratio, groups without results say "not yet measured", the
 * published IPFS figures keep their sources, and every chart is well-formed XML.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: a plain ES module without types (also run as `node scripts/bench-report.mjs`)
import { GROUPS, ROOT, assign, chartSvg, fmtRatio, generate, hasBaseline, readResults } from '../../../scripts/bench-report.mjs'

interface Row { name: string; value: number; baseline?: number | null; ratio?: number | null; unit?: string }

/** Checks that `text` is well-formed XML (elements nest and close, attributes are quoted, entities known); returns the root element's name. */
function parseXml(text: string): string {
  const stack: string[] = []
  let root: string | undefined
  const re = /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|<|&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/g
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const [all, close, name, , selfClose] = m
    if (all.startsWith('<!--') || all.startsWith('<?')) continue
    if (name === undefined) throw new Error(`not well-formed at ${m.index}: ${JSON.stringify(text.slice(m.index, m.index + 40))}`)
    if (close === '/') {
      if (stack.pop() !== name) throw new Error(`mismatched </${name}> at ${m.index}`)
    } else {
      if (stack.length === 0) {
        if (root !== undefined) throw new Error('more than one root element')
        root = name
      }
      if (selfClose !== '/') stack.push(name)
    }
  }
  if (stack.length > 0 || root === undefined) throw new Error(`unclosed elements: ${stack.join(', ')}`)
  return root
}

describe('bench report', () => {
  const { markdown, svgs } = generate() as { markdown: string; svgs: Map<string, string> }
  const results = readResults() as Array<{ file: string; rows: Row[] }>
  const lines = markdown.split('\n')

  it('lists every result with a baseline, with its ratio, on one table row', () => {
    let checked = 0
    for (const res of results) {
      for (const row of res.rows.filter((r) => hasBaseline(r))) {
        const name = row.name.replace(/\|/g, '\\|')
        const line = lines.find((l) => l.startsWith(`| ${name} |`) && l.includes(`| ${fmtRatio(row)}`) && l.includes(`| ${res.file}`))
        expect(line, `${res.file}: ${row.name}`).toBeDefined()
        checked++
      }
    }
    expect(checked).toBeGreaterThan(50)
  })

  it('says "not yet measured" for a group without results, and quotes the published figures with sources', () => {
    const groups = assign(results) as Record<string, unknown[]>
    const sections = markdown.split('\n## ')
    for (const g of GROUPS as Array<{ id: string; title: string }>) {
      const section = sections.find((s) => s.startsWith(g.title))
      expect(section, g.title).toBeDefined()
      expect(section?.includes('Not yet measured'), g.title).toBe((groups[g.id] ?? []).length === 0)
    }
    expect(markdown).toContain('Design\nand Evaluation of IPFS')
    expect(markdown).toContain('[1] D. Trautwein')
  })

  it('draws well-formed SVG charts, each linked from the report', () => {
    expect(svgs.size).toBeGreaterThan(3)
    for (const [name, svg] of svgs) {
      expect(parseXml(svg), name).toBe('svg')
      expect(markdown).toContain(`(bench/${name})`)
    }
    // names and units from the results are escaped
    expect(parseXml(chartSvg('a < b & "c"', [{ file: 'x', row: { name: '<script>&', value: 1, baseline: 2, unit: 'µs', baselineName: 'a"b' } }]))).toBe('svg')
    expect(() => parseXml('<svg><g></svg>')).toThrow()
  })

  it('leaves well-formed charts in docs/bench (pnpm bench:report redraws them)', () => {
    const committed = readdirSync(join(ROOT, 'docs', 'bench')).filter((f) => f.endsWith('.svg'))
    for (const f of committed) expect(parseXml(readFileSync(join(ROOT, 'docs', 'bench', f), 'utf8')), f).toBe('svg')
  })
})
