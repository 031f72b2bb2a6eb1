/**
 * Runs scripts/nat-scenario.mjs: network namespaces with an nftables masquerade NAT, a relay
 * (GATEWAY_NODE), a node behind the NAT and a public peer. Needs Linux, root and `ip netns`; skipped
 * otherwise (with a message), or when KOS_NAT_SCENARIO=0. About 10 s per run.
 */
import { spawn, spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const script = join(dirname(fileURLToPath(import.meta.url)), '..', 'scripts', 'nat-scenario.mjs')

function whyNot(): string | undefined {
  if (process.env.KOS_NAT_SCENARIO === '0') return 'KOS_NAT_SCENARIO=0'
  if (process.platform !== 'linux') return `not Linux (${process.platform})`
  if (process.getuid?.() !== 0) return 'not root'
  const name = `kosprobe${process.pid}`
  const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' })
  if (add.status !== 0) return `ip netns not permitted (${(add.stderr || add.error?.message || '').trim().split('\n')[0]})`
  spawnSync('ip', ['netns', 'del', name])
  return undefined
}

const reason = whyNot()
if (reason !== undefined) console.log(`nat-scenario skipped: ${reason} (needs Linux, root and ip netns)`)

interface Run { code: number | null; out: string; result?: { relay_reach: boolean; direct: boolean; direct_klp: boolean; nat_type: string; nat: string } }

function runScenario(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.stderr.on('data', (d: Buffer) => { out += d.toString() })
    p.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '))
      resolve({ code, out, ...(line === undefined ? {} : { result: JSON.parse(line.slice(7)) as Run['result'] }) })
    })
  })
}

describe.skipIf(reason !== undefined)('NAT scenario (network namespaces)', () => {
  it('reaches a node behind a masquerade NAT through a relay, then directly after DCUtR; nat_type strict (restricted)', async (ctx) => {
    const run = await runScenario(['--require-direct'])
    if (run.code === 77) { console.log(run.out); ctx.skip(); return }
    expect(run.code, run.out).toBe(0)
    expect(run.result, run.out).toMatchObject({ relay_reach: true, direct: true, direct_klp: true, nat_type: 'strict', nat: 'restricted' })
  }, 90_000)

  it('reports a fully-random masquerade NAT as symmetric', async (ctx) => {
    const run = await runScenario(['--nat', 'random'])
    if (run.code === 77) { console.log(run.out); ctx.skip(); return }
    expect(run.code, run.out).toBe(0)
    expect(run.result, run.out).toMatchObject({ relay_reach: true, nat_type: 'symmetric', nat: 'symmetric' })
  }, 90_000)
})
