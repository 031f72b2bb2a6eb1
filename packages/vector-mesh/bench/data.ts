/** Clustered synthetic vectors (seeded): `clusters` Gaussian blobs around uniform centres. */
import { mulberry32 } from '@kos-mesh/interface'

/** Deterministic pseudo-random numbers (interface's mulberry32). */
export const rng = mulberry32

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r())
}

export function clustered(n: number, dims: number, clusters: number, seed: number, spread = 0.15): Float32Array[] {
  const r = rng(seed)
  const centres = Array.from({ length: clusters }, () => Float32Array.from({ length: dims }, () => r() * 2 - 1))
  const out: Float32Array[] = []
  for (let i = 0; i < n; i++) {
    const c = centres[Math.floor(r() * clusters)]!
    out.push(Float32Array.from(c, (x) => x + gauss(r) * spread))
  }
  return out
}

export function flatten(vs: Float32Array[]): Float32Array {
  const dims = vs[0]!.length
  const out = new Float32Array(vs.length * dims)
  vs.forEach((v, i) => out.set(v, i * dims))
  return out
}

export const now = (): number => Number(process.hrtime.bigint()) / 1e6 // clock-exempt: benchmark timing
