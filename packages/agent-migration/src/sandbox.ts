/**
 * The sandbox: agent code runs in QuickJS compiled to WebAssembly (quickjs-emscripten), one fresh
 * runtime per call, with a heap limit, a stack limit and a deterministic instruction budget (the
 * engine calls the interrupt handler regularly while it runs; `cpuBudget` calls and it stops),
 * plus an optional deadline on the injected clock. The code reaches the node only through `host`:
 * every host capability exists as a function, and those not granted throw and mark the call as
 * a violation (CapabilityNotGrantedError, even when the code catches the throw).
 *
 * Contract of the code: a script defining `function handle(input, state, params)` that returns
 * `{ output, state }` (JSON-like values: no byte strings; an undefined output counts as null).
 */
import { mulberry32, type Clock, type KLPValue } from '@kos-mesh/interface'
import { newQuickJSWASMModuleFromVariant, type QuickJSSyncVariant, type QuickJSContext, type QuickJSHandle, type QuickJSWASMModule } from 'quickjs-emscripten-core'
import variantImport from '@jitl/quickjs-wasmfile-release-sync'
import { isObj, jsonLike } from './check.js'
import { AgentCodeError, CapabilityNotGrantedError, SandboxLimitError } from './errors.js'
import { HostCapability } from './types.js'

let modulePromise: Promise<QuickJSWASMModule> | undefined

/** The WebAssembly engine, loaded once per process. */
export function loadSandboxModule(): Promise<QuickJSWASMModule> {
  // the package's types describe its CommonJS face; under ESM the default import is the variant itself
  const v = variantImport as unknown as QuickJSSyncVariant & { default?: QuickJSSyncVariant }
  modulePromise ??= newQuickJSWASMModuleFromVariant(v.default ?? v)
  return modulePromise
}

/**
 * Resource bounds of one `runInSandbox` call: heap and stack (enforced by QuickJS), a
 * deterministic instruction budget (interrupt-handler calls, the same on every node) and an
 * optional deadline on the host's clock. Going past any of them throws SandboxLimitError.
 */
export interface SandboxLimits {
  /** Heap, bytes (QuickJS's memory limit for the runtime). */
  memoryBytes: number
  /** Interrupt-handler calls allowed (a deterministic instruction budget). */
  cpuBudget: number
  /** Stack, bytes. Default 256 KiB. */
  stackBytes?: number
  /** Deadline on `SandboxHost.clock`, ms of its time; applies only when that clock is given. Default none. */
  timeMs?: number
  /** Largest `JSON.stringify` of the result, chars. Default 1 MiB. */
  maxResultChars?: number
}

/**
 * What the agent's code can reach through its global `host` object, and which of it is granted.
 * Every host function exists; calling one whose capability is not in `granted` throws inside the
 * code and fails the call with CapabilityNotGrantedError.
 */
export interface SandboxHost {
  /** Capabilities granted (names of `HostCapability`; others throw). */
  granted: ReadonlySet<string>
  /** `host.now()`: the time. Default 0 (deterministic). */
  now?: () => number
  /** `host.log(text)`. */
  log?: (text: string) => void
  /** Seed of `host.random()`. Default 1. */
  seed?: number
  /** `host.memory.*`: the agent's memory snapshot. */
  memory?: ReadonlyMap<string, Uint8Array>
  /** `host.secret(name)`: opened secrets. */
  secrets?: Readonly<Record<string, string>>
  /** The clock of the `SandboxLimits.timeMs` deadline. Default none (no deadline). */
  clock?: Clock
}

/**
 * One invocation of agent code: the script and the arguments of its
 * `handle(input, state, params)`. The arguments must be JSON-like (no byte strings or bigints):
 * they reach the code through JSON.
 */
export interface AgentCall {
  /** The agent's script, defining `function handle(input, state, params)`. */
  code: string
  /** The task's input. */
  input: KLPValue
  /** The agent's current state. */
  state: KLPValue
  /** The configuration's fixed parameters. */
  params: KLPValue
}

/** What the agent's `handle` returned: JSON-like values, bounded by `SandboxLimits.maxResultChars`. */
export interface AgentAnswer {
  /** The task's output (an undefined output becomes null). */
  output: KLPValue
  /** The agent's new state, stored before the answer is returned. */
  state: KLPValue
}

/** Longest slice `host.memory.read` returns, bytes. */
export const MAX_MEMORY_READ = 64 * 1024


