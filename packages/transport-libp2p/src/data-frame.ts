/**
 * The wire form of an application frame on a KLP stream: one klp-codec frame (8-byte header:
 * magic, version, kind FRAME_KIND_DATA, flags, 32-bit big-endian length) around the frame's bytes.
 */
import { FRAME_HEADER_LENGTH, FRAME_MAGIC, FRAME_VERSION } from '@kos-mesh/klp-codec'

/**
 * klp-codec frame kind of an application frame on a KLP stream (application range 0x80..0xff). A
 * frame of any other kind arriving on a KLP stream aborts the connection with InvalidFrameError.
 */
export const FRAME_KIND_DATA = 0x80

/** One klp-codec frame (kind FRAME_KIND_DATA) around a copy of `body`. */
export function encodeDataFrame(body: Uint8Array): Uint8Array {
  const len = body.byteLength
  const out = new Uint8Array(FRAME_HEADER_LENGTH + len)
  out[0] = FRAME_MAGIC
  out[1] = FRAME_VERSION
  out[2] = FRAME_KIND_DATA
  out[3] = 0
  out[4] = len >>> 24
  out[5] = (len >>> 16) & 0xff
  out[6] = (len >>> 8) & 0xff
  out[7] = len & 0xff
  out.set(body, FRAME_HEADER_LENGTH)
  return out
}
