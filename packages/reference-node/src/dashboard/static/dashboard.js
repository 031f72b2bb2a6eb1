// The kos-mesh node dashboard (no framework, no build step). It takes the control API's token from
// the address's fragment (#token=..., never sent to the server), keeps it in this tab's
// sessionStorage, removes it from the address bar, and reads the node's snapshots from the
// event stream with fetch (EventSource cannot send a header). Every value from the node is shown
// as text (textContent / SVG attributes), never parsed as HTML: authorities and DIDs come from peers.

const TOKEN_KEY = 'kos-mesh-dashboard-token'
const SVG_NS = 'http://www.w3.org/2000/svg'
const COLORS = ['#dc2626', '#d97706', '#7c3aed', '#0891b2', '#16a34a', '#db2777', '#4b5563', '#2563eb']
const TITLES = { mesh: 'Mesh', trust: 'Trust', traffic: 'Messages and rejects', discovery: 'DHT and gossip', agents: 'Agents and migrations', vectors: 'Vector collections' }

function takeToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash)
  if (m !== null) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]))
    history.replaceState(null, '', location.pathname)
  }
  return sessionStorage.getItem(TOKEN_KEY)
}

/** An HTML element with attributes and children (strings become text nodes). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  // styles through the CSSOM: the page's CSP refuses style attributes
  for (const [k, v] of Object.entries(attrs)) if (k === 'style') el.style.cssText = String(v)
  else el.setAttribute(k, String(v))
  for (const c of children.flat()) el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  return el
}

/** An SVG element. */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  for (const c of children.flat()) el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  return el
}

function short(id) {
  if (typeof id !== 'string') return ''
  return id.length > 24 ? `${id.slice(0, 14)}…${id.slice(-6)}` : id
}

function label(n) {
  return n.authority !== undefined ? n.authority.split('.')[0] : short(n.id)
}

function setStatus(state, text) {
  const el = document.getElementById('status')
  el.dataset.state = state
  el.textContent = text
}

/** The panel of a section, created on first use; its body is emptied for a redraw. */
function panel(name) {
  let el = document.getElementById(`panel-${name}`)
  if (el === null) {
    el = h('section', { id: `panel-${name}`, class: 'panel', 'data-section': name }, h('h2', {}, TITLES[name] ?? name), h('div', { class: 'body' }))
    document.getElementById('panels').append(el)
  }
  const body = el.querySelector('.body')
  body.replaceChildren()
  return body
}

// ------------------------------------------------------------------ mesh

function layout(nodes, links) {
  const W = 420
  const H = 300
  const cx = W / 2
  const cy = H / 2
  const pos = new Map()
  const inner = nodes.filter((n) => n.state === 'connected')
  const outer = nodes.filter((n) => n.state !== 'connected' && n.state !== 'self')
  for (const n of nodes) if (n.state === 'self') pos.set(n.id, [cx, cy])
  inner.forEach((n, i) => {
    const a = (2 * Math.PI * i) / Math.max(1, inner.length) - Math.PI / 2
    pos.set(n.id, [cx + 95 * Math.cos(a), cy + 95 * Math.sin(a)])
  })
  outer.forEach((n, i) => {
    // a relayed node sits outside its next hop; the others share the outer ring
    const via = links.find((l) => l.to === n.id && l.kind === 'relayed')
    const p = via !== undefined ? pos.get(via.from) : undefined
    const base = p !== undefined ? Math.atan2(p[1] - cy, p[0] - cx) : (2 * Math.PI * i) / Math.max(1, outer.length)
    const a = base + (i % 3 - 1) * 0.25
    pos.set(n.id, [cx + 140 * Math.cos(a), cy + 130 * Math.sin(a)])
  })
  return { W, H, pos }
}

