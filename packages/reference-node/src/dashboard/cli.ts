/**
 * `kos-mesh dashboard`: prints (and with --open opens) the address of the running node's
 * dashboard, `http://127.0.0.1:<port>/dashboard#token=...`. The token rides in the fragment, which
 * the browser never sends to the server nor logs in a request line; the page sends it as a header.
 */
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { dataDirPaths } from '../config.js'
import { controlCommand, GLOBAL_TEXT, needPositionals, note, print, type Command } from '../cli-common.js'
import { DASHBOARD_PATH, DASHBOARD_SNAPSHOT_PATH } from './index.js'

/** The program that opens an address in the desktop's browser, by platform. */
function opener(url: string): [string, string[]] {
  if (process.platform === 'darwin') return ['open', [url]]
  if (process.platform === 'win32') return ['cmd', ['/c', 'start', '""', url]]
  return ['xdg-open', [url]]
}

/** The dashboard command. */
export const dashboard: Command = controlCommand(
  `Usage: kos-mesh dashboard [--open]

Prints the address of the running node's dashboard: a page served by its control API on
127.0.0.1 that shows the mesh as a graph (this node, its peers, direct and relayed links, roles),
trust (scores, who vouched, revocations), messages and rejects over time, and DHT and gossip
health, updated live. The address carries the control token after '#': the browser keeps it and
sends it as a header, never in a request line; anyone with the address controls the node, so do
not share it.

Options:
  --open        also open the address in the desktop's browser

${GLOBAL_TEXT}
`,
  { open: { type: 'boolean' } },
  (ctx) => {
    needPositionals(ctx, 0, '')
    return async (c) => {
      // the node answers and the token is the right one
      await c.call('GET', DASHBOARD_SNAPSHOT_PATH)
      const token = (await readFile(dataDirPaths(ctx.dataDir).token, 'utf8')).trim()
      const url = `http://127.0.0.1:${c.info.port}${DASHBOARD_PATH}#token=${encodeURIComponent(token)}`
      print(ctx, `${url}\n(the part after # is the control token: it stays in the browser; do not share this address)`, { url })
      if (ctx.values.open === true) {
        const [cmd, args] = opener(url)
        try {
          const child = spawn(cmd, args, { detached: true, stdio: 'ignore' })
          child.on('error', (err) => note(ctx, `could not open a browser (${cmd}: ${(err as NodeJS.ErrnoException).code ?? err.message}); open the address yourself`))
          child.unref()
        } catch (err) {
          note(ctx, `could not open a browser (${(err as Error).message}); open the address yourself`)
        }
      }
      return 0
    }
  },
)
