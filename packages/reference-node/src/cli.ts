/** The `kos-mesh` binary. See `kos-mesh --help` and docs/cli.md. */
import { systemClock } from '@kos-mesh/interface'
import { runCli } from './cli-app.js'

/** Standard input to its end, at most `maxBytes` (RangeError beyond). */
async function readStdin(maxBytes: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of process.stdin) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)
    size += b.length
    if (size > maxBytes) {
      process.stdin.destroy()
      throw new RangeError(`expected at most ${maxBytes} bytes on standard input, got more`)
    }
    chunks.push(b)
  }
  return Buffer.concat(chunks).toString('utf8')
}

const code = await runCli(process.argv.slice(2), {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
  stderrIsTTY: process.stderr.isTTY === true,
  env: process.env,
  onSignal: (handler) => {
    process.once('SIGINT', handler)
    process.once('SIGTERM', handler)
  },
  readStdin,
})
process.exitCode = code
// do not let a lingering handle keep a finished command alive
systemClock.setTimeout(() => process.exit(code), 500, { unref: true })
