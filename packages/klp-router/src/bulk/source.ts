/**
 * Where a sender's bytes come from. The sender reads one chunk at a time (plus one ahead while a
 * chunk is on its way), so a source is never asked for more than two chunks at once per receiver.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { InvalidParametersError } from '@kos-mesh/interface'
import { BulkIoError } from './errors.js'

/**
 * What a sender reads an offer's payload from: `offer()` reads it once in full to hash it, then
 * chunk by chunk as receivers pull (at most two chunks ahead per receiver). Implement it for other
 * storage, or use {@link memorySource} / {@link fileSource}. An error a read throws fails the offer
 * (`offer()` rejects with it while hashing; a read of the wrong length is a `BulkIoError`).
 */
export interface BulkSource {
  /** Payload bytes. Must not change while an offer of it is alive (receivers check every chunk). */
  readonly size: number
  /** Exactly `length` bytes at `offset` (the returned bytes are not modified afterwards by the sender). */
  read(offset: number, length: number): Promise<Uint8Array> | Uint8Array
  /**
   * Optional: exactly `target.byteLength` bytes at `offset`, written into `target` (the sender's
   * own buffer: no allocation and no copy per chunk). Used instead of `read` when present.
   */
  readInto?(offset: number, target: Uint8Array): Promise<void> | void
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

/**
 * The {@link BulkSource} {@link fileSource} returns: reads go straight into the sender's buffer
 * (`readInto`), and `close()` closes the file handle (idempotent; reads after it throw `BulkIoError`).
 */
export interface FileSource extends BulkSource {
  /** The file's path, as given to {@link fileSource}. */
  readonly path: string
  readInto(offset: number, target: Uint8Array): Promise<void>
  close(): Promise<void>
}

/**
 * A source over a file (positional reads of one chunk each, straight into the sender's buffer). The size is the file's size when
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
  const readInto = async (offset: number, target: Uint8Array): Promise<void> => {
    if (closed) throw new BulkIoError(`expected an open source, got ${path} closed`)
    const length = target.byteLength
    let got = 0
    while (got < length) {
      const { bytesRead } = await fh.read(target, got, length - got, offset + got)
      if (bytesRead === 0) throw new BulkIoError(`expected ${length} bytes at ${offset} of ${path}, got ${got} (the file shrank)`)
      got += bytesRead
    }
  }
  return {
    path,
    size,
    async read(offset, length) {
      const buf = new Uint8Array(length)
      await readInto(offset, buf)
      return buf
    },
    readInto,
    async close() {
      if (closed) return
      closed = true
      await fh.close()
    },
  }
}
