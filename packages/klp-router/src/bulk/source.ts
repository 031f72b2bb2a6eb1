/**
 * Where a sender's bytes come from. The sender reads one chunk at a time (plus one ahead while a
 * chunk is on its way), so a source is never asked for more than two chunks at once per receiver.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { InvalidParametersError } from '@kos-mesh/interface'
import { BulkIoError } from './errors.js'

export interface BulkSource {
  /** Payload bytes. Must not change while an offer of it is alive (receivers check every chunk). */
  readonly size: number
  /** Exactly `length` bytes at `offset` (the returned bytes are not modified afterwards by the sender). */
  read(offset: number, length: number): Promise<Uint8Array> | Uint8Array
  /** Called when the offer ends (done, cancelled, expired). */
  close?(): Promise<void> | void
}

/** A source over bytes in memory (reads are views, no copy). */
export function memorySource(bytes: Uint8Array): BulkSource {
  if (!(bytes instanceof Uint8Array)) throw new InvalidParametersError(`expected a Uint8Array, got ${typeof bytes}`)
  return {
    size: bytes.byteLength,
    read(offset, length) {
      if (offset < 0 || offset + length > bytes.byteLength) throw new BulkIoError(`expected a read within 0..${bytes.byteLength}, got ${offset}+${length}`)
      return bytes.subarray(offset, offset + length)
    },
  }
}

export interface FileSource extends BulkSource {
  readonly path: string
  close(): Promise<void>
}

/**
 * A source over a file (positional reads of one chunk each). The size is the file's size when
 * opened; a file that shrinks makes reads fail with `BulkIoError`, one that changes makes the
 * receiver reject the chunk.
 */
export async function fileSource(path: string): Promise<FileSource> {
  let fh: FileHandle
  try {
    fh = await open(path, 'r')
  } catch (err) {
    throw new BulkIoError(`expected a readable file at ${path}`, { cause: err })
  }
  const size = (await fh.stat()).size
  let closed = false
  return {
    path,
    size,
    async read(offset, length) {
      if (closed) throw new BulkIoError(`expected an open source, got ${path} closed`)
      const buf = new Uint8Array(length)
      let got = 0
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got)
        if (bytesRead === 0) throw new BulkIoError(`expected ${length} bytes at ${offset} of ${path}, got ${got} (the file shrank)`)
        got += bytesRead
      }
      return buf
    },
    async close() {
      if (closed) return
      closed = true
      await fh.close()
    },
  }
}
