import { z } from 'zod'
import { defineMessage } from '../mesh/wire-codec.js'

/**
 * Who closes an epoch. The leader of epoch `e` is the active verifiers (the registry at the epoch's
 * seed block), sorted by address, at `(e + attempt) mod n`: it rotates every epoch, and when a leader
 * is down another takes over after a timeout without anyone having to agree on it, because every
 * verifier computes the same list and the same clock-derived attempt.
 */

/** The leader of `epoch` at `attempt` among `verifiers` (addresses, any order or case). */
export function leaderOf(verifiers: readonly string[], epoch: number, attempt: number): `0x${string}` {
  if (verifiers.length === 0) throw new RangeError('an epoch needs at least one active verifier')
  const sorted = [...new Set(verifiers.map((v) => v.toLowerCase()))].sort()
  return sorted[(epoch + attempt) % sorted.length] as `0x${string}`
}

/**
 * The attempt in force at `nowMs`: attempt 0 from the epoch's end (when its root may be posted),
 * then one more every `timeoutMs` until a root is posted.
 */
export function attemptAt(nowMs: number, epochEndMs: number, timeoutMs: number): number {
  if (timeoutMs <= 0) throw new RangeError('timeoutMs must be positive')
  return nowMs < epochEndMs ? 0 : Math.floor((nowMs - epochEndMs) / timeoutMs)
}

const hash = z.string().regex(/^0x[0-9a-f]{64}$/)
const amount = z.string().regex(/^(0|[1-9][0-9]{0,77})$/)

/** A leader's proposal: the bundle it built (fetch it by CID), and the root it settles to. */
export const EPOCH_PROPOSAL = defineMessage(
  'epoch/proposal',
  z
    .object({
      epoch: z.number().int().nonnegative(),
      attempt: z.number().int().nonnegative(),
      cid: z.string().min(1).max(128),
      root: hash,
      bundleDigest: hash,
      totalCumulative: amount,
    })
    .strict(),
  { maxBytes: 2_048 },
)

/** A verifier's EIP-712 `PostRoot` signature for a proposal it recomputed and found identical. */
export const EPOCH_ATTESTATION = defineMessage(
  'epoch/attestation',
  z
    .object({
      epoch: z.number().int().nonnegative(),
      cid: z.string().min(1).max(128),
      root: hash,
      bundleDigest: hash,
      totalCumulative: amount,
      revocations: z.number().int().nonnegative(),
      signer: z.string().regex(/^0x[0-9a-f]{40}$/),
      signature: z.string().regex(/^0x[0-9a-f]{130}$/),
    })
    .strict(),
  { maxBytes: 2_048 },
)
