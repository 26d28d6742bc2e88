import { MeshworkError, type MeshworkErrorOptions } from '../core/errors.js'

/** Codes of the simulator (docs/ERRORS.md, "Simulator"). */
export const simErrorCodes = [
  'SIM_UNKNOWN_SCENARIO',
  'SIM_TOO_LARGE',
  'SIM_STALLED',
  'SIM_ENGINE_UNSUPPORTED',
] as const

export type SimErrorCode = (typeof simErrorCodes)[number]

/** An error of the simulator, with one of {@link simErrorCodes}. */
export class SimError extends MeshworkError {
  override readonly name = 'SimError'
  constructor(code: SimErrorCode, message: string, options: MeshworkErrorOptions = {}) {
    super(code, message, options)
  }
}
