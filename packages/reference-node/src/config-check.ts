/** Shape checks shared by the config parsers (config.ts, config-trust.ts). */
import { InvalidConfigError } from './errors.js'

export function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** Throws InvalidConfigError naming the first key of `o` that is not in `allowed`. */
export function noExtra(where: string, o: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new InvalidConfigError(`${where}: expected one of ${allowed.join(', ')}, got unknown key "${k}"`)
}
