/**
 * The `kos-mesh` command line. `runCli(argv)` returns the exit code; `src/cli.ts` is the binary.
 */
import { parseArgs } from 'node:util'
import { systemClock } from '@kos-mesh/interface'
import { resolveDataDir } from './config.js'
import { dashboard } from './dashboard/cli.js'
import { ExitCode, GLOBAL_OPTIONS, str, toJson, UsageError, type CliIo, type Command, type Ctx } from './cli-common.js'
import { MAIN_HELP, VERSION } from './cli-help.js'
import { config } from './cli-config.js'
import { init } from './cli-init.js'
import { start, stop } from './cli-start.js'
import { connect, peers, status } from './cli-status.js'
import { task } from './cli-task.js'
import { logs } from './cli-logs.js'
import { exitCodeOf, hint } from './cli-errors.js'
import { TRUST_COMMANDS } from './cli-trust.js'
import { DISCOVERY_COMMANDS } from './cli-discovery.js'
import { AGENT_COMMANDS } from './cli-agent.js'
import { VECTOR_COMMANDS } from './cli-vectors.js'

export { ExitCode, UsageError, table, type CliIo } from './cli-common.js'

/** Every command, by name (the order of the `missing command` and `unknown command` errors). */
const COMMANDS: Record<string, Command> = { init, start, stop, status, connect, peers, ...TRUST_COMMANDS, ...DISCOVERY_COMMANDS, task, ...AGENT_COMMANDS, ...VECTOR_COMMANDS, logs, dashboard, config }

/** The help text of a command, or the main help. */
export function helpText(command?: string): string {
  return command === undefined ? MAIN_HELP : (COMMANDS[command]?.help ?? MAIN_HELP)
}

/** The parseArgs error as one well-formed sentence. */
function parseArgsMessage(err: unknown): string {
  const e = err as { code?: string; message?: string }
  const msg = e.message ?? 'bad arguments'
  const opt = /'(--?[^'\s]+)/.exec(msg)?.[1]
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${opt ?? msg}`
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (/argument missing/.test(msg)) return `option ${opt ?? ''} needs a value`.replace('  ', ' ')
    if (/does not take an argument/.test(msg)) return `option ${opt ?? ''} takes no value`
  }
  return msg.split('\n')[0] ?? msg
}

/** Prints an error (one JSON document on stdout with --json; the message, code and hint on stderr) and returns its exit code. */
function report(io: CliIo, command: string | undefined, json: boolean, err: unknown): number {
  const code = exitCodeOf(err)
  const e = err as Error & { code?: string; remoteCode?: string; reason?: string }
  const name = e?.name ?? 'Error'
  const errCode = e.remoteCode ?? (typeof e.code === 'string' ? e.code : undefined) ?? (name === 'UsageError' ? 'ERR_USAGE' : 'ERR_UNKNOWN')
  const message = e?.message ?? String(err)
  const h = hint(err)
  if (json) io.stdout(toJson({ error: { name, code: errCode, message, ...(e.reason === undefined ? {} : { reason: e.reason }), ...(h === undefined ? {} : { hint: h }) }, exitCode: code }) + '\n')
  const who = command === undefined ? 'kos-mesh' : `kos-mesh ${command}`
  if (name === 'UsageError') {
    io.stderr(`${who}: ${message} [${errCode}]\nRun \`${command === undefined || COMMANDS[command] === undefined ? 'kos-mesh --help' : `kos-mesh ${command} --help`}\` for usage.\n`)
  } else {
    io.stderr(`${who}: ${message} [${errCode}${e.reason === undefined ? '' : ` ${e.reason}`}]${h === undefined ? '' : `\nhint: ${h}`}\n`)
  }
  return code
}

/** Runs the CLI; resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const clock = io.clock ?? systemClock
  // the command is the first argument that is neither an option nor the value of --data-dir
  let command: string | undefined
  const rest: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (command === undefined && a === '--data-dir') {
      rest.push(a)
      if (i + 1 < argv.length) rest.push(argv[++i] as string)
    } else if (command === undefined && !a.startsWith('-')) {
      command = a
    } else {
      rest.push(a)
    }
  }
  // --json is known before the arguments are parsed, so that every error can be a JSON document
  const json = rest.includes('--json')
  if (command === undefined) {
    if (rest.includes('--version') || rest.includes('-v')) {
      io.stdout(json ? toJson({ version: VERSION }) + '\n' : `${VERSION}\n`)
      return ExitCode.OK
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout(MAIN_HELP)
      return ExitCode.OK
    }
    const code = report(io, undefined, json, new UsageError(`missing command (expected one of ${Object.keys(COMMANDS).join(', ')})`))
    if (!json) io.stderr(`\n${MAIN_HELP}`)
    return code
  }
  if (command === 'help') {
    io.stdout(helpText(rest.find((r) => !r.startsWith('-'))))
    return ExitCode.OK
  }
  const cmd = COMMANDS[command]
  if (cmd === undefined) {
    return report(io, undefined, json, new UsageError(`unknown command ${JSON.stringify(command.slice(0, 80))} (expected one of ${Object.keys(COMMANDS).join(', ')})`))
  }
  let parsed: { values: Ctx['values']; positionals: string[] }
  try {
    parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...cmd.options }, allowPositionals: true, strict: true }) as typeof parsed
  } catch (err) {
    return report(io, command, json, new UsageError(parseArgsMessage(err)))
  }
  if (parsed.values.help === true) {
    io.stdout(cmd.help)
    return ExitCode.OK
  }
  const ctx: Ctx = {
    command,
    values: parsed.values,
    positionals: parsed.positionals,
    dataDir: resolveDataDir(str(parsed.values['data-dir']), io.env),
    json: parsed.values.json === true,
    io,
    clock,
  }
  try {
    return await cmd.run(ctx)
  } catch (err) {
    return report(io, command, ctx.json, err)
  }
}
