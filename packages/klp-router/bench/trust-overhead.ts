/**
 * The trust check's cost in the pipeline (DESIGN.md §4: "the trust check adds at most 2 % to the
 * pipeline"). The same pipeline measurement as bench/index.ts (pre-signed frames through the whole
 * inbound path: envelope, decode, queue, expiry, revocation, replay window, signature verify, trust
 * check, dispatch), twice in the same run, interleaved:
 *   (a) the default engine, an empty `staticTrustEngine()`, and messages that ask for nothing;
 *   (b) `createTrustEngine({ self })` holding a web of trust of 10,000 DIDs and 100,000 attestations
 *       (10 anchors), where the signer is reached by a path from an anchor and endorsed, and every
 *       message asks `minimum_trust_score 3, required_endorsements 1, verification_level basic`, so
 *       the check does real work (and passes: any reject fails the bench).
 * Both sides: the same signer, the same node identity, frames of the same shape. `paired` alternates
 * ~4 ms batches of (b) and (a) in random order on process CPU time; the overhead is the median of
 * the per-pair ratios tB / tA, minus 1. Several rounds; the rows give the median over rounds.
 * Rows go to bench-results/trust.json (merged by row name with the rows other benches put there) and
 * to klp-router's usual file (through bench/index.ts, or merged by name when run alone).
 * Run: npx tsx bench/trust-overhead.ts   (BENCH_SECONDS, TRUST_ROUNDS, TRUST_DIDS, TRUST_STATEMENTS)
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createSignatureVerifier, generateIdentity } from '@kos-mesh/did-security'
import { VerificationLevel, type TrustRequirements, mulberry32 } from '@kos-mesh/interface'
import { createTrustEngine, staticTrustEngine, type AttestationBody, type SignedStatement, type TrustGraphEngine } from '@kos-mesh/trust'
import { row, type BenchRow } from '../../../scripts/bench-util.js'
import { clockName, paired, quantile, type PairedResult } from '../../../scripts/bench-paired.js'
import { BATCH, POOL, makeFrames, pipeline } from './harness.js'

const DIDS = Number(process.env.TRUST_DIDS ?? 10_000)
const STATEMENTS = Number(process.env.TRUST_STATEMENTS ?? 100_000)
const ROUNDS = Number(process.env.TRUST_ROUNDS ?? 5)
const ANCHORS = 10
const REQUIRE: TrustRequirements = { minimum_trust_score: 3, required_endorsements: 1, verification_level: VerificationLevel.BASIC }
const DAY_MS = 86_400_000

const prng = mulberry32

interface Graph {
  engine: TrustGraphEngine
  recomputeMs: number
  path: string[]
}

/**
 * The engine of node `self` over DIDS DIDs (the last one is `signer`) and STATEMENTS attestations:
 * plain SignedStatement objects with fake ids and empty bytes (the engine takes statements whose
 * signature was checked; it never looks at the bytes). Random trust and endorse claims (levels
 * 1..9) between random DIDs, anchors 0..9 at level 8, and a chain anchor 0 -> DID 10 -> signer.
 */
function buildGraph(self: string, signer: string): Graph {
  const engine = createTrustEngine({ self })
  const now = Date.now()
  const dids = Array.from({ length: DIDS }, (_, i) => (i === DIDS - 1 ? signer : `did:key:zBench${i.toString(36).padStart(6, '0')}`))
  for (let i = 0; i < ANCHORS; i++) engine.setAnchor({ did: dids[i]!, level: 8 })
  const rnd = prng(42)
  const att = (k: number, issuer: string, subject: string, claim: 'trust' | 'endorse', level: number): SignedStatement<AttestationBody> => ({
    id: `bench-statement-${k}`,
    body: { v: 1, kind: 'attestation', issuer, subject, issued_at: now - Math.floor(rnd() * 30 * DAY_MS), claim, level, context: '*', expires_at: now + 60 * DAY_MS },
    bytes: new Uint8Array(0),
  })
  const outcomes: Record<string, number> = {}
  const add = (st: SignedStatement): void => {
    const o = engine.add(st)
    outcomes[o] = (outcomes[o] ?? 0) + 1
  }
  add(att(0, dids[0]!, dids[ANCHORS]!, 'trust', 9))
  add(att(1, dids[ANCHORS]!, signer, 'endorse', 9))
  for (let k = 2; k < STATEMENTS; k++) {
    const issuer = dids[Math.floor(rnd() * DIDS)]!
    let subject = dids[Math.floor(rnd() * DIDS)]!
    if (subject === issuer) subject = dids[(dids.indexOf(issuer) + 1) % DIDS]!
    add(att(k, issuer, subject, rnd() < 0.2 ? 'endorse' : 'trust', 1 + Math.floor(rnd() * 9)))
  }
  if (outcomes.added !== STATEMENTS) throw new Error(`expected ${STATEMENTS} statements added, got ${JSON.stringify(outcomes)}`)
  const t0 = performance.now()
  engine.recompute()
  const recomputeMs = performance.now() - t0
  const check = engine.check(signer, REQUIRE)
  if (!check.passed) throw new Error(`expected the signer to meet ${JSON.stringify(REQUIRE)}, got ${JSON.stringify(check)}`)
  return { engine, recomputeMs, path: engine.explain(signer).path }
}

export interface TrustOverhead {
  rows: BenchRow[]
  meta: Record<string, unknown>
}

