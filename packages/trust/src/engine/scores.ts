/**
 * The propagation: personalised, attenuated widest paths (a max-product variant of personalised
 * PageRank). Sources are this node (10) and its anchors (their level, fixed); an attestation
 * e = (i -> v) carries `level_e` and a decay factor `d_e`, and a path's value is folded along its
 * edges as x <- beta * min(x, level_e) * d_e. The base score b(v) is the largest value of a path of
 * at most `maxDepth` edges (0 when none). Since an edge never yields more than its tail's value,
 * a best-first (max-heap) search settles nodes in order of their final value, like Dijkstra.
 *
 * The hop bound makes this a two-criteria search: a node may settle a second, lower label if it
 * reaches it in fewer hops (it may then pass trust further). Each node settles at most
 * maxDepth + 1 labels, in practice one, so the cost is O(E log V) (O(maxDepth * E log V) at worst).
 */

/** The graph of counting attestations, in compressed rows by issuer index. */
export interface Graph {
  /** Number of nodes (DIDs) indexed 0..n-1. */
  n: number
  /** Row starts: edges of node u are start[u]..start[u+1]-1. */
  start: Int32Array
  to: Int32Array
  level: Float64Array
  decay: Float64Array
  /** Index of the edge's statement in the caller's list (for `explain`). */
  ref: Int32Array
}

export interface PropagationInput {
  graph: Graph
  /** Fixed scores: this node and the anchors (index -> score). */
  sources: ReadonlyMap<number, number>
  /** Nodes that are never reached and never pass trust on (revoked DIDs). */
  blocked: Uint8Array
  /** Per-node ceilings (NaN: none), e.g. a validator's cap 10 - w. */
  ceiling?: Float64Array
  beta: number
  maxDepth: number
}

export interface Propagation {
  /** b(v) per node. */
  score: Float64Array
  /** Hops of the best path (-1: unreached). */
  depth: Int32Array
  /** Label arrays: the best label per node, and each label's predecessor label and edge. */
  best: Int32Array
  labelNode: number[]
  labelPrev: number[]
  labelEdge: number[]
}

/** Builds the compressed-row graph from edge lists (tails need not be sorted). */
export function buildGraph(n: number, from: readonly number[], to: readonly number[], level: readonly number[], decay: readonly number[]): Graph {
  const m = from.length
  const start = new Int32Array(n + 1)
  for (let e = 0; e < m; e++) start[from[e]! + 1]!++
  for (let u = 0; u < n; u++) start[u + 1]! += start[u]!
  const fill = start.slice(0, n)
  const g: Graph = { n, start, to: new Int32Array(m), level: new Float64Array(m), decay: new Float64Array(m), ref: new Int32Array(m) }
  for (let e = 0; e < m; e++) {
    const k = fill[from[e]!]!++
    g.to[k] = to[e]!
    g.level[k] = level[e]!
    g.decay[k] = decay[e]!
    g.ref[k] = e
  }
  return g
}

/** A binary max-heap of labels keyed by score (ties: fewer hops first). */
class LabelHeap {
  private idx: number[] = []
  constructor(
    private readonly score: number[],
    private readonly depth: number[],
  ) {}
  get length(): number {
    return this.idx.length
  }
  private above(a: number, b: number): boolean {
    const sa = this.score[a]!
    const sb = this.score[b]!
    return sa > sb || (sa === sb && this.depth[a]! < this.depth[b]!)
  }
  push(label: number): void {
    const h = this.idx
    let i = h.length
    h.push(label)
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.above(label, h[p]!)) break
      h[i] = h[p]!
      i = p
    }
    h[i] = label
  }
  pop(): number {
    const h = this.idx
    const top = h[0]!
    const last = h.pop()!
    if (h.length > 0) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= h.length) break
        const r = l + 1
        const c = r < h.length && this.above(h[r]!, h[l]!) ? r : l
        if (!this.above(h[c]!, last)) break
        h[i] = h[c]!
        i = c
      }
      h[i] = last
    }
    return top
  }
}

export function propagate(input: PropagationInput): Propagation {
  const { graph, sources, blocked, ceiling, beta, maxDepth } = input
  const n = graph.n
  const D = maxDepth
  const score = new Float64Array(n)
  const depth = new Int32Array(n).fill(-1)
  const best = new Int32Array(n).fill(-1)
  /** Smallest hop count among a node's settled labels (D + 1: none yet). */
  const settledDepth = new Int32Array(n).fill(D + 1)
  /** Best score pushed per (node, hops), to skip dominated labels. */
  const pushed = new Float64Array(n * (D + 1))
  const isSource = new Uint8Array(n)
  const lScore: number[] = []
  const lDepth: number[] = []
  const labelNode: number[] = []
  const labelPrev: number[] = []
  const labelEdge: number[] = []
  const heap = new LabelHeap(lScore, lDepth)
  const addLabel = (v: number, s: number, d: number, prev: number, edge: number): void => {
    labelNode.push(v)
    lScore.push(s)
    lDepth.push(d)
    labelPrev.push(prev)
    labelEdge.push(edge)
    heap.push(labelNode.length - 1)
  }
  for (const [v, s] of sources) {
    if (blocked[v] === 1) continue
    isSource[v] = 1
    addLabel(v, s, 0, -1, -1)
  }
  while (heap.length > 0) {
    const L = heap.pop()
    const u = labelNode[L]!
    const d = lDepth[L]!
    if (d >= settledDepth[u]!) continue // dominated: a settled label has a higher score and no more hops
    settledDepth[u] = d
    const s = lScore[L]!
    if (best[u] === -1) {
      best[u] = L
      score[u] = s
      depth[u] = d
    }
    if (d >= D || !(s > 0)) continue
    const nd = d + 1
    for (let k = graph.start[u]!, end = graph.start[u + 1]!; k < end; k++) {
      const v = graph.to[k]!
      if (isSource[v] === 1 || blocked[v] === 1 || nd >= settledDepth[v]!) continue
      const lvl = graph.level[k]!
      let cand = beta * (s < lvl ? s : lvl) * graph.decay[k]!
      if (ceiling !== undefined) {
        const c = ceiling[v]!
        if (cand > c) cand = c
      }
      if (!(cand > 0)) continue
      const row = v * (D + 1)
      let dominated = false
      for (let j = 0; j <= nd; j++) {
        if (pushed[row + j]! >= cand) {
          dominated = true
          break
        }
      }
      if (dominated) continue
      pushed[row + nd] = cand
      addLabel(v, cand, nd, L, k)
    }
  }
  return { score, depth, best, labelNode, labelPrev, labelEdge }
}

/** The edges (graph positions) of v's best path, from its source to v. */
export function pathEdges(p: Propagation, v: number): { nodes: number[]; edges: number[] } {
  const nodes: number[] = []
  const edges: number[] = []
  for (let L = p.best[v]!; L !== -1; L = p.labelPrev[L]!) {
    nodes.push(p.labelNode[L]!)
    if (p.labelEdge[L]! !== -1) edges.push(p.labelEdge[L]!)
  }
  return { nodes: nodes.reverse(), edges: edges.reverse() }
}
