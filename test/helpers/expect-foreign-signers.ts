import { expect } from 'vitest'

/**
 * A signature over a different message (another chain, contract or field) recovers to a random
 * address: the contract refuses it either as out of order or as not a verifier, never accepts it.
 */
export async function expectForeignSigners(attempt: Promise<unknown>): Promise<void> {
  const err = await attempt.then(
    () => undefined,
    (e: unknown) => e as { code?: string },
  )
  expect(['QUORUM_SIGNER_NOT_VERIFIER', 'QUORUM_SIGNERS_NOT_ASCENDING']).toContain(err?.code)
}
