/**
 * The trust commands of `kos-mesh`: `trust` (operator anchors, and the list with computed scores),
 * `untrust`, `attest`, `revoke` and `reputation`. Each is a client of the running node's control
 * API (see control-trust.ts for the endpoints).
 */
import { parseAddress } from '@kos-mesh/klp-codec'
import { checkDid } from './did.js'
import { controlCommand, ExitCode, GLOBAL_TEXT, intOption, needPositionals, note, print, str, table, usage, UsageError, type Command, type Control, type Ctx } from './cli-common.js'
import type { TrustListEntry, StatementView } from './trust.js'
import type { ReputationReport } from '@kos-mesh/trust'

/** The claims of an attestation (ClaimType of @kos-mesh/trust). */
export const CLAIMS = ['trust', 'endorse', 'capability', 'role', 'key'] as const
/** Longest attestation lifetime (the engine's default bound). */
export const MAX_TTL_MS = 365 * 24 * 3600_000
const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000, w: 604_800_000 }

/** `90d`, `12h`, `30m`, `3600s`, `2w` -> ms (1 s .. 365 d). */
export function parseDuration(name: string, v: string): number {
  const m = /^([0-9]{1,9})(s|m|h|d|w)$/.exec(v)
  const ms = m === null ? Number.NaN : Number(m[1]) * (UNITS[m[2] as string] as number)
  if (!(ms >= 1000 && ms <= MAX_TTL_MS)) throw new UsageError(`--${name}: expected a duration from 1s to 365d like 90d, 12h, 30m or 3600s, got ${JSON.stringify(v.slice(0, 40))}`)
  return ms
}

/** A DID (valid) or a klp:// address (parsed), else a usage error. */
export function checkSubject(subject: string, what = '<did|address>'): void {
  if (!subject.startsWith('did:') && !subject.startsWith('klp://')) throw new UsageError(`${what}: expected did:... or klp://..., got ${JSON.stringify(subject.slice(0, 80))}`)
  if (subject.startsWith('did:')) usage(what, () => checkDid(subject))
  if (subject.startsWith('klp://')) {
    try {
      parseAddress(subject)
    } catch (err) {
      throw new UsageError(`${what}: ${(err as Error).message}`, 'ERR_INVALID_ADDRESS')
    }
  }
}

/** A score for people: an integer as it is, else two decimals. */
export function scoreText(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2)
}

function signed(n: number): string {
  return `${n > 0 ? '+' : ''}${scoreText(n)}`
}

function dateText(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms)
}

async function trustList(ctx: Ctx, c: Control): Promise<number> {
  const r = await c.call<{ trusted: TrustListEntry[] }>('GET', '/v1/trust')
  const rows = r.trusted.map((e) => [e.did, String(e.trust_score), scoreText(e.score), e.validator === true ? 'yes' : 'no', dateText(e.updated), e.subjects.filter((s) => s !== e.did).join(' ') || '-'])
  print(ctx, rows.length === 0 ? 'no trust decisions' : table(['DID', 'LEVEL', 'SCORE', 'VALIDATOR', 'UPDATED', 'NAMED AS'], rows), r.trusted)
  return ExitCode.OK
}

