#!/usr/bin/env node
// Generates docs/BENCHMARKS.md and its charts (docs/bench/*.svg, hand-written SVG) from
// bench-results/*.json: every figure beside the baseline measured in the same run, grouped as issue 16
// lists them. `pnpm bench` runs it after the benchmarks; `pnpm bench:report` alone redraws the report.
// Groups whose results do not exist yet say "not yet measured". The published IPFS and gossipsub figures
// of the DHT/gossip group are quoted from docs/DISCOVERY.md with their sources. Deterministic: the same inputs give
// the same files (no generation time is written).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
/** Rows per chart (a group with more gets several charts). */
export const ROWS_PER_CHART = 24

const any = () => true
const named = (re) => (r) => re.test(r.name) || re.test(r.baselineName ?? '')
/** Rows of the envelope group (KLP vs JSON + JWS, bench/envelope-vs-jws.ts in klp-codec); the codec group leaves them to it. */
const envelopeRow = named(/JWS/i)

/**
 * The groups of the report, in order. A row belongs to the first group with a source that matches
 * its file (by name) and the row; the rest go to "Other benchmarks", one part per file.
 */
export const GROUPS = [
  {
    id: 'codec',
    title: 'Codec and message pipeline vs bare signatures',
    about: 'Encoding, signing, decoding and verifying KLP messages (and the router pipeline around them) against one bare Ed25519 sign or verify of the same bytes, measured in the same run.',
    sources: [
      { file: /^klp-codec$/, row: (r) => !envelopeRow(r) },
      { file: /^klp-router$/, row: (r) => /^(pipeline,|codec decode|bare (native|noble) verify|split:)/.test(r.name) },
      { file: /^did-security$/, row: named(/^(sign|verify) 256 B/) },
    ],
  },
  {
    id: 'transport',
    title: 'KLP over TCP and over libp2p vs js-libp2p TCP + Noise + Yamux',
    about: 'Throughput and latency of KLP on its own TCP transport and as a libp2p protocol, against a bare js-libp2p stream (TCP + Noise + Yamux), plain node:net and node:net + AES-256-GCM, all in the same run.',
    sources: [
      { file: /^transport-libp2p$/, row: any },
      { file: /^transport-tcp$/, row: any },
      { file: /^klp-router$/, row: named(/request\/response/) },
    ],
  },
  {
    id: 'envelope',
    title: 'Signed envelope vs a JSON + JWS envelope (DIDComm, A2A)',
    about:
      'The COSE_Sign1 / DAG-CBOR envelope (framed) against the same message content as JSON signed with JWS (RFC 7515, EdDSA / Ed25519, same key, a did:key DID URL as kid) ' +
      'as DIDComm v2 signs it (General JSON over the base64url plaintext; our node:crypto implementation and the `jose` library) and as A2A does (JSON-RPC request, detached JWS over the RFC 8785 JCS form), ' +
      'for a small request, a ~1 KiB task request and a 64 KiB binary payload (packages/klp-codec/bench/envelope-vs-jws.ts). ' +
      'msg/s ratios are rate(KLP) / rate(JWS), > 1 is KLP faster; us/msg and byte ratios are KLP / JWS, < 1 is KLP smaller; all medians of interleaved per-pair ratios on CPU time, on a shared, noisy 2-core VM. ' +
      '"envelope only" rows sign with a constant signature and skip verification on both sides: Ed25519 dominates both formats, the encoding is where they differ. ' +
      'The JSON side does no schema validation and carries its message id; KLP validates every field and derives the id (SHA-256) on decode.',
    sources: [{ file: /./, row: envelopeRow }],
  },
  {
    id: 'discovery',
    title: 'DHT and gossip simulations vs published IPFS and gossipsub figures',
    about: 'The Kademlia DHT at 10,000 simulated nodes and gossip (HyParView + Plumtree) at 1,000, each against its baseline in the same simulation (plain one-path Kademlia over the same pairs; flooding over the same overlay). The published figures of the live IPFS DHT and of gossipsub (a simulation at the same size, live Ethereum measurements) follow, quoted from docs/DISCOVERY.md with their sources.',
    sources: [{ file: /^peer-discovery$/, row: named(/^(DHT sim|gossip)/) }],
    published: true,
  },
  {
    id: 'reconciliation',
    title: 'Set reconciliation vs sending the id list',
    about: 'Bytes and time of range-based set reconciliation of vector collections against sending the whole id list.',
    sources: [{ file: /^vector-mesh/, row: named(/reconcil|id list/i) }],
  },
  {
    id: 'search',
    title: 'Federated search: recall and QPS vs exact search',
    about: 'Federated k-NN search over shards against exact search of the same data.',
    sources: [{ file: /^vector-mesh/, row: named(/recall|search|qps|quer/i) }],
  },
  {
    id: 'migration',
    title: 'Agent migration vs the bare transfer',
    about: 'Moving an agent (bundle, checksums, two-phase protocol) against transferring its bytes alone.',
    sources: [{ file: /^agent-migration/, row: any }],
  },
]

