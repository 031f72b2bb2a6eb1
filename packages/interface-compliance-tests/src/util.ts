import type { Connection } from '@kos-mesh/interface'

/** A frame whose first 4 bytes are `seq` (big-endian) and whose other bytes derive from it. */
export function frameOf(seq: number, size: number): Uint8Array {
  const f = new Uint8Array(size)
  for (let i = 4; i < size; i++) f[i] = (seq + i) & 0xff
  if (size >= 4) new DataView(f.buffer).setUint32(0, seq >>> 0)
  return f
}

/** The sequence number written by `frameOf` (-1 for a frame shorter than 4 bytes). */
export function seqOf(frame: Uint8Array | undefined): number {
  if (frame === undefined || frame.byteLength < 4) return -1
  return new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0)
}

/** Reads exactly `n` frames (fails if the stream ends first). Does not end the iteration. */
export async function readN(conn: Connection, n: number): Promise<Uint8Array[]> {
  const it = conn[Symbol.asyncIterator]()
  const out: Uint8Array[] = []
  while (out.length < n) {
    const r = await it.next()
    if (r.done === true) throw new Error(`expected ${n} frames, got the end of the stream after ${out.length}`)
    out.push(r.value)
  }
  return out
}

/** Reads every frame until the stream ends. */
export async function collect(conn: Connection): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  const it = conn[Symbol.asyncIterator]()
  for (;;) {
    const r = await it.next()
    if (r.done === true) return out
    out.push(r.value)
  }
}

/**
 * True when `p` has not settled after `ms` (a stall detector, not an assertion on speed: a slow
 * machine can only make it report a stall earlier, which the caller then double-checks).
 */
export async function stalled(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const result = await Promise.race([
    p.then(() => false, (err: unknown) => { throw err }),
    new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), ms) }), // clock-exempt: a stall detector of the test suite, in wall time
  ])
  clearTimeout(timer)
  return result
}

/** Rejects with a clear message if `p` does not settle within `ms` (default 10 s): a hang guard, not a speed check. */
export async function withTimeout<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`hang: ${what} (after ${ms} ms)`)), ms) }), // clock-exempt: a hang guard of the test suite, in wall time
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** Polls `cond` on the event loop until it is true (hang guard: 10 s). */
export async function waitFor(cond: () => boolean, what = 'condition', ms = 10_000): Promise<void> {
  const end = Date.now() + ms // clock-exempt: a hang guard of the test suite, in wall time
  while (!cond()) {
    if (Date.now() > end) throw new Error(`hang: ${what} (after ${ms} ms)`) // clock-exempt: hang guard
    await new Promise((resolve) => setTimeout(resolve, 1)) // clock-exempt: polls the event loop
  }
}

type ErrorClass = (abstract new (...args: never[]) => Error) & { code?: string }

/**
 * True when `err` is an instance of `cls`, or (for duplicated package copies) carries its `name` or
 * `code`, or has a class named like it in its prototype chain.
 */
export function isErrorOf(err: unknown, cls: ErrorClass): boolean {
  if (!(err instanceof Error)) return false
  if (err instanceof cls) return true
  const e = err as Error & { code?: unknown }
  if (e.name === cls.name) return true
  if (cls.code !== undefined && e.code === cls.code) return true
  for (let p: unknown = Object.getPrototypeOf(e); p !== null && p !== undefined; p = Object.getPrototypeOf(p)) {
    const ctor = (p as { constructor?: { name?: string } }).constructor
    if (ctor?.name === cls.name) return true
  }
  return false
}

/** Awaits `p` and checks it rejects with `cls` (see `isErrorOf`). Returns the error. */
export async function expectError(p: Promise<unknown>, cls: ErrorClass): Promise<Error> {
  let settled: { ok: true } | { ok: false; err: unknown }
  try {
    await withTimeout(p, `expected a ${cls.name}, got no answer`)
    settled = { ok: true }
  } catch (err) {
    settled = { ok: false, err }
  }
  if (settled.ok) throw new Error(`expected a rejection with ${cls.name}, got success`)
  const err = settled.err
  if (!isErrorOf(err, cls)) {
    const e = err as { name?: unknown; code?: unknown; message?: unknown }
    throw new Error(`expected ${cls.name}, got ${String(e?.name)} (${String(e?.code)}): ${String(e?.message)}`, { cause: err })
  }
  return err as Error
}

/** Byte-wise equality (fast, unlike a deep-equal matcher on large arrays). */
export function bytesEqual(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined || a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}
