import { describe, expect, it } from 'vitest'
import { agents, AgentRegistry, evaluateExpression, textStats, parseTaskRequest, agentNameOfPath, echoAgent, mathAgent, textStatsAgent, MAX_EXPRESSION_LENGTH } from '../src/index.js'
import type { AgentContext } from '../src/index.js'

const ctx = (capability: string, params = {}): AgentContext => ({ capability, params, from: 'did:key:z', taskId: '', signal: new AbortController().signal })

describe('math agent: safe arithmetic', () => {
  it.each([
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['2 ^ 3 ^ 2', 512],
    ['2 ** 10', 1024],
    ['-2 ^ 2', -4],
    ['--3', 3],
    ['10 % 4', 2],
    ['7 / 2', 3.5],
    ['sqrt(16) + abs(-2)', 6],
    ['max(1, 5, 3) - min(4, 2)', 3],
    ['round(pi * 100) / 100', 3.14],
    ['1.5e3 + .5', 1500.5],
    ['pow(2, 8)', 256],
  ])('%s = %d', (expr, value) => {
    expect(evaluateExpression(expr)).toBeCloseTo(value, 10)
  })

  it.each([
    '',
    '1 +',
    '(1 + 2',
    '1 + 2)',
    '1 / 0',
    '5 % 0',
    'process.exit(1)',
    'constructor',
    'sqrt()',
    'pow(1)',
    '2 $ 3',
    '1e400',
    'x = 1',
    '"str"',
  ])('rejects %j with MathExpressionError', (expr) => {
    expect(() => evaluateExpression(expr)).toThrow(expect.objectContaining({ name: 'MathExpressionError', code: 'ERR_MATH_EXPRESSION' }))
  })

  it('bounds length and depth', () => {
    expect(() => evaluateExpression('1+'.repeat(MAX_EXPRESSION_LENGTH) + '1')).toThrow(expect.objectContaining({ name: 'MathExpressionError' }))
    expect(() => evaluateExpression('('.repeat(200) + '1' + ')'.repeat(200))).toThrow(expect.objectContaining({ name: 'MathExpressionError' }))
    expect(() => evaluateExpression('-'.repeat(200) + '1')).toThrow(expect.objectContaining({ name: 'MathExpressionError' }))
    expect(evaluateExpression('('.repeat(30) + '1' + ')'.repeat(30))).toBe(1)
  })

  it('never throws anything but typed errors on random input', () => {
    let seed = 42
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff)
    const alphabet = '0123456789+-*/%^(). ,episqrtmaxin'
    for (let i = 0; i < 3000; i++) {
      const s = Array.from({ length: Math.floor(rnd() * 24) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('')
      try {
        expect(Number.isFinite(evaluateExpression(s))).toBe(true)
      } catch (err) {
        expect((err as Error).name).toBe('MathExpressionError')
      }
    }
  })
})

describe('text-stats agent', () => {
  it('counts words, sentences and ranks keywords', () => {
    const s = textStats('The mesh routes messages. The mesh verifies every message! Agents answer tasks?')
    expect(s.words).toBe(12)
    expect(s.sentences).toBe(3)
    expect(s.keywords[0]).toEqual({ word: 'mesh', count: 2 })
    expect(s.keywords.map((k) => k.word)).not.toContain('the')
    expect(s.summary).toBe('The mesh verifies every message!')
    expect(textStats('').words).toBe(0)
    expect(textStats('', 1).summary).toBe('')
  })

  it('validates input and params', async () => {
    expect(() => textStats('x', 0)).toThrow(expect.objectContaining({ name: 'InvalidParametersError' }))
    const agent = textStatsAgent()
    await expect(Promise.resolve().then(() => agent.handle(42, ctx('text-stats')))).rejects.toMatchObject({ name: 'InvalidParametersError' })
    expect(await agent.handle('Alpha beta. Alpha gamma.', ctx('summarize', { top: 1 }))).toEqual({ summary: 'Alpha beta.', keywords: ['alpha'] })
  })
})

describe('AgentRegistry: eligibility and selection', () => {
  it('assigns addresses from the node authority and DID', () => {
    const r = new AgentRegistry()
    r.register(echoAgent())
    r.bind('node-a.mesh.kai', 'did:key:zA')
    expect(r.get('echo')).toMatchObject({ address: 'klp://node-a.mesh.kai/agents/echo', id: 'did:key:zA/agents/echo' })
  })

  it('finds eligible agents by capability and picks the best by score', async () => {
    const r = new AgentRegistry('n.kai', 'did:key:z')
    r.register({ name: 'generalist', capabilities: ['math', 'echo', 'text-stats'], handle: () => 1 })
    r.register({ name: 'specialist', capabilities: ['math'], handle: () => 2 })
    r.register({ name: 'preferred', capabilities: ['echo'], priority: 9, handle: () => 3 })
    expect(r.findEligible({ capability: 'math' }).map((a) => a.name).sort()).toEqual(['generalist', 'specialist'])
    expect(r.selectBest(r.findEligible({ capability: 'math' }))?.name).toBe('specialist')
    expect(r.selectBest(r.findEligible({ capability: 'echo' }))?.name).toBe('preferred')
    expect(r.findEligible({ capability: 'math' }, 'generalist').map((a) => a.name)).toEqual(['generalist'])
    expect(r.findEligible({ capability: 'translate' })).toEqual([])
    expect(r.selectBest([])).toBeUndefined()
  })

  it('a busy agent loses to an idle one and a full one is not eligible', async () => {
    const r = new AgentRegistry('n.kai', 'did:key:z')
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    r.register({ name: 'a', capabilities: ['work'], maxConcurrent: 2, handle: async () => { await gate; return 'a' } })
    r.register({ name: 'b', capabilities: ['work'], maxConcurrent: 1, handle: async () => { await gate; return 'b' } })
    const a = r.get('a')!
    const b = r.get('b')!
    // equal scores: name breaks the tie
    expect(r.selectBest(r.findEligible({ capability: 'work' }))?.name).toBe('a')
    const running = a.handle(null, ctx('work'))
    expect(a.inFlight).toBe(1)
    expect(r.selectBest(r.findEligible({ capability: 'work' }))?.name).toBe('b')
    const running2 = b.handle(null, ctx('work'))
    expect(r.findEligible({ capability: 'work' }).map((x) => x.name)).toEqual(['a'])
    release()
    expect(await Promise.all([running, running2])).toEqual(['a', 'b'])
    expect(a.inFlight + b.inFlight).toBe(0)
  })

  it('agents(init)(components): registers the init agents, addressed from nodeInfo', () => {
    const r = agents({ agents: [mathAgent(), echoAgent()] })({ nodeInfo: { authority: 'node-b.mesh.kai', did: 'did:key:zB' } })
    expect(r.list().map((a) => a.address)).toEqual(['klp://node-b.mesh.kai/agents/math', 'klp://node-b.mesh.kai/agents/echo'])
    expect(r.get('echo')?.id).toBe('did:key:zB/agents/echo')
    expect(agents()().get('echo')).toBeUndefined()
    expect(agents({ agents: [echoAgent()] })().get('echo')?.address).toBe('klp://localhost/agents/echo')
    expect(() => agents({ agents: [mathAgent(), mathAgent()] })()).toThrow(expect.objectContaining({ name: 'InvalidAgentError', code: 'ERR_INVALID_AGENT' }))
  })

  it('rejects invalid and duplicate agents', () => {
    const r = new AgentRegistry()
    r.register(mathAgent())
    expect(() => r.register(mathAgent())).toThrow(expect.objectContaining({ name: 'InvalidAgentError' }))
    expect(() => r.register({ name: 'Bad Name', capabilities: ['x'], handle: () => null })).toThrow(expect.objectContaining({ name: 'InvalidAgentError' }))
    expect(() => r.register({ name: 'ok', capabilities: [], handle: () => null })).toThrow(expect.objectContaining({ name: 'InvalidAgentError' }))
    expect(() => r.register({ name: 'ok', capabilities: ['x'], priority: 11, handle: () => null })).toThrow(expect.objectContaining({ name: 'InvalidAgentError' }))
  })
})

describe('task payloads', () => {
  it('parses and validates TaskRequest', () => {
    expect(parseTaskRequest({ capability: 'math', input: '1' })).toEqual({ capability: 'math', input: '1' })
    expect(parseTaskRequest({ capability: 'm', input: null, params: { top: 2 } })).toEqual({ capability: 'm', input: null, params: { top: 2 } })
    for (const bad of [null, 'x', [], { input: 1 }, { capability: '', input: 1 }, { capability: 'm' }, { capability: 'm', input: 1, params: [] }, { capability: 'x'.repeat(200), input: 1 }]) {
      expect(() => parseTaskRequest(bad)).toThrow(expect.objectContaining({ name: 'InvalidTaskError' }))
    }
  })

  it('reads the agent name of a target path', () => {
    expect(agentNameOfPath('/agents/math')).toBe('math')
    expect(agentNameOfPath('/agents/math/')).toBe('math')
    expect(agentNameOfPath('/')).toBeUndefined()
    expect(agentNameOfPath('/agents')).toBeUndefined()
    expect(agentNameOfPath('/agents/a/b')).toBeUndefined()
  })

  it('echo returns its input', async () => {
    expect(await echoAgent().handle({ a: [1, 'x'] }, ctx('echo'))).toEqual({ a: [1, 'x'] })
  })
})