function installHost(ctx: QuickJSContext, host: SandboxHost, violations: string[]): void {
  const h = ctx.newObject()
  const fn = (name: string, cap: string, impl: (...args: QuickJSHandle[]) => QuickJSHandle | undefined): void => {
    const f = ctx.newFunction(name, (...args) => {
      if (!host.granted.has(cap)) {
        violations.push(cap)
        return { error: ctx.newError(`capability ${cap} not granted`) }
      }
      return impl(...args)
    })
    ctx.setProp(h, name, f)
    f.dispose()
  }
  const rnd = mulberry32(host.seed ?? 1)
  fn('log', HostCapability.LOG, (t) => { host.log?.(String(ctx.dump(t as QuickJSHandle)).slice(0, 4096)); return undefined })
  fn('now', HostCapability.CLOCK, () => ctx.newNumber(host.now?.() ?? 0))
  fn('random', HostCapability.RANDOM, () => ctx.newNumber(rnd()))
  fn('secret', HostCapability.SECRETS, (n) => {
    const v = host.secrets?.[String(ctx.dump(n as QuickJSHandle))]
    return v === undefined ? ctx.undefined : ctx.newString(v)
  })
  fn('memoryKeys', HostCapability.MEMORY, () => ctx.newString(JSON.stringify([...(host.memory?.keys() ?? [])])))
  fn('memorySize', HostCapability.MEMORY, (k) => ctx.newNumber(host.memory?.get(String(ctx.dump(k as QuickJSHandle)))?.length ?? -1))
  fn('memoryRead', HostCapability.MEMORY, (k, o, n) => {
    const b = host.memory?.get(String(ctx.dump(k as QuickJSHandle)))
    if (b === undefined) return ctx.undefined
    const off = Math.max(0, Number(ctx.dump(o as QuickJSHandle)) | 0)
    const len = Math.min(MAX_MEMORY_READ, Math.max(0, Number(ctx.dump(n as QuickJSHandle)) | 0))
    return ctx.newString(Buffer.from(b.subarray(off, off + len)).toString('latin1'))
  })
  ctx.setProp(ctx.global, 'host', h)
  h.dispose()
}

/**
 * Runs `handle(input, state, params)` of `call.code` once in a fresh sandbox. Throws
 * SandboxLimitError (memory, stack, instruction budget or deadline exceeded),
 * CapabilityNotGrantedError (a host function not granted was called), AgentCodeError (the code
 * threw, has no `handle`, or returned something else than `{ output, state }` of JSON-like values).
 */
export async function runInSandbox(call: AgentCall, limits: SandboxLimits, host: SandboxHost): Promise<AgentAnswer> {
  const mod = await loadSandboxModule()
  const rt = mod.newRuntime()
  let interrupts = 0
  let stopped: string | undefined
  const deadline = limits.timeMs !== undefined && host.clock !== undefined ? host.clock.now() + limits.timeMs : undefined
  try {
    rt.setMemoryLimit(limits.memoryBytes)
    rt.setMaxStackSize(limits.stackBytes ?? 256 * 1024)
    rt.setInterruptHandler(() => {
      interrupts++
      if (interrupts > limits.cpuBudget) stopped = `its instruction budget of ${limits.cpuBudget}`
      else if (deadline !== undefined && host.clock!.now() > deadline) stopped = `its deadline of ${limits.timeMs} ms`
      return stopped !== undefined
    })
    const ctx = rt.newContext()
    try {
      const violations: string[] = []
      installHost(ctx, host, violations)
      const args = JSON.stringify([call.input, call.state, call.params])
      const script = `${call.code}\n;(function(){ if (typeof handle !== 'function') throw new Error('no handle function'); const a = JSON.parse(${JSON.stringify(args)}); const r = handle(a[0], a[1], a[2]); return JSON.stringify(r !== null && typeof r === 'object' && 'output' in r && r.output === undefined ? Object.assign({}, r, { output: null }) : r === undefined ? null : r) })()`
      const r = ctx.evalCode(script, 'agent.js')
      let text: unknown
      let failure: unknown
      if (r.error !== undefined) { failure = ctx.dump(r.error); r.error.dispose() } else { text = ctx.dump(r.value); r.value.dispose() }
      if (violations.length > 0) throw new CapabilityNotGrantedError(`expected the agent to use only granted capabilities, got a call needing ${violations[0]}`)
      if (failure !== undefined) {
        if (stopped !== undefined) throw new SandboxLimitError(`expected the agent to finish within ${stopped}, got it interrupted`)
        const f = failure as { message?: unknown; name?: unknown }
        const msg = typeof f?.message === 'string' ? f.message : String(failure)
        if (/out of memory/i.test(msg)) throw new SandboxLimitError(`expected the agent within its heap of ${limits.memoryBytes} bytes, got out of memory`)
        if (/stack overflow/i.test(msg)) throw new SandboxLimitError('expected the agent within its stack, got a stack overflow')
        throw new AgentCodeError(`expected the agent's handle to return, got ${String(f?.name ?? 'Error')}: ${msg.slice(0, 200)}`)
      }
      if (typeof text !== 'string' || text.length > (limits.maxResultChars ?? 1024 * 1024)) throw new AgentCodeError('expected a result of bounded size')
      const out: unknown = JSON.parse(text)
      if (!isObj(out) || !('output' in out) || !('state' in out) || Object.keys(out).length !== 2) throw new AgentCodeError('expected the agent to return { output, state }')
      const answer = { output: out.output, state: out.state } as AgentAnswer
      if (!jsonLike(answer.output) || !jsonLike(answer.state)) throw new AgentCodeError('expected JSON-like output and state')
      return answer
    } finally {
      ctx.dispose()
    }
  } finally {
    rt.dispose()
  }
}
