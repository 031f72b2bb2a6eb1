import { InvalidParametersError } from '@kos-mesh/interface'

/** Bounds applied by every decoder before it allocates. */
export interface CodecLimits {
  /** Largest frame, header included. Default 1 MiB. */
  maxFrameSize: number
  /** Largest encoded signed message (envelope) accepted or produced. Default 1 MiB. */
  maxMessageSize: number
  /** Deepest array/map nesting inside a CBOR item (the message body counts 1). Default 32, at most 256. */
  maxDepth: number
  /** Total array elements + map entries in one decoded item. Default 10,000. */
  maxItems: number
  /** Longest text string, in UTF-8 bytes. Default 256 KiB. */
  maxStringLength: number
  /** Longest byte string. Default 1 MiB. */
  maxBytesLength: number
  /** Largest decompressed payload. Default 4 MiB. */
  maxDecompressedSize: number
}

/**
 * The codec's default limits (each documented on CodecLimits); pass a partial CodecLimits to override some.
 */
export const DEFAULT_LIMITS: Readonly<CodecLimits> = Object.freeze({
  maxFrameSize: 1024 * 1024,
  maxMessageSize: 1024 * 1024,
  maxDepth: 32,
  maxItems: 10_000,
  maxStringLength: 256 * 1024,
  maxBytesLength: 1024 * 1024,
  maxDecompressedSize: 4 * 1024 * 1024,
})

/** Hard ceiling on maxDepth: decoders recurse, and the JS stack is finite. */
export const MAX_DEPTH_CEILING = 256

/** Merges partial limits over the defaults and validates them. */
export function resolveLimits(partial?: Partial<CodecLimits>): Readonly<CodecLimits> {
  if (partial === undefined) return DEFAULT_LIMITS
  const out = { ...DEFAULT_LIMITS }
  for (const key of Object.keys(partial) as Array<keyof CodecLimits>) {
    const v = partial[key]
    if (v === undefined) continue
    if (!(key in DEFAULT_LIMITS)) throw new InvalidParametersError(`expected a known limit name, got ${String(key)}`)
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
      throw new InvalidParametersError(`expected ${key} to be a positive integer, got ${String(v)}`)
    }
    out[key] = v
  }
  if (out.maxDepth > MAX_DEPTH_CEILING) {
    throw new InvalidParametersError(`expected maxDepth <= ${MAX_DEPTH_CEILING}, got ${out.maxDepth}`)
  }
  return out
}
