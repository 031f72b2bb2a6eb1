/**
 * The engine's options with their defaults filled in and checked (see TrustEngineInit for the
 * meaning of each, docs/TRUST.md for the model they parametrise).
 */
import { InvalidParametersError } from '@kos-mesh/interface'
import { ANY_CONTEXT, Observation, type TrustEngineInit } from '../types.js'

export const DAY_MS = 86_400_000
export const MAX_DELTA_COUNT = 65_535

/** Points per counted observation (a delta's value is clamped to DELTA_MIN..DELTA_MAX). */
export const DEFAULT_DELTA_WEIGHTS: Readonly<Record<Observation, number>> = Object.freeze({
  [Observation.TASK_OK]: 0.05,
  [Observation.TASK_FAILED]: -0.2,
  [Observation.INVALID_MESSAGE]: -0.5,
  [Observation.FORGED_MESSAGE]: -2,
  [Observation.TIMEOUT]: -0.1,
})
export const DELTA_MIN = -5
export const DELTA_MAX = 1

export interface EngineConfig {
  self: string
  beta: number
  maxDepth: number
  attestationHalfLifeMs: number
  deltaHalfLifeMs: number
  endorserThreshold: number
  strongEndorsements: number
  validatorRevokeThreshold: number
  maxReputationGain: number
  maxOwnPenalty: number
  maxOthersPenalty: number
  deltaWindowMs: number
  maxStatementsPerIssuer: number
  maxStatements: number
  maxStatementsPerIssuerPerMinute: number
  syncRecomputeStatements: number
  recomputeIntervalMs: number
  /** A computed table is used for at most this long without a change (decay and expiry move on). */
  staleAfterMs: number
  contexts: ReadonlySet<string>
  maxRevocations: number
  deltaWeights: Readonly<Record<Observation, number>>
  maxObservedSubjects: number
  /** DIDs remembered by markAuthenticated. */
  maxAuthenticated: number
}

function num(name: string, v: number | undefined, def: number, ok: (x: number) => boolean, expected: string): number {
  if (v === undefined) return def
  if (typeof v !== 'number' || Number.isNaN(v) || !ok(v)) throw new InvalidParametersError(`${name}: expected ${expected}, got ${String(v)}`)
  return v
}

const positive = (x: number): boolean => x > 0
const nonNegative = (x: number): boolean => x >= 0
const posInt = (x: number): boolean => Number.isInteger(x) && x > 0
const score = (x: number): boolean => x >= 0 && x <= 10

export function resolveConfig(init: TrustEngineInit): EngineConfig {
  if (typeof init?.self !== 'string' || init.self.length === 0) throw new InvalidParametersError(`self: expected a DID, got ${String(init?.self)}`)
  const weights: Record<Observation, number> = { ...DEFAULT_DELTA_WEIGHTS }
  for (const [k, v] of Object.entries(init.deltaWeights ?? {})) {
    if (!(k in weights)) throw new InvalidParametersError(`deltaWeights: expected an observation name, got ${k}`)
    weights[k as Observation] = num(`deltaWeights.${k}`, v, 0, Number.isFinite, 'a finite number')
  }
  const contexts = new Set(init.contexts ?? [ANY_CONTEXT])
  contexts.add(ANY_CONTEXT) // a claim made for every context counts in every context
  const recomputeIntervalMs = num('recomputeIntervalMs', init.recomputeIntervalMs, 1000, nonNegative, 'a number >= 0')
  return {
    self: init.self,
    beta: num('attenuation', init.attenuation, 0.8, (x) => x > 0 && x < 1, 'a number in (0, 1)'),
    maxDepth: num('maxDepth', init.maxDepth, 6, posInt, 'a positive integer'),
    attestationHalfLifeMs: num('attestationHalfLifeMs', init.attestationHalfLifeMs, 90 * DAY_MS, positive, 'a number > 0 (Infinity: no decay)'),
    deltaHalfLifeMs: num('deltaHalfLifeMs', init.deltaHalfLifeMs, 7 * DAY_MS, positive, 'a number > 0'),
    endorserThreshold: num('endorserThreshold', init.endorserThreshold, 5, score, 'a score in 0..10'),
    strongEndorsements: num('strongEndorsements', init.strongEndorsements, 1, posInt, 'a positive integer'),
    validatorRevokeThreshold: num('validatorRevokeThreshold', init.validatorRevokeThreshold, 7, score, 'a score in 0..10'),
    maxReputationGain: num('maxReputationGain', init.maxReputationGain, 2, score, 'a number in 0..10'),
    maxOwnPenalty: num('maxOwnPenalty', init.maxOwnPenalty, 5, score, 'a number in 0..10'),
    maxOthersPenalty: num('maxOthersPenalty', init.maxOthersPenalty, 2, score, 'a number in 0..10'),
    deltaWindowMs: num('deltaWindowMs', init.deltaWindowMs, 3_600_000, posInt, 'a positive integer'),
    maxStatementsPerIssuer: num('maxStatementsPerIssuer', init.maxStatementsPerIssuer, 1024, posInt, 'a positive integer'),
    maxStatements: num('maxStatements', init.maxStatements, 200_000, posInt, 'a positive integer'),
    maxStatementsPerIssuerPerMinute: num('maxStatementsPerIssuerPerMinute', init.maxStatementsPerIssuerPerMinute, 60, positive, 'a number > 0'),
    syncRecomputeStatements: num('syncRecomputeStatements', init.syncRecomputeStatements, 10_000, nonNegative, 'a number >= 0'),
    recomputeIntervalMs,
    staleAfterMs: Math.max(num('maxScoreAgeMs', init.maxScoreAgeMs, 300_000, nonNegative, 'a number >= 0'), recomputeIntervalMs),
    contexts,
    maxRevocations: num('maxRevocations', init.maxRevocations, 100_000, posInt, 'a positive integer'),
    deltaWeights: weights,
    maxObservedSubjects: num('maxObservedSubjects', init.maxObservedSubjects, 10_000, posInt, 'a positive integer'),
    maxAuthenticated: 100_000,
  }
}

/** 2^(-age / halfLife), 1 for a non-positive age. */
export function decay(age: number, halfLifeMs: number): number {
  if (!(age > 0) || halfLifeMs === Infinity) return 1
  return Math.pow(2, -age / halfLifeMs)
}

export function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x
}
