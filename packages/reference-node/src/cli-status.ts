/**
 * The commands that show the running node and its peers: `status`, `peers` and `connect`.
 */
import { checkNodeAddress } from './config.js'
import { MAX_TASK_TIMEOUT_MS, type TrafficSummary } from './control.js'
import { bytesText, controlCommand, ExitCode, GLOBAL_TEXT, intOption, needPositionals, note, print, secondsText, table, timeoutSignal, UsageError } from './cli-common.js'
import { hasPeerId, taskPolicyText } from './cli-config.js'
import { scoreText } from './cli-trust.js'
import { meshStatusLines, networkStatusLines } from './cli-discovery.js'
import type { NodePeer, NodeStatus } from './node.js'
import type { MigrationMetrics, MigrationTypeCounts } from './node-migration.js'
import type { VectorMetrics } from './node-vectors.js'

/** `2 connected, 3 known, redialing 1` */
export function peersLine(s: Pick<NodeStatus, 'peers' | 'peersKnown' | 'redial'>, now?: number): string {
  let next: number | undefined
  for (const t of s.redial?.targets ?? []) if (t.nextAt !== undefined && (next === undefined || t.nextAt < next)) next = t.nextAt
  const redialing = s.redial?.pending ?? 0
  return `${s.peers} connected, ${s.peersKnown ?? 0} known${redialing > 0 ? `, redialing ${redialing}${now !== undefined && next !== undefined ? ` (next attempt in ${secondsText(next - now)})` : ''}` : ''}`
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`
const total = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0)

/** `migration:  2 agents known (1 live), 0 running; 3 started, 2 committed, 0 aborted, 1 refused; 1 received` */
export function migrationStatusLine(m: MigrationMetrics): string {
  const sum = (f: (c: MigrationTypeCounts) => number): number => Object.values(m.byType).reduce((n, c) => n + f(c), 0)
  return `migration:  ${plural(total(m.agents), 'agent')} known (${m.agents.active ?? 0} live), ${m.inProgress} running; ${sum((c) => c.started)} started, ${sum((c) => c.committed)} committed, ${sum((c) => c.aborted.failed + c.aborted.cancelled)} aborted, ${sum((c) => total(c.refused))} refused; ${m.received} received`
}

/** `vectors:    1 collection, 120 entries held, 0 syncs running; 2 syncs ended (2 completed, 0 partial, 0 failed); 60 entries received, 0 rejected` */
export function vectorsStatusLine(v: VectorMetrics): string {
  return `vectors:    ${plural(v.collections, 'collection')}, ${plural(total(v.entries), 'entry').replace(/entrys$/, 'entries')} held, ${plural(v.syncsRunning, 'sync')} running; ${plural(total(v.syncs), 'sync')} ended (${v.syncs.completed} completed, ${v.syncs.partial} partial, ${v.syncs.failed} failed); ${v.entriesReceived} entries received, ${v.entriesRejected} rejected`
}

type StatusAnswer = NodeStatus & { record: unknown; traffic?: TrafficSummary; logFile?: string | null; time?: number }

export const status = controlCommand(
  `Usage: kos-mesh status

Shows the running node: DID, authority, addresses (listening and published), peers (connected,
known from earlier connections, being redialled, with the next attempt), task policy, trust
(anchors, statements held by kind, revoked DIDs, statements refused), traffic and rejects,
resident memory, the DHT (contacts, provider records held, names provided), the gossip views
(active, passive), broadcasts sent and received, sandboxed agents and their migrations (agents
known and live, migrations running, started, committed, aborted, refused; bundles received),
vector collections (collections, entries held, syncs running and ended by outcome, entries
received from peers and rejected), the log file, agents, and (with --json) its signed node record.

${GLOBAL_TEXT}
`,
  {},
  (ctx) => {
    needPositionals(ctx, 0, '')
    return async (c) => {
      const s = await c.call<StatusAnswer>('GET', '/v1/status')
      const now = s.time ?? ctx.clock.now()
      const lines = [
        `did:        ${s.did}`,
        `authority:  ${s.authority}`,
        `type:       ${s.nodeType}`,
        ...s.addrs.map((a) => `listening:  ${a}`),
        ...(s.published ?? []).map((a) => `published:  ${a}`),
        `peers:      ${peersLine(s, now)}`,
        ...(s.redial?.targets ?? [])
          .filter((t) => t.state === 'waiting' || t.state === 'dialing')
          .map((t) => `redialing:  ${t.did ?? '(seed)'}  ${t.addrs[0] ?? ''}  ${t.state === 'dialing' ? 'dialing now' : `attempt ${t.attempts + 1} in ${secondsText((t.nextAt ?? now) - now)}`}${t.lastError === undefined ? '' : ` (last: ${t.lastError})`}`),
        `tasks:      ${taskPolicyText(s.taskMinTrust ?? 0, s.taskEndorsements ?? 0)}`,
      ]
      if (s.trust !== undefined) {
        const t = s.trust
        const rejected = Object.values(t.rejected).reduce((a, b) => a + b, 0) + t.rateLimited
        lines.push(`trust:      ${t.anchors} anchor${t.anchors === 1 ? '' : 's'}, ${t.statements} statement${t.statements === 1 ? '' : 's'} held (${t.byKind.attestation} attestations, ${t.byKind.revocation} revocations, ${t.byKind.delta} deltas), ${t.revokedDids} revoked DID${t.revokedDids === 1 ? '' : 's'}, ${rejected} refused`)
      }
      if (s.traffic !== undefined) {
        const t = s.traffic
        const rejects = Object.entries(t.rejects).sort((a, b) => b[1] - a[1])
        lines.push(`traffic:    in ${t.messagesIn} messages (${bytesText(t.bytesIn)}), out ${t.messagesOut} messages (${bytesText(t.bytesOut)}), ${t.pendingRequests} pending requests, ${t.queueDepth} queued`)
        lines.push(`rejects:    ${rejects.length === 0 ? 'none' : rejects.map(([k, n]) => `${k} ${n}`).join(', ')}`)
        lines.push(`memory:     ${bytesText(t.residentMemoryBytes)} resident`)
      }
      lines.push(...meshStatusLines(s.mesh))
      lines.push(...networkStatusLines(s.network))
      if (s.migration !== undefined) lines.push(migrationStatusLine(s.migration))
      if (s.vectors !== undefined) lines.push(vectorsStatusLine(s.vectors))
      if (typeof s.logFile === 'string') lines.push(`log:        ${s.logFile} (kos-mesh logs --follow)`)
      lines.push('agents:', ...(s.agents.length === 0 ? ['  none'] : s.agents.map((a) => `  ${a.address}  [${a.capabilities.join(', ')}]  ${a.description}`)))
      print(ctx, lines.join('\n'), s)
      return ExitCode.OK
    }
  },
)

export const connect = controlCommand(
  `Usage: kos-mesh connect <address>

Connects the running node to a peer and exchanges peer tables. <address> is the peer's
transport address with its DID: tcp://127.0.0.1:4747/did:key:z6Mk... (port 1..65535; the
connection must authenticate as that DID, else exit 7). A node running libp2p is dialled at its
libp2p address as its \`kos-mesh start\` prints it,
libp2p:///ip4/192.0.2.7/tcp/4747/p2p/12D3KooW.../did:key:z6Mk... (a bare multiaddr /ip4/... is
taken too); its /p2p/<PeerId> names the peer as a DID does. Without the DID the node accepts
whichever node answers there and pins its authority to that DID on first use: connect prints
that DID so you can check it. The address and the DID are checked before anything is dialled;
a klp:// address (which names a node for task and trust) is a usage error.

Options:
  --timeout <ms>     give up after this long, a decimal integer (default: 15000)

${GLOBAL_TEXT}
`,
  { timeout: { type: 'string' } },
  (ctx) => {
    needPositionals(ctx, 1, '<address> (e.g. tcp://127.0.0.1:4747/did:key:z6Mk...)')
    let address = ctx.positionals[0] as string
    // validate first (scheme, port 1..65535, the DID), then ask the node to dial (a bare
    // multiaddr becomes libp2p://<multiaddr>)
    try {
      address = checkNodeAddress(address, 'dial', 'address')
    } catch (err) {
      const cause = (err as Error).cause as { code?: string } | undefined
      throw new UsageError(`<address>: ${(err as Error).message}`, cause?.code === 'ERR_INVALID_DID' ? 'ERR_INVALID_DID' : 'ERR_INVALID_ADDRESS')
    }
    const checked = address.includes('/did:') || hasPeerId(address)
    const timeoutMs = intOption('timeout', ctx.values.timeout, 1, MAX_TASK_TIMEOUT_MS) ?? 15_000
    return async (c) => {
      const r = await c.call<{ connected: { did: string; authority?: string } }>('POST', '/v1/connect', { address }, { timeoutMs, signal: timeoutSignal(ctx.clock, timeoutMs + 1000) })
      print(ctx, `connected to ${r.connected.did}${r.connected.authority === undefined ? '' : ` (${r.connected.authority})`}`, { ...r.connected, identityChecked: checked })
      if (!checked) {
        note(
          ctx,
          `the address named no DID, so the peer's identity was not pinned in advance: this node accepted ${r.connected.did} as whoever answers at ${address}${r.connected.authority === undefined ? '' : ` and pinned ${r.connected.authority} to it (trust on first use)`}. Check that DID with \`kos-mesh status\` on the peer, and connect with ${address.replace(/\/$/, '')}/${r.connected.did} from now on, so that another node there is refused.`,
        )
      }
      return ExitCode.OK
    }
  },
)

