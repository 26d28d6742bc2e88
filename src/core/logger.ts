import { type Logger, pino } from 'pino'

export type { Logger } from 'pino'

/** Options for {@link createLogger}. */
export interface LoggerInit {
  /** pino level; `silent` turns logging off. Default `info`. */
  level?: string
  /** Where JSON lines go; default stderr, so that stdout stays for results and `--json`. */
  destination?: NodeJS.WritableStream
}

/**
 * Creates the process's root logger. Modules take a child of it (`logger.child({ module: 'chain' })`)
 * as a component; nothing logs through a global. Keys and secrets are redacted by path.
 */
export function createLogger(init: LoggerInit = {}): Logger {
  return pino(
    {
      level: init.level ?? 'info',
      base: null,
      redact: {
        paths: ['*.privateKey', '*.mnemonic', 'privateKey', 'mnemonic', '*.key'],
        censor: '[redacted]',
      },
    },
    init.destination ?? pino.destination(2),
  )
}
