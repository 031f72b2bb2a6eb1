/**
 * Vector entries as people and files give them, checked before anything is signed: one entry
 * (`{ id, vector, metadata? }`, the control API's and `vectors add`'s), a vector written on the
 * command line (`0.1,0.2,0.3` or a JSON array), and the import file of `kos-mesh vectors import`:
 *
 * **Import file format** (JSON lines, UTF-8): one entry per line,
 * `{"id": "doc-1", "vector": [0.1, 0.2, 0.3], "metadata": {"title": "Apple"}}`; blank lines are
 * skipped; no other keys. `id`: 1..256 characters; `vector`: 1..4,096 finite numbers (the
 * collection's dimensions); `metadata` (optional): at most 32 keys of 1..64 characters, values
 * strings of at most 1,024 characters, finite numbers or booleans. Bounds: a line of at most
 * 256 KiB, a file of at most 64 MiB and 100,000 entries. A bad line is an InvalidImportFileError
 * naming the line; nothing of the file is sent then.
 *
 * No runtime import of @kos-mesh/vector-mesh here (the CLI does not load usearch).
 */
import { InvalidParametersError } from '@kos-mesh/interface'

/** Longest entry id (vector-mesh's bound). */
export const MAX_VECTOR_ID_LENGTH = 256
/** Most dimensions of a vector (vector-mesh's bound). */
export const MAX_VECTOR_DIMENSIONS = 4096
/** Most metadata keys, longest key and longest string value (vector-mesh's bounds). */
export const MAX_METADATA_KEYS = 32
export const MAX_METADATA_KEY_LENGTH = 64
export const MAX_METADATA_STRING = 1024
/** Largest import file, bytes. */
export const MAX_IMPORT_FILE_BYTES = 64 * 1024 * 1024
/** Longest line of an import file, bytes. */
export const MAX_IMPORT_LINE_BYTES = 256 * 1024
/** Most entries in an import file. */
export const MAX_IMPORT_ENTRIES = 100_000

/** A vector entry (or a vector) that does not have the expected shape. */
export class InvalidVectorInputError extends InvalidParametersError {
  static override readonly code: string = 'ERR_INVALID_VECTOR_INPUT'
  override name = 'InvalidVectorInputError'
  override readonly code: string = 'ERR_INVALID_VECTOR_INPUT'
}

/** A line of an import file is not an entry (or the file is over a bound); `line` is 1-based (0: the whole file). */
export class InvalidImportFileError extends InvalidParametersError {
  static override readonly code: string = 'ERR_INVALID_IMPORT_FILE'
  override name = 'InvalidImportFileError'
  override readonly code: string = 'ERR_INVALID_IMPORT_FILE'
  readonly line: number

  constructor(line: number, message: string) {
    super(line > 0 ? `line ${line}: ${message}` : message)
    this.line = line
  }
}

/** One checked entry of an import file or an add request (see `checkEntry` for the bounds). */
export interface VectorEntry {
  /** The entry's id in its collection, 1..256 characters (a later entry with the same id replaces it). */
  id: string
  /** 1..4,096 finite numbers (the collection's dimensions). */
  vector: number[]
  /** At most 32 keys; strings, finite numbers or booleans. */
  metadata?: Record<string, string | number | boolean>
}

const bad = (message: string): never => {
  throw new InvalidVectorInputError(message)
}

/** Checks a vector: 1..4,096 finite numbers, `dimensions` of them when given. */
export function checkVector(v: unknown, dimensions?: number, what = 'vector'): number[] {
  if (!Array.isArray(v) || v.length < 1 || v.length > MAX_VECTOR_DIMENSIONS) bad(`expected ${what} to be a list of 1..${MAX_VECTOR_DIMENSIONS} numbers, got ${Array.isArray(v) ? `${v.length} items` : v === null ? 'null' : typeof v}`)
  const list = v as unknown[]
  for (let i = 0; i < list.length; i++) if (typeof list[i] !== 'number' || !Number.isFinite(list[i])) bad(`expected ${what} to hold finite numbers, got ${JSON.stringify(list[i]) ?? typeof list[i]} at index ${i}`)
  if (dimensions !== undefined && list.length !== dimensions) bad(`expected ${what} of ${dimensions} dimensions, got ${list.length}`)
  return list as number[]
}

