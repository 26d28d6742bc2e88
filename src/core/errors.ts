/** Options shared by every {@link MeshworkError}. */
export interface MeshworkErrorOptions {
  /** Structured context for logs and `--json` output (never secrets). */
  details?: Record<string, unknown>
  /** One short sentence that names the fix, shown after the message. */
  hint?: string
  /** The underlying error. */
  cause?: unknown
}

/**
 * The base of every error Meshwork raises on purpose. Check errors by `code` (stable, listed in
 * docs/ERRORS.md), never by class: codes survive serialization and module duplication.
 *
 * @example
 * ```ts
 * try { await claim(client, args) } catch (err) {
 *   if (isMeshworkError(err, 'CLAIM_NOTHING_TO_CLAIM')) return
 *   throw err
 * }
 * ```
 */
export class MeshworkError extends Error {
  override readonly name: string = 'MeshworkError'
  readonly code: string
  readonly details: Record<string, unknown>
  readonly hint: string | undefined

  constructor(code: string, message: string, options: MeshworkErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.details = options.details ?? {}
    this.hint = options.hint
  }

  /** The one-line form the CLI prints: message, then the fix. */
  get summary(): string {
    return this.hint === undefined ? this.message : `${this.message}. ${this.hint}`
  }

  toJSON(): { code: string; message: string; hint?: string; details: Record<string, unknown> } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      details: this.details,
    }
  }
}

/** Whether `err` is a {@link MeshworkError}, optionally with the given code. */
export function isMeshworkError(err: unknown, code?: string): err is MeshworkError {
  if (typeof err !== 'object' || err === null) return false
  const e = err as { code?: unknown; details?: unknown }
  if (typeof e.code !== 'string' || typeof e.details !== 'object') return false
  return code === undefined || e.code === code
}

/** Error codes raised by core (argument and file validation). */
export const coreErrorCodes = ['INVALID_ARGUMENT', 'INTERNAL'] as const

/** A value given on the command line, in a file or through the API is not acceptable. */
export class InvalidArgumentError extends MeshworkError {
  override readonly name = 'InvalidArgumentError'
  constructor(message: string, options: MeshworkErrorOptions = {}) {
    super('INVALID_ARGUMENT', message, options)
  }
}
