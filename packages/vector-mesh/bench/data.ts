/** Clustered synthetic vectors (seeded): `clusters` Gaussian blobs around uniform centres. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

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
