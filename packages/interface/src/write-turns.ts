/**
 * FIFO turns to write on a connection whose buffer may need draining (a socket, a libp2p stream):
 * one writer at a time, and a turn is handed out only while `blocked()` is false. A waiting writer
 * can be aborted by its signal; `rejectAll` ends every waiting one (the connection closed). The
 * transports call `pump()` on their buffer's drain event.
 */
import { AbortError } from './errors.js'

interface Waiter {
  resolve: () => void
  reject: (err: Error) => void
}

/**
 * FIFO turns to write on a connection: one writer at a time, a turn handed out only while the buffer is not
 * full.
 */
export class WriteTurns {
  readonly #waiters: Waiter[] = []
  #running = false

  constructor(private readonly blocked: () => boolean) {}

  /** True while a writer holds its turn. */
  get running(): boolean {
    return this.#running
  }

  /** Writers waiting for a turn. */
  get waiting(): number {
    return this.#waiters.length
  }

  /** True when a writer must wait: one holds its turn, others queue, or the buffer needs draining. */
  get busy(): boolean {
    return this.#running || this.#waiters.length > 0 || this.blocked()
  }

  /** Resolves when it is this caller's turn (call `release()` after writing); rejects with AbortError on abort. */
  wait(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(waiter)
        if (i >= 0) this.#waiters.splice(i, 1)
        reject(new AbortError(undefined, { cause: signal?.reason }))
      }
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort)
          this.#running = true
          resolve()
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort)
          reject(e)
        },
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiters.push(waiter)
      this.pump()
    })
  }

  /** The writer that got its turn has written (or given up). */
  release(): void {
    this.#running = false
    this.pump()
  }

  /** Hands the next turn out when nobody writes and the buffer does not need draining. */
  pump(): void {
    if (this.#running || this.blocked()) return
    this.#waiters.shift()?.resolve()
  }

  /** Rejects every waiting writer with `err`. */
  rejectAll(err: Error): void {
    for (const w of this.#waiters.splice(0)) w.reject(err)
  }
}
