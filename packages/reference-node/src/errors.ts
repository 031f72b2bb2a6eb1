/**
 * Errors of the reference node. Assert on `name` / `code`, never on message text. The errors of
 * agents and tasks live in `@kos-mesh/agents` and are re-exported here (the same classes).
 */
import {
  InvalidParametersError,
  KosMeshError,
  NotStartedError,
  UnreachableError,
  type KosMeshErrorOptions,
} from '@kos-mesh/interface'

export {
  InvalidAgentError,
  NoEligibleAgentsError,
  InvalidTaskError,
  TaskTooLargeError,
  AgentFailedError,
  MathExpressionError,
  UnknownPeerError,
  TargetConflictError,
} from '@kos-mesh/agents'

/** A service needs a component (or another service) that the node does not provide. */
export class MissingServiceDependencyError extends InvalidParametersError {
  static override readonly code: string = 'ERR_MISSING_SERVICE_DEPENDENCY'
  override name = 'MissingServiceDependencyError'
  override readonly code: string = 'ERR_MISSING_SERVICE_DEPENDENCY'
  /** The service that declared the need. */
  readonly service: string
  /** The component or service it needs. */
  readonly component: string

  constructor(service: string, component: string, options?: KosMeshErrorOptions) {
    super(`service "${service}" needs component "${component}", but the node provides none`, options)
    this.service = service
    this.component = component
  }
}

/** A service name collides with a built-in component or another service. */
export class DuplicateServiceError extends InvalidParametersError {
  static override readonly code: string = 'ERR_DUPLICATE_SERVICE'
  override name = 'DuplicateServiceError'
  override readonly code: string = 'ERR_DUPLICATE_SERVICE'
}

/** The node was used before `start()` or after `stop()`. */
export class NodeNotStartedError extends NotStartedError {
  static override readonly code: string = 'ERR_NODE_NOT_STARTED'
  override name = 'NodeNotStartedError'
  override readonly code: string = 'ERR_NODE_NOT_STARTED'
}

/** The configuration file or a config value is invalid. */
export class InvalidConfigError extends InvalidParametersError {
  static override readonly code: string = 'ERR_INVALID_CONFIG'
  override name = 'InvalidConfigError'
  override readonly code: string = 'ERR_INVALID_CONFIG'
}

/** The data directory has no configuration (run `kos-mesh init`). */
export class NotInitializedError extends KosMeshError {
  static override readonly code: string = 'ERR_NOT_INITIALIZED'
  override name = 'NotInitializedError'
  override readonly code: string = 'ERR_NOT_INITIALIZED'
}

/** The key-value store was used while closed. */
export class StoreClosedError extends NotStartedError {
  static override readonly code: string = 'ERR_STORE_CLOSED'
  override name = 'StoreClosedError'
  override readonly code: string = 'ERR_STORE_CLOSED'
}

/** The control API of a running node could not be reached (no node running for this data dir). */
export class NodeNotRunningError extends UnreachableError {
  static override readonly code: string = 'ERR_NODE_NOT_RUNNING'
  override name = 'NodeNotRunningError'
  override readonly code: string = 'ERR_NODE_NOT_RUNNING'
}

/** The control API refused the request (bad token, bad request) or failed. */
export class ControlApiError extends KosMeshError {
  static override readonly code: string = 'ERR_CONTROL_API'
  override name = 'ControlApiError'
  override readonly code: string = 'ERR_CONTROL_API'
  /** HTTP status of the control API's answer. */
  readonly status: number
  /** The `code` of the remote error, when the API returned one. */
  readonly remoteCode: string | undefined
  /** Wire reason (`no_eligible_agents`, ...) when a peer rejected the operation. */
  readonly reason: string | undefined

  constructor(message: string, status: number, remoteCode?: string, reason?: string, options?: KosMeshErrorOptions) {
    super(message, options)
    this.status = status
    this.remoteCode = remoteCode
    this.reason = reason
  }
}

/** Services depend on each other in a cycle. */
export class ServiceDependencyCycleError extends InvalidParametersError {
  static override readonly code: string = 'ERR_SERVICE_DEPENDENCY_CYCLE'
  override name = 'ServiceDependencyCycleError'
  override readonly code: string = 'ERR_SERVICE_DEPENDENCY_CYCLE'
}

/**
 * `trust klp://<authority>`: the authority is not pinned to a DID by an authenticated hello (a
 * self-asserted discovery record is not enough). Connect to the node first, or pass its DID.
 */
export class UnpinnedAuthorityError extends InvalidParametersError {
  static override readonly code: string = 'ERR_UNPINNED_AUTHORITY'
  override name = 'UnpinnedAuthorityError'
  override readonly code: string = 'ERR_UNPINNED_AUTHORITY'
  /** The authority that has no pin. */
  readonly authority: string