/** Checks metadata: at most 32 keys of 1..64 characters; strings (<= 1,024 characters), finite numbers or booleans. */
export function checkMetadata(m: unknown): Record<string, string | number | boolean> {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return bad(`expected metadata to be an object, got ${m === null ? 'null' : Array.isArray(m) ? 'array' : typeof m}`)
  const entries = Object.entries(m as Record<string, unknown>)
  if (entries.length > MAX_METADATA_KEYS) bad(`expected at most ${MAX_METADATA_KEYS} metadata keys, got ${entries.length}`)
  for (const [k, x] of entries) {
    if (k.length < 1 || k.length > MAX_METADATA_KEY_LENGTH) bad(`expected metadata keys of 1..${MAX_METADATA_KEY_LENGTH} characters, got ${k.length}`)
    if (typeof x === 'string') {
      if (x.length > MAX_METADATA_STRING) bad(`expected metadata strings of at most ${MAX_METADATA_STRING} characters, got ${x.length} at ${JSON.stringify(k)}`)
    } else if (typeof x === 'number') {
      if (!Number.isFinite(x)) bad(`expected finite metadata numbers, got ${String(x)} at ${JSON.stringify(k)}`)
    } else if (typeof x !== 'boolean') {
      bad(`expected metadata values to be strings, numbers or booleans, got ${x === null ? 'null' : typeof x} at ${JSON.stringify(k)}`)
    }
  }
  return { ...(m as Record<string, string | number | boolean>) }
}

/** Checks an entry `{ id, vector, metadata? }` (no other keys). */
export function checkEntry(e: unknown, dimensions?: number): VectorEntry {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return bad(`expected an entry object { id, vector, metadata? }, got ${e === null ? 'null' : Array.isArray(e) ? 'array' : typeof e}`)
  const o = e as Record<string, unknown>
  for (const k of Object.keys(o)) if (k !== 'id' && k !== 'vector' && k !== 'metadata') bad(`expected the keys id, vector and metadata, got ${JSON.stringify(k.slice(0, 40))}`)
  if (typeof o.id !== 'string' || o.id.length < 1 || o.id.length > MAX_VECTOR_ID_LENGTH) bad(`expected "id" to be 1..${MAX_VECTOR_ID_LENGTH} characters, got ${typeof o.id === 'string' ? `${o.id.length} characters` : typeof o.id}`)
  const vector = checkVector(o.vector, dimensions)
  return { id: o.id as string, vector, ...(o.metadata === undefined ? {} : { metadata: checkMetadata(o.metadata) }) }
}

/** A vector from the command line: `0.1,0.2,0.3` (spaces allowed) or a JSON array `[0.1, 0.2, 0.3]`. */
export function parseVectorText(text: string, dimensions?: number): number[] {
  const t = text.trim()
  if (t.length > MAX_IMPORT_LINE_BYTES) bad(`expected a vector of at most ${MAX_IMPORT_LINE_BYTES} characters, got ${t.length}`)
  let v: unknown
  if (t.startsWith('[')) {
    try {
      v = JSON.parse(t)
    } catch {
      bad(`expected a JSON array of numbers, got ${JSON.stringify(t.slice(0, 40))}`)
    }
  } else {
    v = t.split(/[\s,]+/).filter((x) => x.length > 0).map((x) => (/^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/.test(x) ? Number(x) : Number.NaN))
  }
  return checkVector(v, dimensions)
}

/**
 * The entries of an import file's text (format above); `dimensions` checks every vector.
 * Throws InvalidImportFileError naming the first bad line.
 */
export function parseImportFile(text: string, dimensions?: number): VectorEntry[] {
  if (Buffer.byteLength(text) > MAX_IMPORT_FILE_BYTES) throw new InvalidImportFileError(0, `expected a file of at most ${MAX_IMPORT_FILE_BYTES} bytes, got more`)
  const out: VectorEntry[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/\r$/, '')
    if (line.trim().length === 0) continue
    if (Buffer.byteLength(line) > MAX_IMPORT_LINE_BYTES) throw new InvalidImportFileError(i + 1, `expected a line of at most ${MAX_IMPORT_LINE_BYTES} bytes, got ${Buffer.byteLength(line)}`)
    if (out.length >= MAX_IMPORT_ENTRIES) throw new InvalidImportFileError(i + 1, `expected at most ${MAX_IMPORT_ENTRIES} entries, got more`)
    let v: unknown
    try {
      v = JSON.parse(line)
    } catch {
      throw new InvalidImportFileError(i + 1, `expected a JSON object {"id", "vector", "metadata"?}, got ${JSON.stringify(line.slice(0, 40))}`)
    }
    try {
      out.push(checkEntry(v, dimensions))
    } catch (err) {
      throw new InvalidImportFileError(i + 1, (err as Error).message)
    }
  }
  if (out.length === 0) throw new InvalidImportFileError(0, 'expected at least one entry, got none')
  return out
}