function renderMesh(snap) {
  const body = panel('mesh')
  const { nodes, links } = snap.mesh
  const { W, H, pos } = layout(nodes, links)
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'mesh graph', 'data-nodes': nodes.length })
  for (const l of links) {
    const a = pos.get(l.from)
    const b = pos.get(l.to)
    if (a === undefined || b === undefined) continue
    svg.append(s('line', { class: 'link', 'data-kind': l.kind, x1: a[0], y1: a[1], x2: b[0], y2: b[1] }))
  }
  for (const n of nodes) {
    const p = pos.get(n.id)
    const role = typeof n.role === 'string' ? n.role.charAt(0) : '?'
    const g = s('g', { class: 'node', 'data-state': n.state, 'data-id': n.id, transform: `translate(${p[0].toFixed(1)},${p[1].toFixed(1)})` },
      s('title', {}, `${n.authority ?? ''} ${n.id}\nrole ${n.role ?? 'unknown'}, ${n.state}${n.hops !== undefined ? `, ${n.hops} hop(s)` : ''}, trust ${n.trust}`),
      s('circle', { r: n.state === 'self' ? 16 : 12 }),
      s('text', { class: 'role' }, role),
      s('text', { y: n.state === 'self' ? 28 : 24, 'text-anchor': 'middle' }, label(n)))
    svg.append(g)
  }
  const count = (st) => nodes.filter((n) => n.state === st).length
  const reachable = 1 + count('connected') + count('relayed')
  body.append(
    h('p', { id: 'mesh-summary', 'data-reachable': reachable, 'data-connected': count('connected') },
      `${reachable} node${reachable === 1 ? '' : 's'} in reach: ${count('connected')} connected, ${count('relayed')} relayed; ${count('known') + count('discovered')} known or discovered, not connected`),
    svg,
    h('p', { class: 'legend' },
      ...[['self', 'var(--self)'], ['connected', 'var(--peer)'], ['relayed', 'var(--relay)'], ['known / discovered', 'var(--idle)']].map(([t, c]) => h('span', {}, h('i', { style: `background:${c}` }), t)),
      h('span', { class: 'muted' }, 'letter: role (P peer, G gateway, A archive, V validator); dashed: routed through a neighbour')),
  )
}

// ------------------------------------------------------------------ trust

function renderTrust(snap) {
  const body = panel('trust')
  const t = snap.trust
  const peers = snap.mesh.nodes.filter((n) => n.state !== 'self').sort((a, b) => b.trust - a.trust)
  body.append(h('p', {}, t.summary === null ? 'trust engine not running' : `${t.summary.anchors} anchors, ${t.summary.statements} statements, ${t.summary.revokedDids} revoked DIDs`))
  body.append(h('table', { id: 'trust-scores' },
    h('tr', {}, h('th', {}, 'peer'), h('th', {}, 'score'), h('th', {}, '')),
    ...peers.map((n) => h('tr', { 'data-id': n.id }, h('td', { class: 'mono', title: n.id }, label(n)), h('td', {}, n.trust.toFixed(2)),
      h('td', { style: 'width:40%' }, h('div', { class: 'bar', style: `width:${Math.max(0, Math.min(100, n.trust * 10))}%` }))))))
  if (t.anchors.length > 0) {
    body.append(h('h3', {}, 'Anchors (operator decisions)'), h('table', {},
      h('tr', {}, h('th', {}, 'DID'), h('th', {}, 'level'), h('th', {}, 'score'), h('th', {}, 'endorsements'), h('th', {}, '')),
      ...t.anchors.map((a) => h('tr', {}, h('td', { class: 'mono', title: a.did }, short(a.did)), h('td', {}, a.level), h('td', {}, a.score.toFixed(2)), h('td', {}, a.endorsements), h('td', {}, a.revoked ? 'revoked' : '')))))
  }
  body.append(h('h3', {}, `Who vouched (${t.vouches.length})`), t.vouches.length === 0 ? h('p', { class: 'muted' }, 'no attestations') : h('table', { id: 'trust-vouches' },
    h('tr', {}, h('th', {}, 'issuer'), h('th', {}, 'subject'), h('th', {}, 'claim'), h('th', {}, 'level')),
    ...t.vouches.map((v) => h('tr', {}, h('td', { class: 'mono', title: v.issuer }, short(v.issuer)), h('td', { class: 'mono', title: v.subject }, short(v.subject)), h('td', {}, v.claim ?? ''), h('td', {}, v.level ?? '')))))
  body.append(h('h3', {}, `Revocations (${t.revocations.length})`), t.revocations.length === 0 ? h('p', { class: 'muted' }, 'none') : h('table', { id: 'trust-revocations' },
    h('tr', {}, h('th', {}, 'issuer'), h('th', {}, 'subject'), h('th', {}, 'scope'), h('th', {}, 'reason')),
    ...t.revocations.map((v) => h('tr', {}, h('td', { class: 'mono', title: v.issuer }, short(v.issuer)), h('td', { class: 'mono', title: v.subject }, short(v.subject)), h('td', {}, v.scope ?? ''), h('td', {}, v.reason ?? '')))))
}

