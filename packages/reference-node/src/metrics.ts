/**
 * A small metrics registry and the Prometheus text exposition format (version 0.0.4): counters,
 * gauges and histograms with labels, rendered as `# HELP`, `# TYPE` and samples. No dependency;
 * the node builds a fresh set of families for each scrape from its components' snapshots.
 */
import { InvalidParametersError } from '@kos-mesh/interface'

export type MetricType = 'counter' | 'gauge' | 'histogram'
export type Labels = Record<string, string>

/** One sample: value and labels (histogram families hold `HistogramSnapshot`s instead). */
export interface Sample {
  labels?: Labels
  value: number
}

export interface HistogramSnapshot {
  labels?: Labels
  /** Upper bounds, ascending (without +Inf). */
  buckets: readonly number[]
  /** Cumulative counts per bound (same length as `buckets`). */
  counts: readonly number[]
  count: number
  sum: number
}

export interface MetricFamily {
  name: string
  help: string
  type: MetricType
  samples?: Sample[]
  histograms?: HistogramSnapshot[]
}

/** Content type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** Default latency buckets, seconds (1 ms .. 30 s). */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/** A histogram of observations (e.g. seconds), one per label set. */
export class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; count: number; sum: number }>()

  constructor(readonly buckets: readonly number[] = LATENCY_BUCKETS) {
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i] as number
      if (!Number.isFinite(b) || (i > 0 && b <= (buckets[i - 1] as number))) throw new InvalidParametersError(`expected ascending finite bucket bounds, got ${buckets.join(', ')}`)
    }
  }

  observe(value: number, labels: Labels = {}): void {
    if (!Number.isFinite(value)) return
    const key = labelKey(labels)
    let s = this.series.get(key)
    if (s === undefined) {
      s = { labels: { ...labels }, counts: this.buckets.map(() => 0), count: 0, sum: 0 }
      this.series.set(key, s)
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] as number)) s.counts[i] = (s.counts[i] as number) + 1
    s.count++
    s.sum += value
  }

  snapshot(): HistogramSnapshot[] {
    return [...this.series.values()].map((s) => ({ labels: s.labels, buckets: this.buckets, counts: [...s.counts], count: s.count, sum: s.sum }))
  }
}

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k] ?? ''}`)
    .join('\u0000')
}

/** A label value escaped for the text format (backslash, double quote, line feed). */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

/** A sample value: integers as is, `+Inf`, `-Inf`, `NaN`, else the shortest decimal. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}

function formatLabels(labels: Labels | undefined, extra?: [string, string]): string {
  const entries = Object.entries(labels ?? {})
  if (extra !== undefined) entries.push(extra)
  if (entries.length === 0) return ''
  for (const [k] of entries) if (!LABEL_RE.test(k) || k.startsWith('__')) throw new InvalidParametersError(`expected a label name [a-zA-Z_][a-zA-Z0-9_]*, got ${JSON.stringify(k)}`)
  return `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`
}

/** Renders families in the Prometheus text format (each family once; names checked). */
export function renderPrometheus(families: readonly MetricFamily[]): string {
  const seen = new Set<string>()
  const out: string[] = []
  for (const f of families) {
    if (!NAME_RE.test(f.name)) throw new InvalidParametersError(`expected a metric name [a-zA-Z_:][a-zA-Z0-9_:]*, got ${JSON.stringify(f.name)}`)
    if (seen.has(f.name)) throw new InvalidParametersError(`expected each metric family once, got ${f.name} twice`)
    seen.add(f.name)
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`)
    out.push(`# TYPE ${f.name} ${f.type}`)
    if (f.type === 'histogram') {
      for (const h of f.histograms ?? []) {
        for (let i = 0; i < h.buckets.length; i++) out.push(`${f.name}_bucket${formatLabels(h.labels, ['le', formatValue(h.buckets[i] as number)])} ${formatValue(h.counts[i] as number)}`)
        out.push(`${f.name}_bucket${formatLabels(h.labels, ['le', '+Inf'])} ${formatValue(h.count)}`)
        out.push(`${f.name}_sum${formatLabels(h.labels)} ${formatValue(h.sum)}`)
        out.push(`${f.name}_count${formatLabels(h.labels)} ${formatValue(h.count)}`)
      }
    } else {
      for (const s of f.samples ?? []) out.push(`${f.name}${formatLabels(s.labels)} ${formatValue(s.value)}`)
    }
  }
  return out.join('\n') + '\n'
}
