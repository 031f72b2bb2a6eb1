/**
 * The dashboard's `vectors` panel in a real headless Chromium (Debian's /usr/bin/chromium, driven
 * by playwright-core): two reference nodes on the memory transport run vector collections; a
 * collection written on A and synced to B appears in B's panel with its shard, both replicas and
 * the entry count, and the last sync's outcome. Before any collection there is no panel. Skips
 * only when Chromium is missing and could not be installed (browser-helpers.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BrowserContext } from 'playwright-core'
import { haveChromium, launchChromium } from './browser-helpers.js'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { startControlServer, type ControlServer } from '../src/control.js'
import { createNode, memory, type KosMeshNode } from '../src/index.js'
import type { NodeVectors } from '../src/node-vectors.js'

const HAVE_CHROMIUM = await haveChromium('dashboard-vectors.browser.test.ts')
const WAIT_MS = 20_000

describe.skipIf(!HAVE_CHROMIUM)('vectors panel in headless Chromium', () => {
  const network = createMemoryNetwork()
  const nodes: KosMeshNode[] = []
  let a: KosMeshNode
  let b: KosMeshNode
  let server: ControlServer
  let context: BrowserContext
  let profile: string

  const node = (name: string): KosMeshNode => {
    // every node holds every shard (no placement), syncs only when asked
    const n = createNode({ authority: `${name}.mesh.kai`, transports: [memory({ network })], listen: [`memory://${name}`], vectors: { placement: false, syncIntervalMs: 0 } })
    nodes.push(n)
    return n
  }

  beforeAll(async () => {
    a = node('va')
    b = node('vb')
    await Promise.all([a.start(), b.start()])
    await a.connect('memory://vb')
    await a.trust(b.did, 8)
    await b.trust(a.did, 8)
    server = await startControlServer({ node: b, dashboard: { sampleIntervalMs: 200 } })
    profile = await mkdtemp(join(tmpdir(), 'kos-chromium-'))
    context = await launchChromium(profile)
  }, 90_000)

  afterAll(async () => {
    await context?.close().catch(() => {})
    await server?.close()
    await Promise.allSettled(nodes.map((n) => n.stop()))
    if (profile !== undefined) await rm(profile, { recursive: true, force: true })
  })

  it('shows a collection synced from a peer, with its shard, replicas and entries', async () => {
    const page = await context.newPage()
    await page.goto(`http://127.0.0.1:${server.port}/dashboard#token=${encodeURIComponent(server.token)}`)
    await page.waitForSelector('#panel-discovery', { timeout: WAIT_MS })
    // no collection yet: no vectors panel
    expect(await page.locator('#panel-vectors').count()).toBe(0)

    const va = a.service<NodeVectors>('vectors')
    const vb = b.service<NodeVectors>('vectors')
    for (const v of [va, vb]) await v.create({ name: 'notes', dimensions: 3 })
    await va.add('notes', [
      { id: 'n1', vector: [1, 0, 0], metadata: { title: '<b>one</b>' } },
      { id: 'n2', vector: [0, 1, 0] },
      { id: 'n3', vector: [0, 0, 1] },
    ])
    const sync = await vb.sync({ collections: ['notes'] })
    expect(sync).toMatchObject({ status: 'completed', shards_done: 1, shards_total: 1 })

    const table = '#panel-vectors table.vectors-shards[data-collection="notes"][data-entries="3"]'
    await page.waitForSelector(table, { timeout: WAIT_MS })
    const row = page.locator(`${table} tr[data-shard="0"][data-held="yes"]`)
    expect(await row.count()).toBe(1)
    // both replicas, by DID (the full list in the cell's title, as text)
    const holders = (await row.locator('td.mono').getAttribute('title')) ?? ''
    expect(holders.split('\n').sort()).toEqual([a.did, b.did].sort())
    expect(await page.locator('#vectors-summary').getAttribute('data-entries')).toBe('3')
    await page.waitForSelector('#panel-vectors p.vectors-sync[data-status="completed"]', { timeout: WAIT_MS })
    expect(await page.locator('#panel-vectors h2').textContent()).toBe('Vector collections')
    // peer data is text: nothing of an entry's metadata became markup
    expect(await page.locator('#panel-vectors b').count()).toBe(0)
    expect(await page.locator('.panel').evaluateAll((els) => els.map((e) => e.getAttribute('data-section')))).toContain('vectors')
    await page.close()
  }, 60_000)
})
