/**
 * Small output buffers from a private slab, the way Node's Buffer pool works but for plain
 * Uint8Arrays and for codec output only. `new Uint8Array(n)` for n > 64 allocates a fresh
 * ArrayBuffer with its own backing store (~0.3 µs each, plus GC work); a view into a shared slab
 * costs a third of that. The slab holds nothing but bytes the codec produced (wire bytes and
 * signing inputs), every view starts zero-filled (a slab is never reused), and a slab is freed
 * when the last view into it is. Consequence for callers: `result.buffer` is the slab, not a
 * buffer of `result.length` bytes; always use `(buffer, byteOffset, byteLength)`.
 */
const SLAB_SIZE = 16 * 1024
/** Larger requests get their own ArrayBuffer (so one slab holds at least 4 results). */
const SLAB_MAX = SLAB_SIZE >>> 2

let slab = new ArrayBuffer(SLAB_SIZE)
let offset = 0

/** A zero-filled Uint8Array of `n` bytes (a view into a shared slab when small). */
export function allocBytes(n: number): Uint8Array {
  if (n > SLAB_MAX) return new Uint8Array(n)
  if (offset + n > SLAB_SIZE) {
    slab = new ArrayBuffer(SLAB_SIZE)
    offset = 0
  }
  const out = new Uint8Array(slab, offset, n)
  offset = (offset + n + 7) & ~7 // keep views 8-byte aligned
  return out
}
