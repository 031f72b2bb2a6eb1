/**
 * Where a receiver's verified chunks go. The receiver writes each chunk once, after it matched its
 * leaf hash, and calls `commit()` only after the whole payload matched the content hash; on any
 * failure it calls `abort()` (nothing partial is kept), or `suspend()` when the sink has one and
 * the failure is not the data's fault (the sender went away, a stall), so that a later transfer
 * of the same offer can resume.
 */
import { open, readFile, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { InvalidParametersError } from '@kos-mesh/interface'
import { BulkIoError } from './errors.js'
import { chunkLength } from './wire.js'

/** What a sink learns before the first write: the verified offer. */
export interface BulkSinkInfo {
  id: string
  size: number
  chunkSize: number
  chunks: number
  root: Uint8Array
  contentHash: Uint8Array
}

/**
 * Where a receiver puts a transfer's verified chunks (`ReceiveOptions.sink`): `open()` once, then
 * `write()` per chunk in any order, then exactly one of `commit()` (the whole payload verified),
 * `abort()` (failure: keep nothing) or `suspend()` (a failure that is not the data's fault, when the
 * sink can resume). An error a method throws fails the transfer. Use {@link memorySink} or
 * {@link fileSink}, or implement it for other storage; a sink serves one transfer.
 */
export interface BulkSink {
  /**
   * Called once before any write. May return the indices of chunks it already holds from an
   * earlier attempt at the same payload (same root); the receiver reads each back with `read()`,
   * checks it against its leaf and fetches only the others.
   */
  open?(info: BulkSinkInfo): Promise<Iterable<number> | undefined> | Iterable<number> | undefined
  /** Stores a verified chunk (writes for different indices may overlap in time). */
  write(index: number, bytes: Uint8Array): Promise<void> | void
  /** Reads back a chunk written earlier (needed to resume what `open()` reported). */
  read?(index: number): Promise<Uint8Array> | Uint8Array
  /** The whole payload was verified: make it visible. */
  commit(): Promise<void> | void
  /** The transfer failed: discard everything written. */
  abort(): Promise<void> | void
  /** The transfer stopped for a reason that is not the data's fault: keep what was written to resume later. */
  suspend?(): Promise<void> | void
}

/**
 * Where a built-in sink is in its life: `'new'` (not opened yet; only a new sink can be opened),
 * `'open'` (taking writes), then `'committed'`, `'aborted'` or `'suspended'` (resumable file sink
 * only; open a new `fileSink` on the same path to resume).
 */
export type SinkState = 'new' | 'open' | 'committed' | 'aborted' | 'suspended'

/**
 * The {@link BulkSink} {@link memorySink} returns: the payload in one buffer of its size. It never
 * resumes (`open()` reports no chunks). `open()` throws `InvalidParametersError` when the sink was
 * opened before; `write()` / `commit()` throw `BulkIoError` when it is not open.
 */
export interface MemorySink extends BulkSink {
  open(info: BulkSinkInfo): undefined
  read(index: number): Uint8Array
  /** Where the sink is in its life (see {@link SinkState}). */
  readonly state: SinkState
  /** The payload, once committed (undefined before, and after an abort). */
  readonly bytes: Uint8Array | undefined
}

/** A sink into one buffer of the payload's size, allocated by `open()`. */
export function memorySink(): MemorySink {
  let state: SinkState = 'new'
  let buf: Uint8Array | undefined
  let chunkSize = 0
  return {
    get state() {
      return state
    },
    get bytes() {
      return state === 'committed' ? buf : undefined
    },
    open(info) {
      if (state !== 'new') throw new InvalidParametersError(`expected a new memory sink, got one in state ${state}`)
      buf = new Uint8Array(info.size)
      chunkSize = info.chunkSize
      state = 'open'
      return undefined
    },
    write(index, bytes) {
      if (state !== 'open' || buf === undefined) throw new BulkIoError(`expected an open sink, got ${state}`)
      buf.set(bytes, index * chunkSize)
    },
    read(index) {
      if (buf === undefined) throw new BulkIoError(`expected an open sink, got ${state}`)
      return buf.subarray(index * chunkSize, index * chunkSize + chunkLength(buf.byteLength, chunkSize, index))
    },
    commit() {
      if (state !== 'open') throw new BulkIoError(`expected an open sink, got ${state}`)
      state = 'committed'
    },
    abort() {
      buf = undefined
      state = 'aborted'
    },
  }
}

/** Options of {@link fileSink}. `fileSink` throws `InvalidParametersError` when `stateEvery` is not an integer >= 1. */
export interface FileSinkInit {
  /**
   * Keep the partial file and a small state file (the offer's root and the chunks written) when the
   * transfer is suspended, and resume from them when a transfer of the same offer opens this sink
   * again. Default false.
   */
  resumable?: boolean
  /** Where the partial data goes before the commit renames it. Default `<path>.bulk-partial`. */
  partialPath?: string
  /** Chunk writes between two saves of the state file (resumable only). Default 16. */
  stateEvery?: number
}

/**
 * The {@link BulkSink} {@link fileSink} returns. Chunks go to `partialPath` at their offsets;
 * `commit()` truncates, syncs and renames it to `path`; `abort()` deletes it and the state file.
 * `suspend()` keeps both when the sink is resumable (and aborts otherwise). File errors surface as
 * `BulkIoError` (or the node:fs error from `commit()`).
 */
export interface FileSink extends BulkSink {
  open(info: BulkSinkInfo): Promise<Iterable<number> | undefined>
  read(index: number): Promise<Uint8Array>
  suspend(): Promise<void>
  /** The final file, written by `commit()`. */
  readonly path: string
  /** The file the chunks are written to until the commit (`<path>.bulk-partial` by default). */
  readonly partialPath: string
  /** `<partialPath>.json` (resumable only). */
  readonly statePath: string
  readonly state: SinkState
}

interface SavedState {
  v: 1
  root: string
  contentHash: string
  size: number
  chunkSize: number
  chunks: number
  /** Bitfield of the chunks written, base64. */
  have: string
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

async function unlinkQuiet(path: string): Promise<void> {
  try {
    await unlink(path)
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw err
  }
}

/**
 * A sink into a file: chunks are written at their offsets into a partial file, which `commit()`
 * syncs and renames to `path`; `abort()` deletes it (and the state file). With `resumable`, the set
 * of written chunks is saved beside it (`<partial>.json`, every `stateEvery` writes and on
 * `suspend()`), and a sink opened for the same offer later reports them. The saved set is only a
 * hint: the receiver reads every reported chunk back and checks it against its leaf hash.
 */
export function fileSink(path: string, init: FileSinkInit = {}): FileSink {
  if (typeof path !== 'string' || path.length === 0) throw new InvalidParametersError(`expected a file path, got ${String(path)}`)
  const partialPath = init.partialPath ?? `${path}.bulk-partial`
  const statePath = `${partialPath}.json`
  const resumable = init.resumable === true
  const every = init.stateEvery ?? 16
  if (!Number.isSafeInteger(every) || every < 1) throw new InvalidParametersError(`expected stateEvery >= 1, got ${String(init.stateEvery)}`)
  let state: SinkState = 'new'
  let fh: FileHandle | undefined
  let info: BulkSinkInfo | undefined
  let have: Uint8Array = new Uint8Array(0)
  let unsaved = 0
  let saving: Promise<void> = Promise.resolve()

  const saveState = (): Promise<void> => {
    if (!resumable || info === undefined) return saving
    const s: SavedState = {
      v: 1,
      root: hex(info.root),
      contentHash: hex(info.contentHash),
      size: info.size,
      chunkSize: info.chunkSize,
      chunks: info.chunks,
      have: Buffer.from(have).toString('base64'),
    }
    unsaved = 0
    // one save at a time, each atomic (write a temp file, rename it)
    saving = saving.then(async () => {
      await writeFile(`${statePath}.tmp`, JSON.stringify(s))
      await rename(`${statePath}.tmp`, statePath)
    })
    return saving
  }

  const loadState = async (i: BulkSinkInfo): Promise<Uint8Array | undefined> => {
    let s: SavedState
    try {
      s = JSON.parse(await readFile(statePath, 'utf8')) as SavedState
    } catch {
      return undefined
    }
    if (s.v !== 1 || s.root !== hex(i.root) || s.contentHash !== hex(i.contentHash) || s.size !== i.size || s.chunkSize !== i.chunkSize || s.chunks !== i.chunks) return undefined
    const bits = new Uint8Array(Buffer.from(String(s.have), 'base64'))
    return bits.byteLength === Math.ceil(i.chunks / 8) ? bits : undefined
  }

  const closeFile = async (): Promise<void> => {
    const f = fh
    fh = undefined
    if (f !== undefined) await f.close()
  }

  return {
    path,
    partialPath,
    statePath,
    get state() {
      return state
    },
    async open(i) {
      if (state !== 'new') throw new InvalidParametersError(`expected a new file sink, got one in state ${state}`)
      info = i
      have = new Uint8Array(Math.ceil(i.chunks / 8))
      const saved = resumable ? await loadState(i) : undefined
      try {
        if (saved !== undefined) {
          fh = await open(partialPath, 'r+')
          have = saved
        } else {
          fh = await open(partialPath, 'w+')
          await unlinkQuiet(statePath)
        }
      } catch (err) {
        if (saved === undefined) throw new BulkIoError(`expected a writable file at ${partialPath}`, { cause: err })
        fh = await open(partialPath, 'w+')
        have = new Uint8Array(Math.ceil(i.chunks / 8))
      }
      state = 'open'
      if (saved === undefined) {
        if (resumable) await saveState()
        return undefined
      }
      const held: number[] = []
      for (let k = 0; k < i.chunks; k++) if ((have[k >> 3]! & (1 << (k & 7))) !== 0) held.push(k)
      return held
    },
    async write(index, bytes) {
      if (state !== 'open' || fh === undefined || info === undefined) throw new BulkIoError(`expected an open sink, got ${state}`)
      let done = 0
      while (done < bytes.byteLength) {
        const { bytesWritten } = await fh.write(bytes, done, bytes.byteLength - done, index * info.chunkSize + done)
        done += bytesWritten
      }
      if (state !== 'open') return
      have[index >> 3]! |= 1 << (index & 7)
      if (resumable && ++unsaved >= every) void saveState().catch(() => {})
    },
    async read(index) {
      if (fh === undefined || info === undefined) throw new BulkIoError(`expected an open sink, got ${state}`)
      const length = chunkLength(info.size, info.chunkSize, index)
      const buf = new Uint8Array(length)
      let got = 0
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, index * info.chunkSize + got)
        if (bytesRead === 0) throw new BulkIoError(`expected ${length} bytes of chunk ${index} in ${partialPath}, got ${got}`)
        got += bytesRead
      }
      return buf
    },
    async commit() {
      if (state !== 'open' || fh === undefined || info === undefined) throw new BulkIoError(`expected an open sink, got ${state}`)
      await saving.catch(() => {})
      await fh.truncate(info.size)
      await fh.sync()
      await closeFile()
      await rename(partialPath, path)
      await unlinkQuiet(statePath)
      state = 'committed'
    },
    async abort() {
      state = 'aborted'
      await saving.catch(() => {})
      await closeFile().catch(() => {})
      await unlinkQuiet(partialPath)
      await unlinkQuiet(statePath)
      await unlinkQuiet(`${statePath}.tmp`)
    },
    async suspend() {
      if (!resumable) return this.abort()
      if (state !== 'open') return
      state = 'suspended'
      await fh?.sync().catch(() => {})
      await saveState().catch(() => {})
      await closeFile()
    },
  }
}