function peerState(p: NodePeer): string {
  if (p.connected) return 'connected'
  if (p.redial !== undefined) return 'redialing'
  if (p.known === true) return 'known'
  return 'discovered'
}

export const peers = controlCommand(
  `Usage: kos-mesh peers

Lists the peers of the running node, one per line under a header:
  STATE      connected; redialing (known, being redialled); known (from an earlier connection,
             saved in db/); discovered (from peer tables: signed node records)
  AUTHORITY  its KLP authority (- when not known yet)
  DID        its DID
  TYPE       its node type (from its signed record; - when none)
  TRUST      the trust score this node gives it now (0..10, see \`kos-mesh reputation\`)
  ADDRESSES  transport addresses it can be dialled at
Connected peers come first.

${GLOBAL_TEXT}
`,
  {},
  (ctx) => {
    needPositionals(ctx, 0, '')
    return async (c) => {
      const r = await c.call<{ peers: NodePeer[] }>('GET', '/v1/peers')
      const rows = r.peers.map((p) => [peerState(p), p.authority ?? '-', p.did, p.node_type ?? '-', scoreText(p.trust_score), p.addresses.join(' ') || '-'])
      print(ctx, rows.length === 0 ? 'no peers' : table(['STATE', 'AUTHORITY', 'DID', 'TYPE', 'TRUST', 'ADDRESSES'], rows), r.peers)
      return ExitCode.OK
    }
  },
)
