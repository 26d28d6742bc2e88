import { MeshworkError, type MeshworkErrorOptions } from '../core/errors.js'

/** Codes of the compute market (docs/ERRORS.md, "Compute jobs"). */
export const computeErrorCodes = [
  'JOB_SPEC_INVALID',
  'JOB_TIMEOUT',
  'JOB_MEMORY_LIMIT',
  'JOB_OUTPUT_TOO_LARGE',
  'JOB_FAILED',
  'JOB_NO_PROVIDER',
  'PAYMENT_REQUIRED',
  'PAYMENT_INVALID',
  'VOUCHER_STALE',
] as const

export type ComputeErrorCode = (typeof computeErrorCodes)[number]

/** An error of a compute job, with one of {@link computeErrorCodes}. */
export class ComputeError extends MeshworkError {
  override readonly name = 'ComputeError'
  constructor(code: ComputeErrorCode, message: string, options: MeshworkErrorOptions = {}) {
    super(code, message, options)
  }
}
