/**
 * The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
 * against a mesh of real reference nodes: the page loads and shows three nodes, updates when a
 * peer joins and when it leaves, never puts the token in a request URL, and a request without the
 * token is refused; an agent deployed on the node appears in the agents panel and its move to a
 * peer shows there. Skips only when Chromium is missing and could not be installed (.ci/run installs
 * it with apt-get as root).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BrowserContext, Page } from 'playwright-core'
import { haveChromium, launchChromium } from './browser-helpers.js'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { startControlServer, type ControlServer } from '../src/control.js'
import { createNode, memory, type KosMeshNode } from '../src/index.js'
import type { NodeAgentMigration } from '../src/node-migration.js'

const HAVE_CHROMIUM = await haveChromium('dashboard.browser.test.ts')

const WAIT_MS = 20_000

describe.skipIf(!HAVE_CHROMIUM)('dashboard in headless Chromium', () => {
  const network = createMemoryNetwork()
  const nodes: KosMeshNode[] = []
  let a: KosMeshNode
  let server: ControlServer
  let context: BrowserContext
  let profile: string
  const requested: string[] = []

  const node = (name: string): KosMeshNode => {
    const n = createNode({ authority: `${name}.mesh.kai`, transports: [memory({ network })], listen: [`memory://${name}`] })
    nodes.push(n)
    return n
  }

  beforeAll(async () => {
    a = node('a')
    const b = node('b')
    const c = node('c')
    await Promise.all([a.start(), b.start(), c.start()])
    await a.connect('memory://b')
    await a.connect('memory://c')
    server = await startControlServer({ node: a, dashboard: { sampleIntervalMs: 200 } })
    profile = await mkdtemp(join(tmpdir(), 'kos-chromium-'))
    context = await launchChromium(profile)
    context.on('request', (r) => void requested.push(r.url()))
  }, 90_000)

  afterAll(async () => {
    await context?.close().catch(() => {})
    await server?.close()
    await Promise.allSettled(nodes.map((n) => n.stop()))
    if (profile !== undefined) await rm(profile, { recursive: true, force: true })
  })

  const summary = (page: Page, attr: 'data-reachable' | 'data-connected', value: number) =>
    page.waitForSelector(`#mesh-summary[${attr}="${value}"]`, { timeout: WAIT_MS })

  it('shows the three-node mesh, then a peer joining and leaving', async () => {
    const page = await context.newPage()
    await page.goto(`http://127.0.0.1:${server.port}/dashboard#token=${encodeURIComponent(server.token)}`)
    await page.waitForSelector('#status[data-state="live"]', { timeout: WAIT_MS })
    await summary(page, 'data-reachable', 3)
    expect(await page.locator('#panel-mesh svg g.node').count()).toBe(3)
    expect(await page.locator('#panel-mesh svg line.link[data-kind="direct"]').count()).toBe(2)
    expect(await page.locator(`#panel-mesh g.node[data-state="self"][data-id="${a.did}"]`).count()).toBe(1)
    expect((await page.locator('#mesh-summary').textContent()) ?? '').toContain('3 nodes in reach')
    // the panels the node reports, and no others
    expect(await page.locator('.panel').evaluateAll((els) => els.map((e) => e.getAttribute('data-section')))).toEqual(['mesh', 'trust', 'traffic', 'discovery'])
    // the token left the address bar, and no request carried it in its URL
    expect(await page.evaluate('location.hash')).toBe('')
    expect(requested.filter((u) => u.includes(server.token))).toEqual([])

    // trust: this node vouches for c, then revokes that; both show up
    const c = nodes[2] as KosMeshNode
    await a.attest({ subject: c.did, claim: 'endorse' })
    await page.waitForSelector(`#trust-vouches td[title="${c.did}"]`, { timeout: WAIT_MS })
    await a.revoke({ subject: c.did })
    await page.waitForSelector(`#trust-revocations td[title="${c.did}"]`, { timeout: WAIT_MS })

    // rejects by reason: b asks a for a capability no agent of a has
    const b = nodes[1] as KosMeshNode
    await b.task('klp://a.mesh.kai', { capability: 'no-such-capability', input: null }).catch(() => undefined)
    await page.waitForSelector('#panel-traffic #rejects tr[data-reason="no_eligible_agents"]', { timeout: WAIT_MS })

    // a peer joins
    const d = node('d')
    await d.start()
    await d.connect('memory://a')
    await summary(page, 'data-reachable', 4)
    await page.waitForSelector(`#panel-mesh g.node[data-state="connected"][data-id="${d.did}"]`, { timeout: WAIT_MS })
    expect(await page.locator('#panel-mesh svg line.link[data-kind="direct"]').count()).toBe(3)

    // and leaves: still known, no longer connected
    await d.stop()
    await summary(page, 'data-connected', 2)
    await page.waitForSelector(`#panel-mesh g.node[data-id="${d.did}"]:not([data-state="connected"])`, { timeout: WAIT_MS })
    expect(await page.locator('#panel-mesh svg line.link[data-kind="direct"]').count()).toBe(2)
    // the traffic panel has drawn samples of the hellos and gossip
    expect(await page.locator('#panel-traffic svg polyline').count()).toBeGreaterThan(0)
    await page.close()
  })

  it('shows an agent appear in the agents panel, then its move to a peer', async () => {
    const page = await context.newPage()
    await page.goto(`http://127.0.0.1:${server.port}/dashboard#token=${encodeURIComponent(server.token)}`)
    await page.waitForSelector('#status[data-state="live"]', { timeout: WAIT_MS })
    // no agent yet: no agents panel
    await page.waitForSelector('#panel-traffic', { timeout: WAIT_MS })
    expect(await page.locator('#panel-agents').count()).toBe(0)
    const m = a.service<NodeAgentMigration>('migration')
    await m.deploy({ agent_id: 'counter', name: 'counter', code: 'function handle(input, state) { return { output: 1, state } }', capabilities: ['counter'], permissions: { capabilities: [], required: [], tools: [], agents: [], memory_bytes: 1 << 20, cpu_budget: 100_000 } })
    await page.waitForSelector('#agents-list tr[data-id="counter"][data-status="active"]', { timeout: WAIT_MS })
    expect(await page.locator(`#agents-list tr[data-id="counter"] td[title="${a.did}"]`).count()).toBe(1)
    expect(await page.locator('.panel').evaluateAll((els) => els.map((e) => e.getAttribute('data-section')))).toEqual(['mesh', 'trust', 'traffic', 'discovery', 'agents'])
    // moved to b: gone here, the outcome listed
    const b = nodes[1] as KosMeshNode
    await m.migrate('counter', { type: 'move', to: b.did })
    await page.waitForSelector('#agents-list tr[data-id="counter"][data-status="gone"]', { timeout: WAIT_MS })
    await page.waitForSelector('#agents-recent tr[data-id="counter"][data-status="completed"]', { timeout: WAIT_MS })
    expect((await page.locator('#agents-summary').textContent()) ?? '').toContain('1 completed')
    await page.close()
  })

  it('refuses a page and requests without the token', async () => {
    const page = await context.newPage()
    await page.goto(`http://127.0.0.1:${server.port}/dashboard`)
    await page.waitForSelector('#status[data-state="unauthorized"]', { timeout: WAIT_MS })
    expect(await page.locator('.panel').count()).toBe(0)
    const statuses = await page.evaluate(async () => [
      (await fetch('/v1/dashboard')).status,
      (await fetch('/v1/dashboard', { headers: { authorization: 'Bearer wrong' } })).status,
      (await fetch('/v1/status')).status,
    ])
    expect(statuses).toEqual([401, 401, 401])
    await page.close()
  })
})
