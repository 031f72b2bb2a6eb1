/**
 * The trust sections of the node configuration file: `trustPolicy` (what this node insists on per
 * message type) and `trust` (the options of the trust engine).
 */
import { KLPMessageType, VerificationLevel, type TrustRequirements } from '@kos-mesh/interface'
import type { TrustEngineInit } from '@kos-mesh/trust'
import { InvalidConfigError } from './errors.js'
import { isObj, noExtra } from './config-check.js'

/** The trust engine options a config file may set (numbers as in TrustEngineInit, `contexts` a list of names). */
export type TrustConfig = Pick<
  TrustEngineInit,
  | 'attenuation'
  | 'maxDepth'
  | 'attestationHalfLifeMs'
  | 'deltaHalfLifeMs'
  | 'endorserThreshold'
  | 'strongEndorsements'
  | 'validatorRevokeThreshold'
  | 'maxReputationGain'
  | 'maxOwnPenalty'
  | 'maxOthersPenalty'
  | 'deltaWindowMs'
  | 'maxStatementsPerIssuer'
  | 'maxStatements'
  | 'maxStatementsPerIssuerPerMinute'
  | 'contexts'
>

/** The numeric keys of TrustConfig. */
export const TRUST_CONFIG_NUMBERS = [
  'attenuation',
  'maxDepth',
  'attestationHalfLifeMs',
  'deltaHalfLifeMs',
  'endorserThreshold',
  'strongEndorsements',
  'validatorRevokeThreshold',
  'maxReputationGain',
  'maxOwnPenalty',
  'maxOthersPenalty',
  'deltaWindowMs',
  'maxStatementsPerIssuer',
  'maxStatements',
  'maxStatementsPerIssuerPerMinute',
] as const

const REQUIREMENT_KEYS = ['minimum_trust_score', 'required_endorsements', 'verification_level']

/** Checks `trustPolicy`: message types to partial TrustRequirements (missing fields 0 / none). */
export function parseTrustPolicy(v: unknown, where = 'trustPolicy'): Partial<Record<KLPMessageType, TrustRequirements>> {
  if (!isObj(v)) throw new InvalidConfigError(`${where}: expected an object of message types, got ${Array.isArray(v) ? 'array' : typeof v}`)
  const types = Object.values(KLPMessageType) as string[]
  const levels = Object.values(VerificationLevel) as string[]
  const out: Partial<Record<KLPMessageType, TrustRequirements>> = {}
  for (const [type, req] of Object.entries(v)) {
    if (!types.includes(type)) throw new InvalidConfigError(`${where}: expected message types (${types.join(', ')}), got ${JSON.stringify(type.slice(0, 64))}`)
    const w = `${where}.${type}`
    if (!isObj(req)) throw new InvalidConfigError(`${w}: expected an object, got ${Array.isArray(req) ? 'array' : typeof req}`)
    noExtra(w, req, REQUIREMENT_KEYS)
    const min = req.minimum_trust_score ?? 0
    if (typeof min !== 'number' || !Number.isFinite(min) || min < 0 || min > 10) throw new InvalidConfigError(`${w}.minimum_trust_score: expected a number in 0..10, got ${JSON.stringify(min)}`)
    const endorsements = req.required_endorsements ?? 0
    if (typeof endorsements !== 'number' || !Number.isInteger(endorsements) || endorsements < 0 || endorsements > 1000) throw new InvalidConfigError(`${w}.required_endorsements: expected an integer in 0..1000, got ${JSON.stringify(endorsements)}`)
    const level = req.verification_level ?? VerificationLevel.NONE
    if (typeof level !== 'string' || !levels.includes(level)) throw new InvalidConfigError(`${w}.verification_level: expected one of ${levels.join(', ')}, got ${JSON.stringify(level)}`)
    out[type as KLPMessageType] = { minimum_trust_score: min, required_endorsements: endorsements, verification_level: level as VerificationLevel }
  }
  return out
}

/** Checks `trust` (engine options): known keys, finite numbers, `contexts` a list of names. The engine checks the ranges at start. */
export function parseTrustConfig(v: unknown, where = 'trust'): TrustConfig {
  if (!isObj(v)) throw new InvalidConfigError(`${where}: expected an object, got ${Array.isArray(v) ? 'array' : typeof v}`)
  noExtra(where, v, [...TRUST_CONFIG_NUMBERS, 'contexts'])
  const out: Record<string, unknown> = {}
  for (const k of TRUST_CONFIG_NUMBERS) {
    const n = v[k]
    if (n === undefined) continue
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new InvalidConfigError(`${where}.${k}: expected a finite number >= 0, got ${JSON.stringify(n)}`)
    out[k] = n
  }
  if (v.contexts !== undefined) {
    const c = v.contexts
    if (!Array.isArray(c) || c.length > 64 || c.some((x) => typeof x !== 'string' || x.length < 1 || x.length > 64)) throw new InvalidConfigError(`${where}.contexts: expected a list of at most 64 names of 1..64 characters, got ${JSON.stringify(c).slice(0, 80)}`)
    out.contexts = [...new Set(c as string[])]
  }
  return out as TrustConfig
}
