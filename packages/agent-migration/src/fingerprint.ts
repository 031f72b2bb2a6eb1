/**
 * The behavioural fingerprint: what the agent is (a hash of its code and configuration) and what
 * it does (the hash of its answer to each of its deterministic probes, run against the bundle's
 * state in the sandbox with deterministic host functions: `now()` is 0, `random()` is seeded with
 * 1, no secrets, the bundle's memory). The source computes it and signs it in the request; the
 * target re-runs it in its own sandbox before activation and refuses on any difference.
 */
import { equalBytes, type KLPValue } from '@kos-mesh/interface'
import { encodeValue } from '@kos-mesh/klp-codec'
import { arr, bytes, obj } from './check.js'
import { sha256 } from './cose.js'
import { FingerprintMismatchError, InvalidBundleError } from './errors.js'
import { runInSandbox } from './sandbox.js'
import type { BehavioralFingerprint, SerializedAgent } from './types.js'

/**
 * Caps on the sandbox while the probes run (`computeFingerprint`, `checkFingerprint`): each probe
 * gets the agent's own `memory_bytes` and `cpu_budget`, lowered to these.
 */
export interface FingerprintOptions {
  /** Upper bound of the heap for probes, bytes (the agent's own `memory_bytes` when lower). Default 64 MiB. */
  maxMemoryBytes?: number
  /** Upper bound of the instruction budget per probe. Default 1,000,000. */
  maxCpuBudget?: number
}

/**
 * Checks a decoded value as a {@link BehavioralFingerprint}: exact fields, version 1, a 32-byte
 * `code_hash` and at most `maxProbes` (default 16) 32-byte answer hashes. Does not re-run anything
 * (`checkFingerprint` does).
 *
 * @throws InvalidBundleError for any other shape.
 */
export function validateFingerprint(v: unknown, maxProbes = 16): BehavioralFingerprint {
  const o = obj(v, 'a fingerprint', ['v', 'code_hash', 'answers'])
  if (o.v !== 1) throw new InvalidBundleError('expected a fingerprint of version 1')
  return { v: 1, code_hash: bytes(o.code_hash, 'code_hash', 32, 32), answers: arr(o.answers, 'answers', maxProbes).map((a) => bytes(a, 'an answer hash', 32, 32)) }
}

/** SHA-256 of the DAG-CBOR of `{ runtime, code, params, probes }`. */
export function codeHash(agent: SerializedAgent): Uint8Array {
  const c = agent.configuration
  return sha256(encodeValue({ runtime: c.runtime, code: c.code, params: c.params, probes: c.probes } as KLPValue))
}

/** Runs the probes in the sandbox and returns the fingerprint (sandbox errors propagate, typed). */
export async function computeFingerprint(agent: SerializedAgent, options: FingerprintOptions = {}): Promise<BehavioralFingerprint> {
  const p = agent.permissions
  const memory = new Map(agent.memory_snapshot.entries.map((e) => [e.key, e.value]))
  const limits = { memoryBytes: Math.min(p.memory_bytes, options.maxMemoryBytes ?? 64 * 1024 * 1024), cpuBudget: Math.min(p.cpu_budget, options.maxCpuBudget ?? 1_000_000) }
  const host = { granted: new Set(p.capabilities), memory, secrets: {}, seed: 1, now: () => 0 }
  const answers: Uint8Array[] = []
  for (const probe of agent.configuration.probes) {
    const a = await runInSandbox({ code: agent.configuration.code, input: probe, state: agent.agent_state.data, params: agent.configuration.params }, limits, host)
    answers.push(sha256(encodeValue({ output: a.output, state: a.state } as KLPValue)))
  }
  return { v: 1, code_hash: codeHash(agent), answers }
}

/** Re-runs the fingerprint and throws FingerprintMismatchError unless it equals `claimed`. */
export async function checkFingerprint(claimed: BehavioralFingerprint, agent: SerializedAgent, options?: FingerprintOptions): Promise<void> {
  if (!equalBytes(claimed.code_hash, codeHash(agent))) throw new FingerprintMismatchError('expected the code hash of the fingerprint, got another code or configuration')
  const got = await computeFingerprint(agent, options)
  if (got.answers.length !== claimed.answers.length) throw new FingerprintMismatchError(`expected ${claimed.answers.length} probe answers, got ${got.answers.length}`)
  for (const [i, a] of got.answers.entries()) {
    if (!equalBytes(a, claimed.answers[i]!)) throw new FingerprintMismatchError(`expected the claimed answer to probe ${i}, got another`)
  }
}
