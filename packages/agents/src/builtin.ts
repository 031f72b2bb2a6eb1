/** Built-in agents: `echo`, `text-stats` and `math`. */
import { InvalidParametersError, type KLPValue } from '@kos-mesh/interface'
import { evaluateExpression } from './math.js'
import { textStats } from './text.js'
import type { AgentInit } from './types.js'

/** Answers its input unchanged. Capability `echo`. */
export function echoAgent(): AgentInit {
  return {
    name: 'echo',
    capabilities: ['echo'],
    priority: 1,
    description: 'returns its input unchanged',
    handle: (input) => input,
  }
}

/**
 * Counts words and sentences, extracts top keywords and a one-sentence summary. Capabilities
 * `text-stats` and `summarize`. Input: a string. Params: `top` (1..50 keywords, default 5).
 */
export function textStatsAgent(): AgentInit {
  return {
    name: 'text-stats',
    capabilities: ['text-stats', 'summarize'],
    description: 'word counts, top keywords and a one-sentence summary of a text',
    handle: (input, ctx) => {
      if (typeof input !== 'string') throw new InvalidParametersError(`expected text input, got ${input === null ? 'null' : typeof input}`)
      const top = ctx.params.top
      const stats = textStats(input, typeof top === 'number' ? top : 5)
      if (ctx.capability === 'summarize') return { summary: stats.summary, keywords: stats.keywords.map((k) => k.word) }
      return stats as unknown as KLPValue
    },
  }
}

/** Evaluates arithmetic safely (no eval). Capability `math`. Input: an expression string. */
export function mathAgent(): AgentInit {
  return {
    name: 'math',
    capabilities: ['math'],
    description: 'evaluates arithmetic: + - * / % ^, parentheses, sqrt, min, max, pi ...',
    handle: (input) => {
      if (typeof input !== 'string') throw new InvalidParametersError(`expected an expression string, got ${input === null ? 'null' : typeof input}`)
      return { expression: input, value: evaluateExpression(input) }
    },
  }
}

/** Built-in agents by name (what the config's `agents` list refers to). */
export const BUILTIN_AGENTS: Readonly<Record<string, () => AgentInit>> = Object.freeze({
  echo: echoAgent,
  'text-stats': textStatsAgent,
  math: mathAgent,
})
