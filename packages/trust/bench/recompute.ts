/**
 * Recompute benchmark: a graph of 10,000 DIDs and 100,000 statements (attestations, deltas,
 * revocations; seeded PRNG). Times `recompute()` (median of runs) against a baseline measured in
 * the same run (building a Map of the same statements by id plus per-issuer lists: the least any
 * index of them costs), the heap the engine holds against the heap of that Map, and `check()` per
 * call against a bare `Map.get` (paired, interleaved batches on CPU time).
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createTrustEngine } from '../src/engine/index.js'
import type { AttestationBody, DeltaBody, RevocationBody, SignedStatement, StatementBody, TrustGraphEngine } from '../src/types.js'
import { mulberry32, type TrustRequirements } from '@kos-mesh/interface'
import { row, type BenchRow } from '../../../scripts/bench-util.js'
import { paired, quantile } from '../../../scripts/bench-paired.js'

const DIDS = 10_000
const STATEMENTS = 100_000
const DELTAS = 10_000
const REVOCATIONS = 2_000
const ANCHORS = 20
const RUNS = Number(process.env.BENCH_RUNS ?? 9)
const DAY = 86_400_000
const HOUR = 3_600_000
const NOW = Date.UTC(2030, 0, 1)

const prng = mulberry32

const did = (i: number): string => `did:key:z6MkBench${i.toString(36).padStart(6, '0')}`

export function buildStatements(seed = 42): SignedStatement[] {
  const rnd = prng(seed)
  const pick = (): number => Math.floor(rnd() * DIDS)
  const out: SignedStatement[] = []
  const bytes = new Uint8Array(0)
  let n = 0
  const push = (body: StatementBody): void => {
    out.push({ id: `bafy${(n++).toString(36).padStart(10, '0')}`, body, bytes })
  }
  const attestations = STATEMENTS - DELTAS - REVOCATIONS
  const atts: Array<{ id: string; body: AttestationBody }> = []
  for (let i = 0; i < attestations; i++) {
    const issuer = i < 50 ? 0 : pick()
    let subject = pick()
    if (subject === issuer) subject = (subject + 1) % DIDS
    const issuedAt = NOW - Math.floor(rnd() * 180 * DAY)
    const body: AttestationBody = { v: 1, kind: 'attestation', issuer: did(issuer), subject: did(subject), issued_at: issuedAt, claim: rnd() < 0.7 ? 'trust' : 'endorse', level: 1 + Math.floor(rnd() * 10), context: '*', expires_at: issuedAt + 365 * DAY }
    push(body)
    atts.push(out[out.length - 1] as { id: string; body: AttestationBody })
  }
  const window0 = Math.floor(NOW / HOUR) * HOUR
  for (let i = 0; i < DELTAS; i++) {
    const window = window0 - Math.floor(rnd() * 24 * 14) * HOUR
    const body: DeltaBody = { v: 1, kind: 'delta', issuer: did(pick()), subject: did(pick()), issued_at: window + HOUR, window, window_ms: HOUR, counts: { task_ok: Math.floor(rnd() * 50), task_failed: Math.floor(rnd() * 5), timeout: Math.floor(rnd() * 3) }, expires_at: window + HOUR + 28 * DAY }
    push(body)
  }
  for (let i = 0; i < REVOCATIONS; i++) {
    const r = rnd()
    let body: RevocationBody
    if (r < 0.5) {
      const target = atts[Math.floor(rnd() * atts.length)]!
      body = { v: 1, kind: 'revocation', issuer: target.body.issuer, subject: target.body.subject, issued_at: NOW - 1, scope: 'statement', statement: target.id }
    } else if (r < 0.95) {
      body = { v: 1, kind: 'revocation', issuer: did(pick()), subject: did(pick()), issued_at: NOW - 1, scope: 'attestations' }
    } else {
      const d = did(pick())
      body = { v: 1, kind: 'revocation', issuer: d, subject: d, issued_at: NOW - 1, scope: 'key' }
    }
    push(body)
  }
  return out
}

export function buildEngine(statements: readonly SignedStatement[]): TrustGraphEngine {
  const clock = { now: () => NOW, setTimeout: () => ({ at: 0 }), clearTimeout: () => {}, sleep: async () => {} }
  const engine = createTrustEngine({ self: did(0), maxStatementsPerIssuerPerMinute: 1e12 }, { clock })
  const rnd = prng(7)
  for (let i = 0; i < ANCHORS; i++) engine.setAnchor({ did: did(1 + Math.floor(rnd() * (DIDS - 1))), level: 5 + Math.floor(rnd() * 6), validator: i < 3 })
  for (const st of statements) engine.add(st)
  return engine
}

function baselineIndex(statements: readonly SignedStatement[]): Map<string, SignedStatement> {
  const byId = new Map<string, SignedStatement>()
  const byIssuer = new Map<string, SignedStatement[]>()
  for (const st of statements) {
    byId.set(st.id, st)
    let l = byIssuer.get(st.body.issuer)
    if (l === undefined) byIssuer.set(st.body.issuer, (l = []))
    l.push(st)
  }
  return byId
}

const gc = (): void => (globalThis as { gc?: () => void }).gc?.()

function heapAfter(make: () => unknown): { bytes: number; keep: unknown } {
  gc()
  const before = process.memoryUsage().heapUsed
  const keep = make()
  gc()
  return { bytes: process.memoryUsage().heapUsed - before, keep }
}

function medianMs(fn: () => unknown, runs: number): number {
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    fn()
    times.push(performance.now() - t0)
  }
  return quantile(times, 0.5)
}

export async function run(): Promise<BenchRow[]> {
  const statements = buildStatements()
  const engine = buildEngine(statements)
  engine.recompute()
  const held = engine.size
  // recompute vs the baseline index, alternating runs
  medianMs(() => engine.recompute(), 2)
  medianMs(() => baselineIndex(statements), 2)
  const recomputes: number[] = []
  const baselines: number[] = []
  for (let i = 0; i < RUNS; i++) {
    let t0 = performance.now()
    engine.recompute()
    recomputes.push(performance.now() - t0)
    t0 = performance.now()
    baselineIndex(statements)
    baselines.push(performance.now() - t0)
  }
  const recomputeMs = quantile(recomputes, 0.5)
  const baselineMs = quantile(baselines, 0.5)

  // heap held: the engine (store, indexes, score table) vs a Map of the same statements
  const engineHeap = heapAfter(() => {
    const e = buildEngine(statements)
    e.recompute()
    return e
  })
  const mapHeap = heapAfter(() => baselineIndex(statements))
  void engineHeap.keep
  void mapHeap.keep

  // check() per call vs Map.get on the same subjects
  const subjects = Array.from({ length: 1024 }, (_, i) => did((i * 9973) % DIDS))
  const req: TrustRequirements = { minimum_trust_score: 1, required_endorsements: 0, verification_level: 'basic' }
  const plain = new Map(subjects.map((s) => [s, { trust_score: 1 }]))
  let k = 0
  let sink = 0
  const OPS = 256
  const checkSide = {
    ops: OPS,
    run: () => {
      for (let i = 0; i < OPS; i++) if (engine.check(subjects[k++ & 1023]!, req).passed) sink++
    },
  }
  const mapSide = {
    ops: OPS,
    run: () => {
      for (let i = 0; i < OPS; i++) if ((plain.get(subjects[k++ & 1023]!)?.trust_score ?? 0) >= 1) sink++
    },
  }
  const p = await paired(checkSide, mapSide, { batchMs: 2 })
  if (sink < 0) console.log(sink)
  const checkNs = p.aUs * 1000
  const mapNs = p.bUs * 1000

  // the check against the per-message budget: one bare native Ed25519 verify (klp-router's bench)
  let verifyNs: number | undefined
  try {
    const router = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench-results', 'klp-router.json'), 'utf8')) as { results?: BenchRow[] }
    const bare = router.results?.find((r) => r.name.startsWith('bare native verify'))
    if (bare !== undefined && bare.value > 0) verifyNs = 1e9 / bare.value
  } catch {
    // no router figures: the row is left out
  }

  const rows: BenchRow[] = [
    row('trust recompute, 10,000 DIDs / 100,000 statements (median of runs)', 'ms', recomputeMs, { name: 'Map by id + per-issuer lists of the same statements', value: baselineMs }, { higherIsBetter: false }),
    row('trust engine heap, 100,000 statements held + score table', 'MB', engineHeap.bytes / 2 ** 20, { name: 'Map by id + per-issuer lists of the same statements', value: mapHeap.bytes / 2 ** 20 }, { higherIsBetter: false }),
    row('trust check() per call (paired)', 'ns', checkNs, { name: 'Map.get + compare', value: mapNs }, { higherIsBetter: false, ratio: Math.round(p.ratio * 10_000) / 10_000 }),
  ]
  if (verifyNs !== undefined) {
    rows.push(row('trust check() share of one message (bare native verify, bench-results/klp-router.json)', 'ns', checkNs, { name: 'bare native verify', value: verifyNs }, { higherIsBetter: false, target: '<= 0.02' }))
  }
  console.log(`recompute: ${held} statements held, runs ${recomputes.map((x) => x.toFixed(0)).join(' ')} ms; check/Map.get pair IQR ${p.ratioQ1.toFixed(2)}-${p.ratioQ3.toFixed(2)} (${p.pairs} pairs, ${p.clock} clock)`)
  return rows
}