export const trust: Command = controlCommand(
  `Usage: kos-mesh trust <did|address> [<level>] [--level N] [--validator]
       kos-mesh trust [list]

Trusts a DID, or the node behind a klp:// address (klp://node-b.mesh.kai/agents/math), as an
anchor of this node's web of trust: the DID gets that score here, and the DIDs it attests get
scores through it (attenuated at each hop). An address resolves only through the running node's
pins (the DID that proved the authority in an authenticated, signed hello): connect to that node
first, or pass its DID. A discovery record is not enough (anyone can claim any authority there).
A did:key must be a valid Ed25519 did:key; other DID methods must match the W3C DID syntax
did:<method>:<method-specific-id>. With trust N, that DID passes this node's
policy.task_min_trust when N >= it, and messages that ask for a trust score up to N; its
endorsements (\`kos-mesh attest\`) count here when N >= 5. Persists in the node's database.

\`trust\` or \`trust list\` prints the anchors: DID, the level set, the score computed now (the
level, moved by reputation deltas, 0 once revoked), validator or not, when, and what was named;
\`kos-mesh untrust\` removes one.

Options:
  --level <N>        trust level, a decimal integer 0..10 (default: 5; 0 = known, not trusted:
                     no chain of attestations can raise it); also as the second argument
  --validator        also trust the DID as a validator: its key attestations and key
                     revocations count here

${GLOBAL_TEXT}
`,
  { level: { type: 'string' }, validator: { type: 'boolean' } },
  (ctx) => {
    if (ctx.positionals.length === 0 || ctx.positionals[0] === 'list') {
      if (ctx.positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(ctx.positionals[1])}`)
      if (ctx.values.level !== undefined) throw new UsageError('--level: not used by `trust list`')
      if (ctx.values.validator !== undefined) throw new UsageError('--validator: not used by `trust list`')
      return (c) => trustList(ctx, c)
    }
    if (ctx.positionals.length > 2) throw new UsageError(`unexpected argument ${JSON.stringify(ctx.positionals[2])}`)
    const subject = ctx.positionals[0] as string
    checkSubject(subject)
    const positional = ctx.positionals[1]
    if (positional !== undefined && ctx.values.level !== undefined) throw new UsageError('<level>: given twice (as an argument and with --level)')
    let level = 5
    if (positional !== undefined) level = intOption('level', positional, 0, 10) as number
    else level = intOption('level', ctx.values.level, 0, 10) ?? 5
    const validator = ctx.values.validator === true
    return async (c) => {
      const r = await c.call<{ trusted: TrustListEntry }>('POST', '/v1/trust', { subject, level, ...(validator ? { validator } : {}) })
      const t = r.trusted
      print(ctx, `trusted ${t.did} at level ${t.trust_score}${t.validator === true ? ' as a validator' : ''}${subject === t.did ? '' : ` (via ${subject})`}`, t)
      return ExitCode.OK
    }
  },
)

export const untrust: Command = controlCommand(
  `Usage: kos-mesh untrust <did|address>

Removes the trust decision (anchor) of a DID, or of the node behind a pinned klp:// address (as
for \`trust\`): the DID falls back to what the web of trust gives it (no trust unless an anchor
attests it), so a node with policy.task_min_trust > 0 refuses its tasks again. Its authority pin
stays. Exit 0 also when there was no decision.

${GLOBAL_TEXT}
`,
  {},
  (ctx) => {
    needPositionals(ctx, 1, '<did|address> (a did:key:... or klp://authority)')
    const subject = ctx.positionals[0] as string
    checkSubject(subject)
    return async (c) => {
      const r = await c.call<{ untrusted: { did: string; removed: boolean } }>('POST', '/v1/untrust', { subject })
      print(ctx, r.untrusted.removed ? `untrusted ${r.untrusted.did} (its trust decision was removed)` : `${r.untrusted.did} had no trust decision`, r.untrusted)
      return ExitCode.OK
    }
  },
)

function statementLine(s: StatementView): string {
  if (s.kind === 'attestation') {
    const what = `${s.claim}${s.level === undefined ? '' : ` ${s.level}`}${s.value === undefined ? '' : ` ${s.value}`}`
    return `${what}, context ${s.context ?? '*'}, expires ${dateText(s.expires_at ?? Number.NaN)}`
  }
  if (s.kind === 'revocation') return `${s.scope}${s.statement === undefined ? '' : ` ${s.statement}`}`
  return 'delta'
}

export const attest: Command = controlCommand(
  `Usage: kos-mesh attest <did|address> [options]

Signs an attestation by this node about a DID (or the node behind a pinned klp:// address),
keeps it in the node's database and floods it to the mesh (TRUST_ATTESTATION): each node that
receives it checks this node's signature and weighs it by the score it gives this node. By
default it is an endorsement at level 7: nodes that trust this node at 5 or more count it in the
DID's endorsements (what trust requirements such as required_endorsements ask for).

Options:
  --claim <claim>    trust, endorse, capability, role or key (default: endorse)
                     trust: "I trust it at level N"; endorse: the same, and counts as an
                     endorsement; capability / role: "it offers capability / runs as role
                     --value"; key: "I (a validator) checked its key binding"
  --level <N>        level for trust and endorse, a decimal integer 0..10 (default: 7)
  --value <name>     the capability or role (required for capability and role)
  --context <name>   where the claim applies (default: * = everywhere)
  --ttl <duration>   lifetime: 1s..365d, e.g. 90d, 12h, 30m (default: 90d)

\`kos-mesh revoke <did>\` withdraws this node's attestations about a DID.

${GLOBAL_TEXT}
`,
  { claim: { type: 'string' }, level: { type: 'string' }, value: { type: 'string' }, context: { type: 'string' }, ttl: { type: 'string' } },
  (ctx) => {
    needPositionals(ctx, 1, '<did|address> (the DID to attest)')
    const subject = ctx.positionals[0] as string
    checkSubject(subject)
    const claim = str(ctx.values.claim) ?? 'endorse'
    if (!(CLAIMS as readonly string[]).includes(claim)) throw new UsageError(`--claim: expected one of ${CLAIMS.join(', ')}, got ${JSON.stringify(claim.slice(0, 40))}`)
    const level = intOption('level', ctx.values.level, 0, 10)
    const leveled = claim === 'trust' || claim === 'endorse'
    if (level !== undefined && !leveled) throw new UsageError(`--level: only for --claim trust or endorse, got --claim ${claim}`)
    const value = str(ctx.values.value)
    const valued = claim === 'capability' || claim === 'role'
    if (valued && value === undefined) throw new UsageError(`missing --value (the ${claim} name) for --claim ${claim}`)
    if (!valued && value !== undefined) throw new UsageError(`--value: only for --claim capability or role, got --claim ${claim}`)
    if (value !== undefined && !/^[\x21-\x7e]{1,64}$/.test(value)) throw new UsageError(`--value: expected 1..64 printable characters without spaces, got ${JSON.stringify(value.slice(0, 80))}`)
    const context = str(ctx.values.context)
    if (context !== undefined && !/^[\x21-\x7e]{1,64}$/.test(context)) throw new UsageError(`--context: expected * or 1..64 printable characters without spaces, got ${JSON.stringify(context.slice(0, 80))}`)
    const ttl = str(ctx.values.ttl)
    const ttlMs = ttl === undefined ? undefined : parseDuration('ttl', ttl)
    const body = { subject, claim, ...(level === undefined ? {} : { level }), ...(value === undefined ? {} : { value }), ...(context === undefined ? {} : { context }), ...(ttlMs === undefined ? {} : { ttlMs }) }
    return async (c) => {
      const r = await c.call<{ attested: StatementView }>('POST', '/v1/attest', body)
      const s = r.attested
      print(ctx, `attested ${s.subject}${subject === s.subject ? '' : ` (via ${subject})`}: ${statementLine(s)}\n  statement: ${s.id}`, s)
      return ExitCode.OK
    }
  },
)

export const revoke: Command = controlCommand(
  `Usage: kos-mesh revoke <did|address>
       kos-mesh revoke --statement <id>
       kos-mesh revoke --key <did>
       kos-mesh revoke --self --yes

Signs a revocation by this node, applies it, keeps it in the node's database and floods it to
the mesh (TRUST_ATTESTATION). Revocations are never undone: attest again to vouch anew.
  <did|address>       every attestation of this node about that DID (issued until now)
  --statement <id>    one statement of this node, by id (\`kos-mesh reputation\` and
                      \`attest --json\` show ids)
  --key <did>         that DID's key, with this node as a validator: it counts on the nodes
                      that trust this node as a validator (\`trust <this DID> --validator\`),
                      and revokes the DID outright where they trust it at 7 or more
  --self --yes        this node's own DID, for good (key compromise): every node that gets
                      the revocation refuses this DID's messages from then on; create a new
                      identity afterwards. Refused without --yes.

Options:
  --reason <text>     a short reason kept in the revocation (up to 200 characters)

${GLOBAL_TEXT}
`,
  { statement: { type: 'string' }, key: { type: 'string' }, self: { type: 'boolean' }, yes: { type: 'boolean' }, reason: { type: 'string' } },
  (ctx) => {
    if (ctx.positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(ctx.positionals[1])}`)
    const subject = ctx.positionals[0]
    const statement = str(ctx.values.statement)
    const key = str(ctx.values.key)
    const self = ctx.values.self === true
    const given = [subject !== undefined, statement !== undefined, key !== undefined, self].filter(Boolean).length
    if (given === 0) throw new UsageError('missing what to revoke: <did|address>, --statement <id>, --key <did> or --self --yes')
    if (given > 1) throw new UsageError('expected one of <did|address>, --statement, --key and --self, got several')
    if (ctx.values.yes === true && !self) throw new UsageError('--yes: only for --self')
    const reason = str(ctx.values.reason)
    if (reason !== undefined && (reason.length === 0 || reason.length > 200)) throw new UsageError(`--reason: expected 1..200 characters, got ${reason.length}`)
    let body: Record<string, unknown>
    if (subject !== undefined) {
      checkSubject(subject)
      body = { subject, scope: 'attestations' }
    } else if (statement !== undefined) {
      if (!/^[a-z0-9]{8,128}$/.test(statement)) throw new UsageError(`--statement: expected a statement id (base32, like bafyrei...), got ${JSON.stringify(statement.slice(0, 80))}`)
      body = { statement, scope: 'statement' }
    } else if (key !== undefined) {
      usage('--key', () => checkDid(key))
      body = { subject: key, scope: 'key' }
    } else {
      if (ctx.values.yes !== true) {
        throw new UsageError("refusing to revoke this node's own DID without --yes: every node that receives the revocation refuses this DID for good (key compromise); run `kos-mesh revoke --self --yes` if that is what you want", 'ERR_CONFIRMATION_REQUIRED')
      }
      body = { self: true, scope: 'key', confirm: true }
    }
    if (reason !== undefined) body.reason = reason
    return async (c) => {
      const r = await c.call<{ revoked: StatementView }>('POST', '/v1/revoke', body)
      const s = r.revoked
      const what = s.scope === 'key' ? (s.subject === s.issuer ? `this node's own DID ${s.subject}` : `the key of ${s.subject}`) : s.scope === 'statement' ? `statement ${s.statement ?? ''} (about ${s.subject})` : `the attestations of this node about ${s.subject}`
      print(ctx, `revoked ${what}\n  revocation: ${s.id}`, s)
      if (s.scope === 'key' && s.subject === s.issuer) note(ctx, 'this DID is revoked for good: nodes that receive the revocation refuse its messages. Create a new identity: stop the node, move keystore.json away, and run `kos-mesh init --force`.')
      return ExitCode.OK
    }
  },
)

function evidenceRow(e: ReputationReport['evidence'][number]): string[] {
  const detail: string[] = []
  if (e.counts !== undefined) detail.push(Object.entries(e.counts).map(([k, n]) => `${k} ${String(n)}`).join(', '))
  if (e.window !== undefined) detail.push(`window ${dateText(e.window)}`)
  if (e.statement !== undefined) detail.push(e.statement)
  if (e.note !== undefined) detail.push(e.note)
  return [
    e.kind,
    e.issuer ?? '-',
    e.issuerScore === undefined ? '-' : scoreText(e.issuerScore),
    e.claim ?? '-',
    e.level === undefined ? '-' : String(e.level),
    signed(e.effect),
    e.decay === undefined ? '-' : e.decay.toFixed(2),
    detail.join('; ') || '-',
  ]
}

/** A reputation report for people. */
export function reputationText(r: ReputationReport): string {
  const lines = [
    `did:           ${r.did}`,
    `score:         ${scoreText(r.trust_score)}${r.revoked ? ' (revoked)' : ''}`,
    `verification:  ${r.verification_level}`,
    `endorsements:  ${r.endorsements}${r.endorsers.length === 0 ? '' : ` (${r.endorsers.join(', ')})`}`,
    `base:          ${scoreText(r.base)} (attestations: the best attenuated chain from an anchor)`,
    `reputation:    ${signed(r.reputation)} (reputation deltas, bounded)`,
    `path:          ${r.path.length === 0 ? 'none' : r.path.join(' -> ')}`,
    `revoked:       ${r.revoked ? 'yes' : 'no'}`,
    ...(r.capabilities.length === 0 ? [] : [`capabilities:  ${r.capabilities.join(', ')}`]),
    ...(r.roles.length === 0 ? [] : [`roles:         ${r.roles.join(', ')}`]),
    `computed:      ${dateText(r.computedAt)}`,
  ]
  lines.push('evidence:')
  if (r.evidence.length === 0) lines.push('  none')
  else lines.push(...table(['KIND', 'ISSUER', 'ISSUER SCORE', 'CLAIM', 'LEVEL', 'EFFECT', 'DECAY', 'DETAIL'], r.evidence.map(evidenceRow)).split('\n').map((l) => `  ${l}`))
  return lines.join('\n')
}

export const reputation: Command = controlCommand(
  `Usage: kos-mesh reputation <did|address>

Shows the score this node gives a DID (or the node behind a pinned klp:// address) and
everything behind it: the score (0..10), the verification level, the endorsements and who
gave them, the base (the best chain of attestations from this node's anchors, attenuated at
each hop), the reputation (net points from reputation deltas: what this node and others
observed, bounded), the path of that chain, whether the DID is revoked, and one evidence line
per anchor, attestation, delta and revocation: who vouched, its score here, the claim and level,
the points it moved and the decay applied. With --json, the full report.

${GLOBAL_TEXT}
`,
  {},
  (ctx) => {
    needPositionals(ctx, 1, '<did|address> (the DID to explain)')
    const subject = ctx.positionals[0] as string
    checkSubject(subject)
    return async (c) => {
      const r = await c.call<{ reputation: ReputationReport }>('GET', `/v1/reputation?subject=${encodeURIComponent(subject)}`)
      print(ctx, reputationText(r.reputation), r.reputation)
      return ExitCode.OK
    }
  },
)

/** The trust commands, by name. */
export const TRUST_COMMANDS: Record<string, Command> = { trust, untrust, attest, revoke, reputation }