/** Reads every bench-results/*.json, sorted by file name. */
export function readResults(root = ROOT) {
  const dir = join(root, 'bench-results')
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const json = JSON.parse(readFileSync(join(dir, f), 'utf8'))
      return { file: f.replace(/\.json$/, ''), date: typeof json.date === 'string' ? json.date : undefined, method: json.method ?? json.note, rows: Array.isArray(json.results) ? json.results : [] }
    })
}

/** Whether a row has a baseline figure from the same run. */
export function hasBaseline(r) {
  return typeof r.baseline === 'number' && Number.isFinite(r.baseline) && typeof r.value === 'number'
}

/** A number for the tables: thousands separated, 0-3 decimals by size. */
export function fmt(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–'
  const a = Math.abs(n)
  const digits = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 1 ? 2 : 3
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 })
}

/** The ratio of a row as the report writes it (`0.87x`); computed from value / baseline when the row has none. */
export function fmtRatio(r) {
  const ratio = typeof r.ratio === 'number' && Number.isFinite(r.ratio) ? r.ratio : hasBaseline(r) && r.baseline !== 0 ? r.value / r.baseline : undefined
  if (ratio === undefined) return '–'
  return `${ratio >= 100 ? ratio.toFixed(0) : ratio >= 10 ? ratio.toFixed(1) : ratio.toFixed(2)}x`
}

