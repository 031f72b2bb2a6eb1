/**
 * `kos-mesh task`: sends a TASK_REQUEST from the running node to an agent on another node.
 */
import type { KLPValue } from '@kos-mesh/interface'
import { parseAddress } from '@kos-mesh/klp-codec'
import { agentNameOfPath, checkTaskSize, parseTaskRequest, type TaskResult } from '@kos-mesh/agents'
import { MAX_TASK_TIMEOUT_MS } from './control.js'
import { controlCommand, ExitCode, GLOBAL_TEXT, intOption, needPositionals, print, str, usage, UsageError, type Command } from './cli-common.js'
import { checkDid } from './did.js'

/** Largest task input read from stdin (the codec's message limit). */
const MAX_STDIN_BYTES = 1024 * 1024

export const task: Command = controlCommand(
  `Usage: kos-mesh task <target> <input> [options]

Sends a TASK_REQUEST from the running node to <target> and prints the agent's result.
<target> is klp://<authority>/agents/<name> (that agent), klp://<authority> (the best agent
there with --capability), or a node DID did:key:... (the best agent there with --capability; its
authority comes from the node's pins, else from the DID's signed node record). The answer must be
signed by the target's DID when it is known (a DID target, or an authority pinned by a
connection), so a relay cannot forge it. <input> is a string (or JSON with --input-json);
- reads it from standard input (one trailing newline removed), e.g.
\`cat notes.txt | kos-mesh task klp://worker.mesh.kai/agents/text-stats -\`.

Options:
  --capability <cap>  capability to ask for (default: the agent name of <target>)
  --input-json        parse <input> as JSON
  --params <json>     task parameters as a JSON object, e.g. '{"top":3}'
  --timeout <ms>      give up after this long, a decimal integer (default: 15000)

The request must fit the KLP codec limits (strings <= 256 KiB, <= 10,000 array items and map
entries, a message <= 1 MiB); a larger one is a usage error (exit 2), never sent.

Built-in agents: echo [echo], text-stats [text-stats, summarize], math [math].

${GLOBAL_TEXT}
`,
  {
    capability: { type: 'string' },
    'input-json': { type: 'boolean' },
    params: { type: 'string' },
    timeout: { type: 'string' },
  },
  async (ctx) => {
    needPositionals(ctx, 2, ctx.positionals.length === 0 ? '<target> and <input>' : '<input> (a string, or - to read standard input)')
    const target = ctx.positionals[0] as string
    let path = '/'
    if (target.startsWith('did:')) {
      usage('<target>', () => checkDid(target, 'a DID like did:key:z6Mk...'))
    } else {
      try {
        path = parseAddress(target).path
      } catch (err) {
        throw new UsageError(`<target>: expected klp://authority[/agents/<name>] or a DID, got ${JSON.stringify(target.slice(0, 80))} (${(err as Error).message})`)
      }
    }
    const capability = str(ctx.values.capability) ?? agentNameOfPath(path)
    if (capability === undefined) throw new UsageError('missing --capability (or name an agent: klp://<authority>/agents/<name>)')
    // (a DID target has path "/": the capability must come from --capability)
    let raw = ctx.positionals[1] as string
    if (raw === '-') {
      if (ctx.io.readStdin === undefined) throw new UsageError('<input>: - reads standard input, which this caller does not provide')
      try {
        raw = await ctx.io.readStdin(MAX_STDIN_BYTES)
      } catch (err) {
        if (err instanceof RangeError) throw new UsageError(`<input>: expected at most ${MAX_STDIN_BYTES} bytes on standard input, got more`, 'ERR_TASK_TOO_LARGE')
        throw err
      }
      if (raw.endsWith('\n')) raw = raw.slice(0, raw.endsWith('\r\n') ? -2 : -1)
    }
    let input: KLPValue = raw
    if (ctx.values['input-json'] === true) {
      try {
        input = JSON.parse(raw) as KLPValue
      } catch {
        throw new UsageError(`<input>: expected JSON (--input-json), got ${JSON.stringify(raw.slice(0, 80))}`)
      }
    }
    let params: unknown
    const rawParams = str(ctx.values.params)
    if (rawParams !== undefined) {
      try {
        params = JSON.parse(rawParams)
      } catch {
        params = undefined
      }
      if (params === null || typeof params !== 'object' || Array.isArray(params)) throw new UsageError(`--params: expected a JSON object, got ${JSON.stringify(rawParams.slice(0, 80))}`)
    }
    const timeoutMs = intOption('timeout', ctx.values.timeout, 1, MAX_TASK_TIMEOUT_MS) ?? 15_000
    // the same checks the node applies (capability, params, codec limits), before any request
    const request = usage('<input>', () => parseTaskRequest(params === undefined ? { capability, input } : { capability, input, params }))
    usage('<input>', () => checkTaskSize(request))
    return async (c) => {
      const r = await c.call<{ task: TaskResult }>('POST', '/v1/task', { target, capability, input, timeoutMs, ...(params === undefined ? {} : { params }) }, { timeoutMs: timeoutMs + 2000 })
      const res = r.task.result
      print(ctx, typeof res === 'string' ? res : JSON.stringify(res, null, 2), r.task)
      if (!ctx.json) ctx.io.stderr(`(answered by ${r.task.agent} in ${r.task.duration_ms} ms)\n`)
      return ExitCode.OK
    }
  },
)