// ------------------------------------------------------------------ traffic

function lineChart(samples, series, unit) {
  const W = 420
  const H = 120
  const max = Math.max(1, ...samples.flatMap((x) => series.map((sr) => sr.get(x))))
  const svg = s('svg', { viewBox: `0 0 ${W} ${H + 14}`, role: 'img', 'aria-label': unit })
  svg.append(s('line', { x1: 30, y1: H, x2: W, y2: H, stroke: '#d7dbe2' }), s('text', { x: 0, y: 10 }, `${max.toFixed(max < 10 ? 1 : 0)}`), s('text', { x: 0, y: H }, '0'), s('text', { x: 34, y: H + 12, class: 'muted' }, unit))
  const step = (W - 30) / Math.max(1, samples.length - 1)
  series.forEach((sr, k) => {
    const pts = samples.map((x, i) => `${(30 + i * step).toFixed(1)},${(H - (sr.get(x) / max) * (H - 4)).toFixed(1)}`).join(' ')
    svg.append(s('polyline', { points: pts, fill: 'none', stroke: sr.color ?? COLORS[k % COLORS.length], 'stroke-width': 1.5 }))
    svg.append(s('text', { x: W - 120 + k * 60, y: H + 12, fill: sr.color }, sr.name))
  })
  return svg
}

function renderTraffic(snap) {
  const body = panel('traffic')
  const { samples, totals, intervalMs } = snap.traffic
  const last = samples[samples.length - 1]
  body.append(h('p', {}, `now: in ${last?.inPerSec ?? 0}/s, out ${last?.outPerSec ?? 0}/s, relayed ${last?.forwardedPerSec ?? 0}/s; since start: ${totals.messagesIn} in, ${totals.messagesOut} out (a sample every ${intervalMs} ms, ${samples.length} kept)`))
  body.append(lineChart(samples, [{ name: 'in', color: '#0891b2', get: (x) => x.inPerSec }, { name: 'out', color: '#16a34a', get: (x) => x.outPerSec }], 'messages per second'))
  const reasons = [...new Set([...Object.keys(totals.rejects), ...samples.flatMap((x) => Object.keys(x.rejects))])].sort()
  if (reasons.length === 0) {
    body.append(h('p', { class: 'muted', id: 'rejects-none' }, 'no rejects'))
    return
  }
  body.append(lineChart(samples, reasons.map((r, k) => ({ name: r.slice(0, 10), color: COLORS[k % COLORS.length], get: (x) => ((x.rejects[r] ?? 0) * 1000) / x.dt })), 'rejects per second, by reason'))
  body.append(h('table', { id: 'rejects' }, h('tr', {}, h('th', {}, 'reason'), h('th', {}, 'since start')),
    ...reasons.map((r, k) => h('tr', { 'data-reason': r }, h('td', { style: `color:${COLORS[k % COLORS.length]}` }, r), h('td', {}, totals.rejects[r] ?? 0)))))
}

// ------------------------------------------------------------------ discovery

function renderDiscovery(snap) {
  const body = panel('discovery')
  const d = snap.discovery
  const row = (k, v) => h('tr', {}, h('th', {}, k), h('td', {}, v))
  body.append(h('p', {}, 'DHT ', h('span', { class: 'badge', 'data-health': d.health.dht, id: 'dht-health' }, d.health.dht), '  gossip ', h('span', { class: 'badge', 'data-health': d.health.gossip, id: 'gossip-health' }, d.health.gossip)))
  const rows = []
  if (d.dht !== null) rows.push(row('DHT contacts', d.dht.contacts), row('DHT joined', d.dht.joined ? 'yes' : 'no'), row('provider records held', d.dht.providersStored), row('names provided', d.dht.provided.join(', ') || 'none'), row('DHT requests sent / served', `${d.dht.requestsSent} / ${d.dht.requestsServed}`))
  if (d.gossip !== null) rows.push(row('gossip views active / passive', `${d.gossip.active} / ${d.gossip.passive}`), row('gossip records', d.gossip.records), row('gossip messages sent / received', `${d.gossip.sent} / ${d.gossip.received}`))
  rows.push(row('broadcasts sent / received', `${d.broadcasts.sent} / ${d.broadcasts.received}`))
  body.append(h('table', {}, ...rows))
}

// ------------------------------------------------------------------ agents

