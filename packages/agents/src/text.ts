/** Word counts, sentences and top keywords of a text, with a one-sentence extractive summary. */
import { InvalidParametersError } from '@kos-mesh/interface'

/** Largest text analysed, in characters (256 Ki). */
export const MAX_TEXT_LENGTH = 256 * 1024

const STOPWORDS = new Set(
  ('a about above after again against all am an and any are as at be because been before being below between both but by can could did do does ' +
    'doing down during each few for from further had has have having he her here hers herself him himself his how i if in into is it its itself ' +
    'just me more most my myself no nor not now of off on once only or other our ours ourselves out over own same she should so some such than ' +
    'that the their theirs them themselves then there these they this those through to too under until up very was we were what when where ' +
    'which while who whom why will with would you your yours yourself yourselves also may might must shall us via per yet').split(' '),
)

/** What the `text-stats` agent answers for a text. */
export interface TextStats {
  characters: number
  words: number
  unique_words: number
  sentences: number
  /** Average words per sentence, two decimals. */
  avg_sentence_words: number
  /** Minutes at 200 words per minute, rounded up (0 for an empty text). */
  reading_minutes: number
  /** Most frequent non-stopword words (>= 3 letters), most frequent first, ties alphabetical. */
  keywords: Array<{ word: string; count: number }>
  /** The sentence whose words score highest by keyword frequency (first one on ties). */
  summary: string
}

/** Analyses `text`. `topK` keywords (1..50, default 5). */
export function textStats(text: string, topK = 5): TextStats {
  if (typeof text !== 'string') throw new InvalidParametersError(`expected text as a string, got ${typeof text}`)
  if (text.length > MAX_TEXT_LENGTH) throw new InvalidParametersError(`expected at most ${MAX_TEXT_LENGTH} characters, got ${text.length}`)
  if (!Number.isInteger(topK) || topK < 1 || topK > 50) throw new InvalidParametersError(`expected topK in 1..50, got ${String(topK)}`)
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu) ?? []
  const freq = new Map<string, number>()
  for (const w of words) {
    if (w.length < 3 || STOPWORDS.has(w) || /^\p{N}+$/u.test(w)) continue
    freq.set(w, (freq.get(w) ?? 0) + 1)
  }
  const keywords = [...freq.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, topK)
    .map(([word, count]) => ({ word, count }))
  const sentences = text
    .split(/(?<=[.!?])\s+|\n{2,}/u)
    .map((s) => s.trim())
    .filter((s) => /[\p{L}\p{N}]/u.test(s))
  let summary = ''
  let best = -1
  for (const s of sentences) {
    const ws = s.toLowerCase().match(/[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu) ?? []
    const score = ws.reduce((acc, w) => acc + (freq.get(w) ?? 0), 0) / Math.max(1, Math.sqrt(ws.length))
    if (score > best) {
      best = score
      summary = s
    }
  }
  return {
    characters: text.length,
    words: words.length,
    unique_words: new Set(words).size,
    sentences: sentences.length,
    avg_sentence_words: sentences.length === 0 ? 0 : Math.round((words.length / sentences.length) * 100) / 100,
    reading_minutes: Math.ceil(words.length / 200),
    keywords,
    summary,
  }
}
