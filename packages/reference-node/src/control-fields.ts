/**
 * Request bodies of the control API: reading (bounded), JSON parsing, and the checks of its
 * fields, with the HTTP error each failure answers.
 */
import type { IncomingMessage } from 'node:http'

/** Largest request body accepted by the control API. */
export const MAX_CONTROL_BODY_BYTES = 1024 * 1024

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly reason?: string,
  ) {
    super(message)
  }
}

/** Raw number tokens of a JSON body's top-level members, by member name (kept beside the parsed body). */
export const RAW_NUMBERS = Symbol('rawNumbers')
export type Body = Record<string | symbol, unknown>

/**
 * The source text of each number that is the value of a top-level member of a valid JSON object
 * (`{"level": 1e1}` -> level: "1e1"). JSON.parse forgets how a number was written, and the API
 * documents its integer fields as plain decimal integers.
 */
export function topLevelNumberTokens(text: string): Map<string, string> {
  const out = new Map<string, string>()
  let depth = 0
  let key: string | undefined
  let inValue = false
  for (let i = 0; i < text.length; ) {
    const c = text[i] as string
    if (c === '"') {
      let j = i + 1
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1
      if (depth === 1 && !inValue) key = JSON.parse(text.slice(i, j + 1)) as string
      inValue = false
      i = j + 1
    } else if (c === '{' || c === '[') {
      depth++
      inValue = false
      i++
    } else if (c === '}' || c === ']') {
      depth--
      i++
    } else if (c === ':' && depth === 1) {
      inValue = true
      i++
    } else if (c === ',') {
      inValue = false
      i++
    } else if (depth === 1 && inValue && (c === '-' || (c >= '0' && c <= '9'))) {
      let j = i + 1
      while (j < text.length && /[-+0-9.eE]/.test(text[j] as string)) j++
      if (key !== undefined) out.set(key, text.slice(i, j))
      inValue = false
      i = j
    } else {
      i++
    }
  }
  return out
}

export async function readBody(req: IncomingMessage, maxBytes = MAX_CONTROL_BODY_BYTES): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > maxBytes) throw new HttpError(413, 'ERR_BODY_TOO_LARGE', `expected a body of at most ${maxBytes} bytes, got more`)
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return {}
  const text = Buffer.concat(chunks).toString('utf8')
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw new HttpError(400, 'ERR_BAD_JSON', 'expected a JSON body, got invalid JSON')
  }
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) Object.defineProperty(body, RAW_NUMBERS, { value: topLevelNumberTokens(text) })
  return body
}

export function field<T>(body: unknown, name: string, type: 'string' | 'number' | 'object' | 'boolean', optional = false): T {
  const v = (body as Record<string, unknown> | null)?.[name]
  if (v === undefined && optional) return undefined as T
  if (typeof v !== type || v === null) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "${name}" to be a ${type}, got ${v === null ? 'null' : typeof v}`)
  return v as T
}

/** An integer field in min..max, written as a plain decimal integer (not 5.5, 1e3 or 5.0). */
export function intField(body: unknown, name: string, min: number, max: number): number | undefined {
  const v = field<number | undefined>(body, name, 'number', true)
  if (v === undefined) return undefined
  const raw = ((body as Body)[RAW_NUMBERS] as Map<string, string> | undefined)?.get(name) ?? String(v)
  if (!/^-?(?:0|[1-9][0-9]{0,15})$/.test(raw) || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "${name}" to be a decimal integer in ${min}..${max}, got ${raw.slice(0, 40)}`)
  }
  return v
}


/** An integer given as a query parameter (a plain decimal integer in min..max), or undefined. */
export function intParam(query: unknown, name: string, min: number, max: number): number | undefined {
  const v = (query as Record<string, unknown> | null)?.[name]
  if (v === undefined) return undefined
  const n = typeof v === 'string' && /^-?(?:0|[1-9][0-9]{0,15})$/.test(v) ? Number(v) : Number.NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new HttpError(400, 'ERR_INVALID_PARAMETERS', `expected "${name}" to be a decimal integer in ${min}..${max}, got ${JSON.stringify(String(v).slice(0, 40))}`)
  return n
}