function sizeText(n) {
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`
}

function renderAgents(snap) {
  const body = panel('agents')
  const d = snap.extra.agents
  const st = d.stats
  const live = d.agents.filter((a) => a.status === 'active').length
  body.append(h('p', { id: 'agents-summary', 'data-agents': d.agents.length, 'data-live': live },
    `${d.agents.length} agent${d.agents.length === 1 ? '' : 's'} known here, ${live} live; migrations since start: ${st.started} started, ${st.completed} completed, ${st.failed} failed, ${st.cancelled} cancelled; ${st.received} received`))
  if (d.agents.length > 0) {
    body.append(h('table', { id: 'agents-list' },
      h('tr', {}, h('th', {}, 'agent'), h('th', {}, 'name'), h('th', {}, 'owner'), h('th', {}, 'epoch'), h('th', {}, 'state'), h('th', {}, 'lineage')),
      ...d.agents.map((a) => h('tr', { 'data-id': a.agent_id, 'data-status': a.status },
        h('td', { class: 'mono' }, a.agent_id), h('td', {}, a.name), h('td', { class: 'mono', title: a.owner }, short(a.owner)), h('td', {}, a.epoch),
        h('td', {}, h('span', { class: 'badge', 'data-status': a.status }, a.status)), h('td', {}, a.lineage === undefined ? '' : `${a.lineage.kind} of ${a.lineage.parent}`)))))
    if (d.more > 0) body.append(h('p', { class: 'muted' }, `and ${d.more} more`))
  }
  body.append(h('h3', {}, `In progress (${d.migrations.length})`), d.migrations.length === 0 ? h('p', { class: 'muted' }, 'none') : h('table', { id: 'agents-migrations' },
    h('tr', {}, h('th', {}, 'agent'), h('th', {}, 'type'), h('th', {}, 'to'), h('th', {}, 'sent')),
    ...d.migrations.map((m) => {
      const pct = m.total > 0 ? Math.max(0, Math.min(100, (100 * m.bytes) / m.total)) : 0
      return h('tr', { 'data-id': m.agent_id },
        h('td', { class: 'mono' }, m.agent_id), h('td', {}, m.type), h('td', { class: 'mono', title: m.to }, short(m.to)),
        h('td', { style: 'width:40%' }, m.total > 0 ? `${sizeText(m.bytes)} of ${sizeText(m.total)}` : 'preparing', h('div', { class: 'bar', style: `width:${pct.toFixed(1)}%` })))
    })))
  body.append(h('h3', {}, `Recent (${d.recent.length})`), d.recent.length === 0 ? h('p', { class: 'muted' }, 'none') : h('table', { id: 'agents-recent' },
    h('tr', {}, h('th', {}, 'agent'), h('th', {}, 'type'), h('th', {}, 'to'), h('th', {}, 'outcome'), h('th', {}, 'ended')),
    ...d.recent.map((o) => h('tr', { 'data-id': o.agent_id, 'data-status': o.status },
      h('td', { class: 'mono' }, o.agent_id), h('td', {}, o.type), h('td', { class: 'mono', title: o.to }, short(o.to)),
      h('td', { title: o.error === undefined ? '' : o.error.message }, o.status === 'completed' ? 'completed' : `${o.status}: ${o.error?.reason ?? o.error?.name ?? ''}`),
      h('td', {}, new Date(o.ended_at).toLocaleTimeString())))))
}

// ------------------------------------------------------------------ vectors

function syncLine(v) {
  const failed = v.peers.filter((p) => p.status !== 'completed').length
  return `${v.status}: ${v.vectors_synced} entries fetched, ${v.shards_done} of ${v.shards_total} shards, ${v.peers.length} peer(s)${failed > 0 ? `, ${failed} failed` : ''}`
}

function renderVectors(snap) {
  const body = panel('vectors')
  const d = snap.extra.vectors
  const st = d.stats
  const entries = d.collections.reduce((n, c) => n + c.entries, 0)
  body.append(h('p', { id: 'vectors-summary', 'data-collections': d.collections.length, 'data-entries': entries },
    `${d.collections.length} collection${d.collections.length === 1 ? '' : 's'}, ${entries} entries held here; served ${st.requests} sync requests, received ${st.entriesReceived} entries, refused ${st.entriesRefused}`))
  for (const c of d.collections) {
    const s = c.sharding
    body.append(h('h3', { class: 'mono' }, c.name),
      h('p', { class: 'muted' }, `${c.dimensions} dimensions, ${c.metric}, ${c.quantization}, ${s.method}, ${s.shard_count} shard(s) x ${s.replication_factor} replica(s)`))
    body.append(h('table', { class: 'vectors-shards', 'data-collection': c.name, 'data-entries': c.entries },
      h('tr', {}, h('th', {}, 'shard'), h('th', {}, 'held'), h('th', {}, 'entries'), h('th', {}, 'versions'), h('th', {}, 'replicas')),
      ...c.shards.map((x) => h('tr', { 'data-shard': x.shard, 'data-held': x.held ? 'yes' : 'no' },
        h('td', {}, x.shard), h('td', {}, x.held ? 'yes' : 'no'), h('td', {}, x.held ? x.entries : '-'), h('td', {}, x.held ? x.versions : '-'),
        h('td', { class: 'mono', title: x.holders.join('\n') }, x.holders.length === 0 ? 'none' : x.holders.map(short).join(', '))))))
    if (c.last_sync !== null) body.append(h('p', { class: 'vectors-sync', 'data-status': c.last_sync.status }, `last sync: ${syncLine(c.last_sync)}`))
  }
  if (d.more > 0) body.append(h('p', { class: 'muted' }, `and ${d.more} more collections`))
  body.append(h('h3', {}, `Syncing (${d.syncs.length})`), d.syncs.length === 0 ? h('p', { class: 'muted' }, 'none') : h('table', { id: 'vectors-syncs' },
    h('tr', {}, h('th', {}, 'collections'), h('th', {}, 'progress')),
    ...d.syncs.map((v) => {
      const pct = v.shards_total > 0 ? Math.max(0, Math.min(100, (100 * v.shards_done) / v.shards_total)) : 0
      return h('tr', {}, h('td', { class: 'mono' }, v.collections.join(', ')),
        h('td', { style: 'width:50%' }, syncLine(v), h('div', { class: 'bar', style: `width:${pct.toFixed(1)}%` })))
    })))
}

// ------------------------------------------------------------------ any other section

function renderOther(name, snap) {
  const body = panel(name)
  const text = JSON.stringify(snap.extra[name], null, 2) ?? 'null'
  body.append(h('pre', {}, text.length > 20000 ? `${text.slice(0, 20000)}\n…` : text))
}

const RENDERERS = { mesh: renderMesh, trust: renderTrust, traffic: renderTraffic, discovery: renderDiscovery, agents: renderAgents, vectors: renderVectors }

function render(snap) {
  document.getElementById('self').textContent = `${snap.self.authority}  ${snap.self.did}  (${snap.self.nodeType})`
  for (const name of snap.sections) {
    try {
      ;(RENDERERS[name] ?? ((x) => renderOther(name, x)))(snap)
    } catch (err) {
      panel(name).append(h('p', { class: 'muted' }, `could not draw: ${err.message}`))
    }
  }
  // a section the node no longer reports loses its panel
  for (const el of document.querySelectorAll('.panel')) if (!snap.sections.includes(el.dataset.section)) el.remove()
  document.body.dataset.updated = String(snap.time)
}

// ------------------------------------------------------------------ the stream

function onFrame(frame) {
  let event = 'message'
  const data = []
  for (const line of frame.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim()
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''))
  }
  if (event === 'snapshot' && data.length > 0) render(JSON.parse(data.join('\n')))
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms)) // clock-exempt: the browser's own timer

async function run() {
  const token = takeToken()
  const headers = token === null ? {} : { authorization: `Bearer ${token}` }
  let backoff = 500
  for (;;) {
    try {
      const res = await fetch('/v1/dashboard/events', { headers, cache: 'no-store' })
      if (res.status === 401) {
        setStatus('unauthorized', token === null ? 'refused: no token (open the address `kos-mesh dashboard` prints)' : 'refused: wrong token (open the address `kos-mesh dashboard` prints)')
        return
      }
      if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}`)
      setStatus('live', 'live')
      backoff = 500
      const reader = res.body.getReader()
      const dec = new TextDecoder()
      let buf = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buf += dec.decode(value, { stream: true })
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          onFrame(buf.slice(0, i))
          buf = buf.slice(i + 2)
        }
        if (buf.length > 4 * 1024 * 1024) throw new Error('expected events of at most 4 MiB, got more')
      }
      setStatus('reconnecting', 'stream ended, reconnecting')
    } catch (err) {
      setStatus('reconnecting', `disconnected (${err.message}), reconnecting`)
    }
    await sleep(backoff)
    backoff = Math.min(10_000, backoff * 2)
  }
}

void run()
