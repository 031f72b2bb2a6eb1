/**
 * A safe arithmetic evaluator: a recursive-descent parser over a fixed grammar (numbers, + - * /
 * % ^, parentheses, a few functions and constants). It never calls eval or Function.
 */
import { MathExpressionError } from './errors.js'

/** Longest accepted expression. */
export const MAX_EXPRESSION_LENGTH = 1000
/** Deepest accepted nesting (parentheses, unary signs, powers). */
export const MAX_EXPRESSION_DEPTH = 64

const FUNCTIONS: Record<string, { arity: [number, number]; fn: (...a: number[]) => number }> = {
  sqrt: { arity: [1, 1], fn: Math.sqrt },
  abs: { arity: [1, 1], fn: Math.abs },
  floor: { arity: [1, 1], fn: Math.floor },
  ceil: { arity: [1, 1], fn: Math.ceil },
  round: { arity: [1, 1], fn: Math.round },
  ln: { arity: [1, 1], fn: Math.log },
  log10: { arity: [1, 1], fn: Math.log10 },
  log2: { arity: [1, 1], fn: Math.log2 },
  exp: { arity: [1, 1], fn: Math.exp },
  sin: { arity: [1, 1], fn: Math.sin },
  cos: { arity: [1, 1], fn: Math.cos },
  tan: { arity: [1, 1], fn: Math.tan },
  pow: { arity: [2, 2], fn: Math.pow },
  min: { arity: [1, 32], fn: Math.min },
  max: { arity: [1, 32], fn: Math.max },
}
const CONSTANTS: Record<string, number> = { pi: Math.PI, e: Math.E, tau: 2 * Math.PI }

type Token = { kind: 'num'; value: number; pos: number } | { kind: 'id'; value: string; pos: number } | { kind: 'op'; value: string; pos: number }

function tokenize(src: string): Token[] {
  const out: Token[] = []
  let i = 0
  while (i < src.length) {
    const c = src[i] as string
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++
    } else if ((c >= '0' && c <= '9') || c === '.') {
      const m = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(src.slice(i))
      if (m === null) throw new MathExpressionError(`expected a number at position ${i}, got "${c}"`)
      out.push({ kind: 'num', value: Number(m[0]), pos: i })
      i += m[0].length
    } else if (/[a-zA-Z_]/.test(c)) {
      const m = /^[a-zA-Z_][a-zA-Z_0-9]*/.exec(src.slice(i)) as RegExpExecArray
      out.push({ kind: 'id', value: m[0].toLowerCase(), pos: i })
      i += m[0].length
    } else if ('+-*/%^(),'.includes(c)) {
      if (c === '*' && src[i + 1] === '*') {
        out.push({ kind: 'op', value: '^', pos: i })
        i += 2
      } else {
        out.push({ kind: 'op', value: c, pos: i })
        i++
      }
    } else {
      throw new MathExpressionError(`expected a number, operator or name at position ${i}, got "${c}"`)
    }
  }
  return out
}

class Parser {
  private i = 0
  private depth = 0
  constructor(private readonly tokens: Token[]) {}

  parse(): number {
    if (this.tokens.length === 0) throw new MathExpressionError('expected an expression, got an empty string')
    const v = this.expr()
    const t = this.tokens[this.i]
    if (t !== undefined) throw new MathExpressionError(`expected the end of the expression at position ${t.pos}, got "${String(t.value)}"`)
    return v
  }

  private enter(): void {
    if (++this.depth > MAX_EXPRESSION_DEPTH) throw new MathExpressionError(`expected nesting of at most ${MAX_EXPRESSION_DEPTH}, got deeper`)
  }

  private peekOp(...ops: string[]): string | undefined {
    const t = this.tokens[this.i]
    return t?.kind === 'op' && ops.includes(t.value) ? t.value : undefined
  }

  private expect(op: string): void {
    const t = this.tokens[this.i]
    if (t?.kind !== 'op' || t.value !== op) {
      throw new MathExpressionError(`expected "${op}"${t === undefined ? ' at the end' : ` at position ${t.pos}`}, got ${t === undefined ? 'nothing' : `"${String(t.value)}"`}`)
    }
    this.i++
  }

  // expr := term (('+'|'-') term)*
  private expr(): number {
    let v = this.term()
    for (let op = this.peekOp('+', '-'); op !== undefined; op = this.peekOp('+', '-')) {
      this.i++
      const r = this.term()
      v = op === '+' ? v + r : v - r
    }
    return v
  }

  // term := unary (('*'|'/'|'%') unary)*
  private term(): number {
    let v = this.unary()
    for (let op = this.peekOp('*', '/', '%'); op !== undefined; op = this.peekOp('*', '/', '%')) {
      const pos = (this.tokens[this.i] as Token).pos
      this.i++
      const r = this.unary()
      if ((op === '/' || op === '%') && r === 0) throw new MathExpressionError(`expected a non-zero divisor at position ${pos}, got 0`)
      v = op === '*' ? v * r : op === '/' ? v / r : v % r
    }
    return v
  }

  // unary := ('+'|'-') unary | power
  private unary(): number {
    const op = this.peekOp('+', '-')
    if (op === undefined) return this.power()
    this.i++
    this.enter()
    const v = this.unary()
    this.depth--
    return op === '-' ? -v : v
  }

  // power := primary ('^' unary)?   (right associative: 2^3^2 = 2^9)
  private power(): number {
    const base = this.primary()
    if (this.peekOp('^') === undefined) return base
    this.i++
    this.enter()
    const exp = this.unary()
    this.depth--
    return Math.pow(base, exp)
  }

  private primary(): number {
    const t = this.tokens[this.i]
    if (t === undefined) throw new MathExpressionError('expected a number, name or "(" at the end, got nothing')
    if (t.kind === 'num') {
      this.i++
      return t.value
    }
    if (t.kind === 'op' && t.value === '(') {
      this.i++
      this.enter()
      const v = this.expr()
      this.depth--
      this.expect(')')
      return v
    }
    if (t.kind === 'id') {
      this.i++
      const fn = FUNCTIONS[t.value]
      if (fn !== undefined) {
        this.expect('(')
        this.enter()
        const args = [this.expr()]
        while (this.peekOp(',') !== undefined) {
          this.i++
          if (args.length >= fn.arity[1]) throw new MathExpressionError(`expected at most ${fn.arity[1]} arguments for ${t.value}, got more`)
          args.push(this.expr())
        }
        this.depth--
        this.expect(')')
        if (args.length < fn.arity[0]) throw new MathExpressionError(`expected ${fn.arity[0]} arguments for ${t.value}, got ${args.length}`)
        return fn.fn(...args)
      }
      const c = CONSTANTS[t.value]
      if (c !== undefined) return c
      throw new MathExpressionError(`expected a known function or constant at position ${t.pos}, got "${t.value}"`)
    }
    throw new MathExpressionError(`expected a number, name or "(" at position ${t.pos}, got "${String(t.value)}"`)
  }
}

/** Evaluates an arithmetic expression. Throws MathExpressionError for anything else, and for non-finite results. */
export function evaluateExpression(expression: string): number {
  if (typeof expression !== 'string') throw new MathExpressionError(`expected an expression string, got ${typeof expression}`)
  if (expression.length > MAX_EXPRESSION_LENGTH) {
    throw new MathExpressionError(`expected at most ${MAX_EXPRESSION_LENGTH} characters, got ${expression.length}`)
  }
  const v = new Parser(tokenize(expression)).parse()
  if (!Number.isFinite(v)) throw new MathExpressionError(`expected a finite result, got ${String(v)}`)
  return v
}
