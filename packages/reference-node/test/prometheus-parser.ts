/**
 * A small, strict parser of the Prometheus text exposition format (0.0.4), for the tests: it
 * rejects what a scraper would reject (bad names, bad label syntax or escapes, samples before
 * their TYPE, a family declared twice, duplicate series, histograms whose buckets are not
 * cumulative or lack +Inf = _count) and returns the families with their samples.
 */

export interface ParsedSample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface ParsedFamily {
  name: string
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'
  help: string
  samples: ParsedSample[]
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/

function parseValue(s: string, line: number): number {
  if (s === '+Inf') return Infinity
  if (s === '-Inf') return -Infinity
  if (s === 'NaN') return Number.NaN
  if (!/^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/.test(s)) throw new Error(`line ${line}: expected a float value, got ${JSON.stringify(s)}`)
  return Number(s)
}

/** Parses `{a="x",b="y"}` starting at `i` (the brace); returns the labels and the index after `}`. */
function parseLabels(text: string, i: number, line: number): [Record<string, string>, number] {
  const labels: Record<string, string> = {}
  i++ // {
  for (;;) {
    if (text[i] === '}') return [labels, i + 1]
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(text.slice(i))
    if (m === null) throw new Error(`line ${line}: expected a label name at ${i}, got ${JSON.stringify(text.slice(i, i + 10))}`)
    const name = m[0]
    i += name.length
    if (text[i] !== '=' || text[i + 1] !== '"') throw new Error(`line ${line}: expected =" after label ${name}`)
    i += 2
    let value = ''
    for (;;) {
      const c = text[i]
      if (c === undefined) throw new Error(`line ${line}: unterminated label value`)
      if (c === '"') break
      if (c === '\\') {
        const e = text[i + 1]
        if (e === '\\') value += '\\'
        else if (e === '"') value += '"'
        else if (e === 'n') value += '\n'
        else throw new Error(`line ${line}: bad escape \\${String(e)} in a label value`)
        i += 2
        continue
      }
      if (c === '\n') throw new Error(`line ${line}: raw newline in a label value`)
      value += c
      i++
    }
    i++ // closing quote
    if (name in labels) throw new Error(`line ${line}: label ${name} twice`)
    if (!LABEL.test(name)) throw new Error(`line ${line}: bad label name ${name}`)
    labels[name] = value
    if (text[i] === ',') {
      i++
      continue
    }
    if (text[i] !== '}') throw new Error(`line ${line}: expected , or } after a label, got ${JSON.stringify(text[i])}`)
  }
}

export function parsePrometheus(text: string): Map<string, ParsedFamily> {
  if (!text.endsWith('\n')) throw new Error('expected the exposition to end with a newline')
  const families = new Map<string, ParsedFamily>()
  const seenSeries = new Set<string>()
  let current: ParsedFamily | undefined
  const lines = text.split('\n')
  lines.pop()
  lines.forEach((raw, idx) => {
    const line = idx + 1
    if (raw.length === 0) return
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([^ ]+) ?(.*)$/.exec(raw)
      if (m === null) return // a comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string]
      if (!NAME.test(name)) throw new Error(`line ${line}: bad metric name ${name}`)
      let f = families.get(name)
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`line ${line}: bad type ${rest}`)
        if (f !== undefined && (f.samples.length > 0 || f.type !== 'untyped')) throw new Error(`line ${line}: TYPE of ${name} after its samples or twice`)
        if (f === undefined) {
          f = { name, type: rest as ParsedFamily['type'], help: '', samples: [] }
          families.set(name, f)
        } else f.type = rest as ParsedFamily['type']
      } else {
        if (f === undefined) {
          f = { name, type: 'untyped', help: rest, samples: [] }
          families.set(name, f)
        } else if (f.help !== '') throw new Error(`line ${line}: HELP of ${name} twice`)
        else f.help = rest
      }
      current = f
      return
    }
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(raw)
    if (nm === null) throw new Error(`line ${line}: expected a metric name, got ${JSON.stringify(raw.slice(0, 20))}`)
    const sampleName = nm[0]
    let i = sampleName.length
    let labels: Record<string, string> = {}
    if (raw[i] === '{') [labels, i] = parseLabels(raw, i, line)
    if (raw[i] !== ' ') throw new Error(`line ${line}: expected a space before the value`)
    const parts = raw.slice(i + 1).split(' ')
    if (parts.length > 2 || parts[0] === '') throw new Error(`line ${line}: expected a value and an optional timestamp, got ${JSON.stringify(raw.slice(i + 1))}`)
    const value = parseValue(parts[0] as string, line)
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`line ${line}: bad timestamp ${parts[1]}`)
    // the family of a sample: itself, or the histogram/summary it is a _bucket/_sum/_count of
    const base = sampleName.replace(/_(bucket|sum|count)$/, '')
    const fam = families.get(sampleName) ?? (base !== sampleName ? families.get(base) : undefined)
    if (fam === undefined || fam !== current) throw new Error(`line ${line}: sample ${sampleName} outside its family (no TYPE before it, or interleaved)`)
    if (fam.type === 'histogram') {
      if (!/_(bucket|sum|count)$/.test(sampleName)) throw new Error(`line ${line}: histogram ${fam.name} has a plain sample ${sampleName}`)
      if (sampleName.endsWith('_bucket') && labels.le === undefined) throw new Error(`line ${line}: bucket without le`)
    } else if (sampleName !== fam.name) {
      throw new Error(`line ${line}: sample ${sampleName} in family ${fam.name}`)
    }
    if ((fam.type === 'counter' || fam.type === 'histogram') && (value < 0 || Number.isNaN(value))) throw new Error(`line ${line}: ${fam.type} ${sampleName} is ${value}`)
    const key = `${sampleName}{${Object.keys(labels).sort().map((k) => `${k}=${labels[k] ?? ''}`).join(',')}}`
    if (seenSeries.has(key)) throw new Error(`line ${line}: series ${key} twice`)
    seenSeries.add(key)
    fam.samples.push({ name: sampleName, labels, value })
  })
  // histograms: cumulative buckets, +Inf equal to _count, a _sum per series
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue
    const series = new Map<string, ParsedSample[]>()
    for (const s of f.samples) {
      const { le: _le, ...rest } = s.labels
      const key = JSON.stringify(Object.entries(rest).sort())
      series.set(key, [...(series.get(key) ?? []), s])
    }
    for (const [key, samples] of series) {
      const buckets = samples.filter((s) => s.name.endsWith('_bucket')).map((s) => ({ le: parseValue(s.labels.le as string, 0), v: s.value }))
      for (let k = 1; k < buckets.length; k++) {
        if ((buckets[k] as { le: number }).le <= (buckets[k - 1] as { le: number }).le) throw new Error(`${f.name}${key}: bucket bounds not ascending`)
        if ((buckets[k] as { v: number }).v < (buckets[k - 1] as { v: number }).v) throw new Error(`${f.name}${key}: buckets not cumulative`)
      }
      const inf = buckets.at(-1)
      const count = samples.find((s) => s.name === `${f.name}_count`)
      if (inf === undefined || inf.le !== Infinity) throw new Error(`${f.name}${key}: no +Inf bucket`)
      if (count === undefined || count.value !== inf.v) throw new Error(`${f.name}${key}: _count differs from the +Inf bucket`)
      if (samples.find((s) => s.name === `${f.name}_sum`) === undefined) throw new Error(`${f.name}${key}: no _sum`)
    }
  }
  return families
}

/** The value of the sample of `family` with exactly these labels (undefined when absent). */
export function sampleValue(families: Map<string, ParsedFamily>, family: string, labels: Record<string, string> = {}, name = family): number | undefined {
  const f = families.get(family)
  const want = JSON.stringify(Object.entries(labels).sort())
  return f?.samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want)?.value
}
