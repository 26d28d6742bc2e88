import { MeshworkError, type MeshworkErrorOptions } from '../core/errors.js'

/** Codes of auditing and claiming epochs from their bundles (docs/ERRORS.md, "Verifiers and rewards"). */
export const verifierErrorCodes = [
  'EPOCH_NOT_POSTED',
  'BUNDLE_UNAVAILABLE',
  'BUNDLE_INVALID',
  'ROOT_MISMATCH',
  'PARAMS_MISMATCH',
  'BURNS_MISMATCH',
  'NOT_IN_ROOT',
] as const

export type VerifierErrorCode = (typeof verifierErrorCodes)[number]

/** An error of the verifier layer, with one of {@link verifierErrorCodes}. */
export class VerifierError extends MeshworkError {
  override readonly name = 'VerifierError'
  constructor(code: VerifierErrorCode, message: string, options: MeshworkErrorOptions = {}) {
    super(code, message, options)
  }
}
