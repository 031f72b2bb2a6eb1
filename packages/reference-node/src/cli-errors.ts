/**
 * How `kos-mesh` turns an error into an exit code and a hint for the operator.
 */
import { ExitCode } from './cli-common.js'

export function exitCodeOf(err: unknown): number {
  const e = err as { name?: string; code?: string; status?: number; reason?: string; remoteCode?: string }
  if (e.name === 'UsageError') return ExitCode.USAGE
  if (e.name === 'NodeNotRunningError') return ExitCode.NOT_RUNNING
  if (['NotInitializedError', 'InvalidConfigError', 'KeystorePassphraseError', 'KeystoreFormatError', 'StoreIntegrityError'].includes(e.name ?? '')) return ExitCode.CONFIG
  if (e.name === 'ControlApiError') {
    if (e.remoteCode === 'ERR_NODE_NOT_FOUND') return ExitCode.UNREACHABLE
    if (e.remoteCode === 'ERR_SERVICE_OFF') return ExitCode.CONFIG
    if (e.status === 502) return ExitCode.REJECTED
    if (e.status === 504) return ExitCode.UNREACHABLE
    if (e.status === 409) return ExitCode.IDENTITY
    // a bad argument, or a body over the control API's limit
    if (e.status === 400 || e.status === 413) return ExitCode.USAGE
    return ExitCode.FAILURE
  }
  return ExitCode.FAILURE
}

export function hint(err: unknown): string | undefined {
  const e = err as { name?: string; reason?: string; status?: number; remoteCode?: string }
  if (e.name === 'ControlApiError' && e.reason === 'no_eligible_agents') return 'no agent there has that capability; `kos-mesh peers` lists nodes, `kos-mesh task --help` the built-in agents'
  if (e.name === 'ControlApiError' && e.reason === 'insufficient_trust') return 'the peer must trust this node: run `kos-mesh trust <this node DID> --level N` on the peer (N >= its policy.task_min_trust), or, if it asks for endorsements, `kos-mesh attest <this node DID>` on nodes it trusts'
  if (e.name === 'ControlApiError' && e.remoteCode === 'ERR_REVOKED_DID') return "this node's DID is revoked (`kos-mesh revoke --self`): it signs nothing any more; create a new identity"
  if (e.name === 'ControlApiError' && e.remoteCode === 'ERR_CONFIRMATION_REQUIRED') return 'revoking this node\'s own DID is for good: pass --yes'
  if (e.name === 'ControlApiError' && e.remoteCode === 'ERR_UNPINNED_AUTHORITY') return '`kos-mesh connect <address>/did:...` to that node first, or pass its DID: `kos-mesh trust did:key:... --level N`'
  if (e.name === 'ControlApiError' && e.remoteCode === 'ERR_UNKNOWN_PEER') return 'connect to that node, or bootstrap from a seed that knows it (`kos-mesh peers` lists what is known)'
  if (e.name === 'ControlApiError' && e.remoteCode === 'ERR_NODE_NOT_FOUND') return 'no node in the DHT answered with a verified record of that DID: check the DID, and that the node runs and shares a peer with this one (`kos-mesh status` shows the DHT contacts)'
  if (e.name === 'ControlApiError' && e.remoteCode === 'ERR_SERVICE_OFF' && e.reason === 'vectors') return 'turn vector collections on: `kos-mesh init --force --vectors` (adds "vectors": {} to config.json), then restart the node'
  if (e.name === 'ControlApiError' && e.remoteCode === 'ERR_SERVICE_OFF') return 'the node runs without that service: remove `"dht": false` (or `"gossip": false`) from config.json and restart the node'
  if (e.name === 'ControlApiError' && e.status === 409) return 'the node at that address is not the one you named (or the authority is bound to another DID); check the DID with `kos-mesh status` on the peer, and the address'
  if (e.name === 'ControlApiError' && e.status === 504) return 'check the address and that the peer runs (`kos-mesh peers`)'
  if (e.name === 'KeystorePassphraseError') return 'KOS_MESH_PASSPHRASE must be the passphrase the keystore was created with'
  if (e.name === 'StoreIntegrityError') return 'restore db/ (and db.integrity.json) from a backup; or, to go on without what was lost, `kos-mesh start --reset-store` once'
  if (e.name === 'AddressInUseError') return 'another node (or program) listens there: stop it, or give this node its own port with `kos-mesh start --listen tcp://127.0.0.1:<port>` (libp2p: `--listen /ip4/127.0.0.1/tcp/<port>`; saved to config.json)'
  return undefined
}
