/**
 * Errors of the agent runtime and the task service. Assert on `name` / `code`, never on message
 * text. Where a condition crosses the wire it is a task reason code (`TaskRejectReason`), not one
 * of these.
 */
import { InvalidParametersError, KosMeshError, PeerMismatchError, UnreachableError, type KosMeshErrorOptions } from '@kos-mesh/interface'

/** An agent is registered twice, or its definition is invalid. */
export class InvalidAgentError extends InvalidParametersError {
  static override readonly code: string = 'ERR_INVALID_AGENT'
  override name = 'InvalidAgentError'
  override readonly code: string = 'ERR_INVALID_AGENT'
}

/** No local agent has the capability a task asks for (wire reason `no_eligible_agents`). */
export class NoEligibleAgentsError extends KosMeshError {
  static override readonly code: string = 'ERR_NO_ELIGIBLE_AGENTS'
  override name = 'NoEligibleAgentsError'
  override readonly code: string = 'ERR_NO_ELIGIBLE_AGENTS'
}

/** A task's payload is not a valid TaskRequest (wire reason `invalid_task`). */
export class InvalidTaskError extends InvalidParametersError {
  static override readonly code: string = 'ERR_INVALID_TASK'
  override name = 'InvalidTaskError'
  override readonly code: string = 'ERR_INVALID_TASK'
}

/** A task request beyond the codec's limits (string length, item count, depth, message size). */
export class TaskTooLargeError extends InvalidTaskError {
  static override readonly code: string = 'ERR_TASK_TOO_LARGE'
  override name = 'TaskTooLargeError'
  override readonly code: string = 'ERR_TASK_TOO_LARGE'
}

/** An agent could not process its input (wire reason `agent_failed`). */
export class AgentFailedError extends KosMeshError {
  static override readonly code: string = 'ERR_AGENT_FAILED'
  override name = 'AgentFailedError'
  override readonly code: string = 'ERR_AGENT_FAILED'
}

/** The math agent could not parse or evaluate an expression. */
export class MathExpressionError extends InvalidParametersError {
  static override readonly code: string = 'ERR_MATH_EXPRESSION'
  override name = 'MathExpressionError'
  override readonly code: string = 'ERR_MATH_EXPRESSION'
}

/** A task addressed to a DID whose authority this node does not know (no pin, no discovery record). */
export class UnknownPeerError extends UnreachableError {
  static override readonly code: string = 'ERR_UNKNOWN_PEER'
  override name = 'UnknownPeerError'
  override readonly code: string = 'ERR_UNKNOWN_PEER'
  /** The DID that could not be resolved. */
  readonly did: string

  constructor(did: string, options?: KosMeshErrorOptions) {
    super(`expected a known authority for ${did} (pinned by a connection or from its signed node record; connect or bootstrap first), got none`, options)
    this.did = did
  }
}

/**
 * A task target and its expected signer disagree with the router's pins: the authority is
 * pinned to another DID (so the named DID could never answer for it).
 */
export class TargetConflictError extends PeerMismatchError {
  static override readonly code: string = 'ERR_TARGET_CONFLICT'
  override name = 'TargetConflictError'
  override readonly code: string = 'ERR_TARGET_CONFLICT'
}