function mdCell(s) {
  return String(s ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

function xml(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function clip(s, n) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s
}

/** Assigns each row to its group: `{ [groupId]: [{ file, date, row }] }`, plus `other` by file. */
export function assign(results) {
  const out = Object.fromEntries([...GROUPS.map((g) => [g.id, []]), ['other', []]])
  for (const res of results) {
    for (const row of res.rows) {
      const group = GROUPS.find((g) => g.sources.some((s) => s.file.test(res.file) && s.row(row)))
      out[group?.id ?? 'other'].push({ file: res.file, date: res.date, row })
    }
  }
  return out
}

/**
 * A chart of rows with a baseline: per row, its figure (dark bar) over the baseline of the same run
 * (light bar), both on the row's own scale (the larger of the two is full width), with the numbers,
 * the unit and the ratio written beside them.
 */
export function chartSvg(title, items) {
  const W = 920
  const LABEL = 360
  const BAR = 300
  const ROW = 40
  const TOP = 34
  const H = TOP + items.length * ROW + 26
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="11">`,
    `<title>${xml(title)}</title>`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="8" y="20" font-size="14" font-weight="bold">${xml(clip(title, 110))}</text>`,
  ]
  items.forEach(({ file, row }, i) => {
    const y = TOP + i * ROW
    const max = Math.max(Math.abs(row.value), Math.abs(row.baseline)) || 1
    const wv = Math.max(1, (Math.abs(row.value) / max) * BAR)
    const wb = Math.max(1, (Math.abs(row.baseline) / max) * BAR)
    const better = row.higherIsBetter === false ? 'lower is better' : row.higherIsBetter === true ? 'higher is better' : ''
    parts.push(
      `<text x="8" y="${y + 13}">${xml(clip(row.name, 52))}</text>`,
      `<text x="8" y="${y + 27}" fill="#6b7280">${xml(clip(`vs ${row.baselineName ?? 'baseline'} (${file})`, 56))}</text>`,
      `<rect x="${LABEL}" y="${y + 4}" width="${wv.toFixed(1)}" height="12" fill="#2563eb"/>`,
      `<rect x="${LABEL}" y="${y + 18}" width="${wb.toFixed(1)}" height="12" fill="#cbd5e1"/>`,
      `<text x="${LABEL + BAR + 8}" y="${y + 14}">${xml(`${fmt(row.value)} ${row.unit ?? ''}`)}</text>`,
      `<text x="${LABEL + BAR + 8}" y="${y + 28}" fill="#6b7280">${xml(`${fmt(row.baseline)} · ${fmtRatio(row)}${better === '' ? '' : ` (${better})`}`)}</text>`,
    )
  })
  const ly = H - 10
  parts.push(
    `<rect x="8" y="${ly - 9}" width="10" height="10" fill="#2563eb"/><text x="22" y="${ly}">this project</text>`,
    `<rect x="110" y="${ly - 9}" width="10" height="10" fill="#cbd5e1"/><text x="124" y="${ly}">baseline, same run (each row on its own scale)</text>`,
    '</svg>',
  )
  return parts.join('\n') + '\n'
}

/** The published-figures parts of docs/DISCOVERY.md: the IPFS side-by-side table and the published gossipsub figures, with their sources. */
export function publishedFigures(root = ROOT) {
  const path = join(root, 'docs', 'DISCOVERY.md')
  if (!existsSync(path)) return undefined
  const text = readFileSync(path, 'utf8')
  const start = text.indexOf('### Side by side with the public IPFS DHT')
  if (start < 0) return undefined
  const end = text.indexOf('\n## ', start)
  const ipfs = text.slice(start, end < 0 ? undefined : end).replace(/^### .*\n/, '').trim()
  // the gossip section's "### Published gossipsub figures" subsection, up to the next heading
  const gStart = text.indexOf('### Published gossipsub figures')
  const gEnd = gStart < 0 ? -1 : text.slice(gStart + 1).search(/\n##/)
  const gossipsubSection = gStart < 0 ? '' : text.slice(gStart, gEnd < 0 ? undefined : gStart + 1 + gEnd)
  const gossipsubFigures = gStart < 0 ? undefined : gossipsubSection.replace(/^### .*\n/, '').trim()
  // outside that subsection: lines that mention gossipsub; a row of a parameter table as "cell = cell: cell"
  const gossipsub = text
    .replace(gossipsubSection, '')
    .split('\n')
    .filter((l) => /gossipsub/i.test(l))
    .map((l) => {
      const cells = l.trim().startsWith('|') ? l.split('|').map((c) => c.trim()).filter((c) => c.length > 0) : []
      return cells.length >= 3 ? `${cells[0]} = ${cells[1]}: ${cells.slice(2).join('; ')}` : l.trim()
    })
  return { ipfs, gossipsub, gossipsubFigures }
}

function table(items) {
  const lines = ['| benchmark | result | baseline (same run) | ratio | target | run |', '|---|---|---|---|---|---|']
  for (const { file, date, row } of items) {
    const base = hasBaseline(row) ? `${fmt(row.baseline)} ${row.unit ?? ''}: ${row.baselineName ?? 'baseline'}` : '–'
    const better = row.higherIsBetter === false ? ' (lower is better)' : ''
    lines.push(`| ${mdCell(row.name)} | ${fmt(row.value)} ${mdCell(row.unit ?? '')} | ${mdCell(base)} | ${hasBaseline(row) ? `${fmtRatio(row)}${better}` : '–'} | ${mdCell(row.target ?? '')} | ${file}${date === undefined ? '' : `, ${date.slice(0, 10)}`} |`)
  }
  return lines.join('\n')
}

function charts(id, title, items, svgs) {
  const withBase = items.filter((x) => hasBaseline(x.row))
  const out = []
  for (let i = 0; i < withBase.length; i += ROWS_PER_CHART) {
    const part = withBase.length > ROWS_PER_CHART ? `-${i / ROWS_PER_CHART + 1}` : ''
    const name = `${id}${part}.svg`
    svgs.set(name, chartSvg(`${title}${part === '' ? '' : ` (${i / ROWS_PER_CHART + 1})`}`, withBase.slice(i, i + ROWS_PER_CHART)))
    out.push(`![${title}${part}](bench/${name})`)
  }
  return out
}

/** The report and its charts (not written): `{ markdown, svgs: Map<file name, svg text> }`. */
export function generate(root = ROOT) {
  const results = readResults(root)
  const groups = assign(results)
  const svgs = new Map()
  const md = [
    '# Benchmarks',
    '',
    '<!-- Generated by scripts/bench-report.mjs from bench-results/*.json; `pnpm bench` regenerates it (`pnpm bench:report` redraws it alone). Do not edit by hand. -->',
    '',
    'Every figure stands beside a baseline measured in the same run, on the same machine (a shared 2-core VM, Node 20,',
    'unless a run says otherwise). The ratio is the figure over its baseline; the benchmarks on noisy machines report',
    'medians of interleaved pairs (see each file\'s `method` in bench-results/). Charts: the dark bar is this project,',
    'the light bar its baseline, each row on its own scale.',
    '',
    '| group | status |',
    '|---|---|',
    ...GROUPS.map((g) => `| [${g.title}](#${g.id}) | ${groups[g.id].length === 0 ? 'not yet measured' : `${groups[g.id].length} results, ${groups[g.id].filter((x) => hasBaseline(x.row)).length} with a baseline`} |`),
    `| [Other benchmarks](#other) | ${groups.other.length} results |`,
    '',
  ]
  for (const g of GROUPS) {
    md.push(`<a id="${g.id}"></a>`, '', `## ${g.title}`, '', g.about, '')
    const items = groups[g.id]
    if (items.length === 0) md.push('**Not yet measured**: no benchmark has written these results to bench-results/ yet.', '')
    else md.push(...charts(g.id, g.title, items, svgs).flatMap((c) => [c, '']), table(items), '')
    if (g.published === true) {
      const pub = publishedFigures(root)
      md.push('### Published figures (their numbers, not ours; from docs/DISCOVERY.md)', '')
      if (pub === undefined) md.push('docs/DISCOVERY.md has no side-by-side section.', '')
      else {
        md.push(pub.ipfs, '')
        if (pub.gossipsubFigures !== undefined) md.push('Gossipsub (from the "Published gossipsub figures" subsection of docs/DISCOVERY.md):', '', pub.gossipsubFigures, '')
        else md.push('Gossipsub: docs/DISCOVERY.md quotes no measured gossipsub figure; what it says of gossipsub (its mesh degree, which the gossip parameters are set against):', '', ...pub.gossipsub.map((l) => `- ${l}`), '')
      }
    }
  }
  md.push('<a id="other"></a>', '', '## Other benchmarks', '', 'Results outside the groups above (bulk transfer, behaviour under attack, trust, the memory transport and simulator, ...), by file.', '')
  for (const file of [...new Set(groups.other.map((x) => x.file))]) {
    const items = groups.other.filter((x) => x.file === file)
    md.push(`### ${file}`, '', ...charts(`other-${file}`, file, items, svgs).flatMap((c) => [c, '']), table(items), '')
  }
  return { markdown: md.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n', svgs }
}

/** Writes docs/BENCHMARKS.md and docs/bench/*.svg (removing charts no longer drawn). */
export function write(root = ROOT) {
  const { markdown, svgs } = generate(root)
  const dir = join(root, 'docs', 'bench')
  mkdirSync(dir, { recursive: true })
  for (const f of readdirSync(dir)) if (f.endsWith('.svg') && !svgs.has(f)) rmSync(join(dir, f))
  for (const [name, svg] of svgs) writeFileSync(join(dir, name), svg)
  writeFileSync(join(root, 'docs', 'BENCHMARKS.md'), markdown)
  return { markdown, svgs }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { svgs } = write()
  console.log(`docs/BENCHMARKS.md written, with ${svgs.size} charts in docs/bench/`)
}