  constructor(authority: string, options?: KosMeshErrorOptions) {
    super(`expected "${authority}" to be pinned to a DID by an authenticated hello (connect to it first, or pass its DID), got no pin`, options)
    this.authority = authority
  }
}

/**
 * The node's datastore lost records it had: its integrity record is missing or older than the
 * marker written beside it (e.g. a LevelDB log truncated to 0 bytes, a deleted or replaced
 * database). Starting anyway would silently drop trust decisions and authority pins (reopening
 * trust on first use), so the store refuses to open. `resetStore: true` (CLI `--reset-store`)
 * accepts the database as it is. CLI exit 6.
 */
export class StoreIntegrityError extends KosMeshError {
  static override readonly code: string = 'ERR_STORE_INTEGRITY'
  override name = 'StoreIntegrityError'
  override readonly code: string = 'ERR_STORE_INTEGRITY'
  /** The database path. */
  readonly path: string
  /** What the marker says the store should hold. */
  readonly expected: string
  /** What was found. */
  readonly got: string

  constructor(path: string, expected: string, got: string, options?: KosMeshErrorOptions) {
    super(`the datastore at ${path} lost its records (expected ${expected}, got ${got}); restore it from a backup, or start with --reset-store (resetStore: true) to accept it as it is`, options)
    this.path = path
    this.expected = expected
    this.got = got
  }
}


/** A listen address is taken (EADDRINUSE): another node, or another program, listens there. CLI exit 1. */
export class AddressInUseError extends KosMeshError {
  static override readonly code: string = 'ERR_ADDRESS_IN_USE'
  override name = 'AddressInUseError'
  override readonly code: string = 'ERR_ADDRESS_IN_USE'
  /** The address (`host:port`). */
  readonly address: string

  constructor(address: string, options?: KosMeshErrorOptions) {
    super(`expected to listen on ${address}, got "address in use" (another node or program listens there; choose another port with --listen)`, options)
    this.address = address
  }
}

/** `kos-mesh init` on a data dir that already has a config.json, without --force or --reset. CLI exit 1. */
export class AlreadyInitializedError extends KosMeshError {
  static override readonly code: string = 'ERR_ALREADY_INITIALIZED'
  override name = 'AlreadyInitializedError'
  override readonly code: string = 'ERR_ALREADY_INITIALIZED'
}

/** `kos-mesh start` while a node already runs for the data dir. CLI exit 1. */
export class NodeAlreadyRunningError extends KosMeshError {
  static override readonly code: string = 'ERR_NODE_ALREADY_RUNNING'
  override name = 'NodeAlreadyRunningError'
  override readonly code: string = 'ERR_NODE_ALREADY_RUNNING'
}

/** The node's database is locked by another process (another node on the same data dir). CLI exit 1. */
export class DatabaseLockedError extends KosMeshError {
  static override readonly code: string = 'ERR_DATABASE_LOCKED'
  override name = 'DatabaseLockedError'
  override readonly code: string = 'ERR_DATABASE_LOCKED'
}

/** `kos-mesh stop`: the node did not exit within the timeout. CLI exit 1. */
export class StopTimeoutError extends KosMeshError {
  static override readonly code: string = 'ERR_STOP_TIMEOUT'
  override name = 'StopTimeoutError'
  override readonly code: string = 'ERR_STOP_TIMEOUT'
  /** The process id that is still running. */
  readonly pid: number

  constructor(pid: number, ms: number, options?: KosMeshErrorOptions) {
    super(`expected the node (pid ${pid}) to exit within ${ms} ms, got it still running`, options)
    this.pid = pid
  }
}

/** Revoking this node's own DID (key compromise, for good) was asked without the confirmation. */
export class ConfirmationRequiredError extends InvalidParametersError {
  static override readonly code: string = 'ERR_CONFIRMATION_REQUIRED'
  override name = 'ConfirmationRequiredError'
  override readonly code: string = 'ERR_CONFIRMATION_REQUIRED'
}

/** A statement id that names no statement this node issued and holds. */
export class UnknownStatementError extends InvalidParametersError {
  static override readonly code: string = 'ERR_UNKNOWN_STATEMENT'
  override name = 'UnknownStatementError'
  override readonly code: string = 'ERR_UNKNOWN_STATEMENT'
}

/** The node does not run a service an operation needs (`dht: false`, `gossip: false` or `services.discovery: false` in its config). */
export class ServiceOffError extends KosMeshError {
  static override readonly code: string = 'ERR_SERVICE_OFF'
  override name = 'ServiceOffError'
  override readonly code: string = 'ERR_SERVICE_OFF'
}
