/** Handlers by message type and target path (longest path wins, then the type's default). Internal. */
import type { HandleOptions, KLPMessageType, MessageHandler } from '@kos-mesh/interface'
import { InvalidParametersError } from '@kos-mesh/interface'
import { DuplicateHandlerError } from './errors.js'

interface TypeHandlers {
  fallback: MessageHandler | undefined
  /** [path, handler], longest path first. */
  paths: Array<[string, MessageHandler]>
}

function checkPath(path: string | undefined): string | undefined {
  if (path === undefined) return undefined
  if (typeof path !== 'string' || !path.startsWith('/') || (path.length > 1 && path.endsWith('/'))) {
    throw new InvalidParametersError(`expected a handler path like /bulk (leading /, no trailing /), got ${String(path)}`)
  }
  return path
}

/** True when `path` is `prefix` or below it (`/a` covers `/a` and `/a/b`, not `/ab`). */
function covers(prefix: string, path: string): boolean {
  if (prefix === '/') return true
  return path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47)
}

export class HandlerTable {
  private readonly byType = new Map<string, TypeHandlers>()

  set(type: KLPMessageType, handler: MessageHandler, options?: HandleOptions): void {
    if (typeof handler !== 'function') throw new InvalidParametersError(`expected a handler function, got ${typeof handler}`)
    const path = checkPath(options?.path)
    let t = this.byType.get(type)
    if (t === undefined) {
      t = { fallback: undefined, paths: [] }
      this.byType.set(type, t)
    }
    if (path === undefined) {
      if (t.fallback !== undefined) throw new DuplicateHandlerError(`expected no handler for ${type}, got one already registered`)
      t.fallback = handler
      return
    }
    if (t.paths.some(([p]) => p === path)) throw new DuplicateHandlerError(`expected no handler for ${type} at ${path}, got one already registered`)
    t.paths.push([path, handler])
    t.paths.sort((a, b) => b[0].length - a[0].length)
  }

  delete(type: KLPMessageType, options?: HandleOptions): void {
    const t = this.byType.get(type)
    if (t === undefined) return
    const path = options?.path
    if (path === undefined) t.fallback = undefined
    else t.paths = t.paths.filter(([p]) => p !== path)
    if (t.fallback === undefined && t.paths.length === 0) this.byType.delete(type)
  }

  /** True when some handler takes messages of this type. */
  has(type: string): boolean {
    return this.byType.has(type)
  }

  /** The handler for a message of `type` addressed to `path`. */
  find(type: string, path: string): MessageHandler | undefined {
    const t = this.byType.get(type)
    if (t === undefined) return undefined
    for (let i = 0; i < t.paths.length; i++) {
      const [p, h] = t.paths[i]!
      if (covers(p, path)) return h
    }
    return t.fallback
  }
}
