import { isMeshworkError } from '../core/errors.js'

/** Global flags every command honours. */
export interface GlobalOptions {
  verbose: boolean
  json: boolean
}

/** Where a command writes: results to stdout, progress and errors to stderr. */
export interface Output {
  /** A result line for people (suppressed with --json). */
  info(line: string): void
  /** A JSON document for scripts (only with --json). */
  json(value: unknown): void
  /** A progress step, to stderr (suppressed with --json). */
  step(text: string, index?: number, total?: number): void
  /** A warning, to stderr. */
  warn(line: string): void
}

/** JSON.stringify that writes bigints as decimal strings. */
export function toJson(value: unknown, space?: number): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), space)
}

/** Builds the {@link Output} for the given flags. */
export function createOutput(opts: GlobalOptions): Output {
  return {
    info(line) {
      if (!opts.json) process.stdout.write(`${line}\n`)
    },
    json(value) {
      if (opts.json) process.stdout.write(`${toJson(value, 2)}\n`)
    },
    step(text, index, total) {
      if (opts.json) return
      const counter = index !== undefined && total !== undefined ? `[${index}/${total}] ` : ''
      process.stderr.write(`${counter}${text}\n`)
    },
    warn(line) {
      process.stderr.write(`warning: ${line}\n`)
    },
  }
}

/**
 * Prints an error the way the CLI promises: one line naming the fix, the stack only with --verbose,
 * and a JSON object on stdout with --json. Returns the exit code: 2 for a bad argument (a usage
 * error), 1 for everything else.
 */
export function reportError(err: unknown, opts: GlobalOptions): number {
  if (isMeshworkError(err)) {
    const line = `meshwork: ${err.message}${err.hint ? `. ${err.hint}` : ''} [${err.code}]`
    process.stderr.write(`${line}\n`)
    if (opts.json) process.stdout.write(`${toJson({ error: err.toJSON() })}\n`)
  } else {
    const message = err instanceof Error ? err.message : String(err)
    process.stderr.write(
      `meshwork: unexpected error: ${message}. Run again with --verbose and report it [INTERNAL]\n`,
    )
    if (opts.json) process.stdout.write(`${toJson({ error: { code: 'INTERNAL', message, details: {} } })}\n`)
  }
  if (opts.verbose) {
    let e: unknown = err
    let depth = 0
    while (e instanceof Error && depth < 6) {
      process.stderr.write(`${depth === 0 ? '' : 'caused by: '}${e.stack ?? e.message}\n`)
      e = e.cause
      depth++
    }
  }
  return isMeshworkError(err, 'INVALID_ARGUMENT') ? 2 : 1
}