export async function measureTrustOverhead(): Promise<TrustOverhead> {
  const secs = Number(process.env.BENCH_SECONDS ?? 4)
  const node = generateIdentity()
  const signer = generateIdentity()
  console.log(`  building the graph (${DIDS} DIDs, ${STATEMENTS} statements) and signing 2 x ${POOL} frames...`)
  const graph = buildGraph(node.did, signer.did)
  const plain = await makeFrames(POOL, { identity: signer })
  const asking = await makeFrames(POOL, { identity: signer, trustRequirements: REQUIRE })
  const verifier = createSignatureVerifier()
  const pa = await pipeline(verifier, plain.frames, signer.did, { node, trustEngine: () => staticTrustEngine() })
  const pb = await pipeline(verifier, asking.frames, signer.did, { node, trustEngine: () => graph.engine })
  const recomputesBefore = graph.engine.counters.recomputes
  const results: PairedResult[] = []
  for (let r = 0; r < ROUNDS; r++) {
    // B first: the ratio tB / tA is (b)'s cost over (a)'s
    const p = await paired({ run: () => pb.step(), ops: BATCH }, { run: () => pa.step(), ops: BATCH }, { batchMs: 4, seconds: secs })
    results.push(p)
    console.log(`  round ${r + 1}/${ROUNDS}: (a) ${p.bUs.toFixed(2)} us/msg, (b) ${p.aUs.toFixed(2)} us/msg, overhead ${((p.ratio - 1) * 100).toFixed(2)} % (pair IQR ${((p.ratioQ1 - 1) * 100).toFixed(2)}..${((p.ratioQ3 - 1) * 100).toFixed(2)} %, ${p.pairs} pairs)`)
  }
  await pa.stop() // throws if any message was rejected
  await pb.stop()
  const recomputes = graph.engine.counters.recomputes - recomputesBefore
  const med = (xs: number[]): number => quantile(xs, 0.5)
  const aUs = med(results.map((p) => p.bUs))
  const bUs = med(results.map((p) => p.aUs))
  const ratio = med(results.map((p) => p.ratio))
  const overhead = ratio - 1
  const r4 = (x: number): number => Math.round(x * 1e4) / 1e4
  const rows: BenchRow[] = [
    row('trust: pipeline per message (a), default static engine, messages ask nothing', 'us/msg', aUs),
    row(`trust: pipeline per message (b), web-of-trust engine (${DIDS} DIDs, ${STATEMENTS} statements), messages ask score 3 / 1 endorsement / basic`, 'us/msg', bUs, { name: '(a)', value: aUs }, { higherIsBetter: false, ratio: r4(ratio) }),
    {
      name: 'trust check overhead',
      unit: 'ratio',
      value: r4(overhead),
      baseline: 0.02,
      baselineName: 'goal: the trust check adds at most 2 % to the pipeline (DESIGN.md)',
      ratio: r4(overhead / 0.02),
      higherIsBetter: false,
      target: '<= 0.02',
    },
    row(`trust engine recompute (${DIDS} DIDs, ${STATEMENTS} statements), once`, 'ms', graph.recomputeMs),
  ]
  const meta = {
    dids: DIDS,
    statements: STATEMENTS,
    anchors: ANCHORS,
    signerPath: graph.path.length,
    requirements: REQUIRE,
    rounds: ROUNDS,
    secondsPerRound: secs,
    clock: clockName(),
    perRound: results.map((p) => ({ aUs: r4(p.bUs), bUs: r4(p.aUs), overhead: r4(p.ratio - 1), iqr: [r4(p.ratioQ1 - 1), r4(p.ratioQ3 - 1)], pairs: p.pairs })),
    recomputesDuringMeasurement: recomputes,
    method: 'the bench/index.ts pipeline (BATCH frames per step) with (b) and (a) in interleaved ~4 ms batches, random order per pair; overhead = median over rounds of the median per-pair ratio tB/tA, minus 1',
  }
  return { rows, meta }
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

/** Merges rows by name into bench-results/<file>.json (other rows and fields are kept). */
export function mergeRows(file: string, pkg: string, rows: BenchRow[], meta: Record<string, unknown>): void {
  const dir = join(repoRoot, 'bench-results')
  mkdirSync(dir, { recursive: true })
  const path = join(dir, file)
  let out: Record<string, unknown> & { results?: BenchRow[] } = {}
  if (existsSync(path)) {
    try {
      out = JSON.parse(readFileSync(path, 'utf8')) as typeof out
    } catch {
      out = {}
    }
  }
  const byName = new Map<string, BenchRow>((Array.isArray(out.results) ? out.results : []).map((r) => [r.name, r]))
  for (const r of rows) byName.set(r.name, r)
  out = { package: pkg, ...out, date: new Date().toISOString(), node: process.version, platform: `${process.platform}-${process.arch}`, trustOverhead: meta, results: [...byName.values()] }
  writeFileSync(path, JSON.stringify(out, null, 2) + '\n')
  console.log(`  merged ${rows.length} rows into bench-results/${file}`)
}

/** For bench/index.ts: measures, writes bench-results/trust.json, returns the rows for klp-router's file. */
export async function trustRows(): Promise<BenchRow[]> {
  const { rows, meta } = await measureTrustOverhead()
  mergeRows('trust.json', 'trust', rows, meta)
  return rows
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { rows, meta } = await measureTrustOverhead()
  mergeRows('trust.json', 'trust', rows, meta)
  mergeRows('klp-router.json', 'klp-router', rows, meta)
  for (const r of rows) console.log(`  ${r.name}: ${r.value} ${r.unit}${r.ratio === null ? '' : ` (ratio ${r.ratio})`}`)
}
