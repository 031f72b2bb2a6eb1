/** Tagged JSON for vectors: bytes, bigints and -0 survive a JSON file. */
export function toJson(v: unknown): unknown {
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('hex') }
  if (typeof v === 'bigint') return { $bigint: v.toString() }
  if (Object.is(v, -0)) return { $number: '-0' }
  if (Array.isArray(v)) return v.map(toJson)
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]))
  return v
}

export function fromJson(v: unknown): any {
  if (Array.isArray(v)) return v.map(fromJson)
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>
    if (typeof o.$bytes === 'string') return new Uint8Array(Buffer.from(o.$bytes, 'hex'))
    if (typeof o.$bigint === 'string') return BigInt(o.$bigint)
    if (o.$number === '-0') return -0
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, fromJson(x)]))
  }
  return v
}
