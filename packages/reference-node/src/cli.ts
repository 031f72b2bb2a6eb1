/** The `kos-mesh` binary. See `kos-mesh --help` and docs/cli.md. */
import { systemClock } from '@kos-mesh/interface'
import { runCli } from './cli-app.js'

const code = await runCli(process.argv.slice(2), {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
  env: process.env,
  onSignal: (handler) => {
    process.once('SIGINT', handler)
    process.once('SIGTERM', handler)
  },
})
process.exitCode = code
// do not let a lingering handle keep a finished command alive
systemClock.setTimeout(() => process.exit(code), 500, { unref: true })
