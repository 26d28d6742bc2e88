import { createHash } from 'node:crypto'
import { privateKeyToAccount } from 'viem/accounts'
import { signMessageOf } from '../chain/typed-data.js'
import { emittedThrough } from '../rewards/index.js'
import type { SimLedger } from './sim-ledger.js'
import type { World } from './world.js'

/**
 * The colluding verifiers' move for the next epoch to post: each signs (EIP-712, its own key) a
 * PostRoot for a root of their making, whose total claims the whole emission released so far, and
 * they submit it together. Returns whether the ledger took it (it must not: they are a minority).
 */
export async function colludersPostForgedRoot(world: World, ledger: SimLedger): Promise<boolean> {
  const colluders = world.verifiers.filter((v) => v.colluding)
  if (colluders.length === 0) return false
  const epoch = ledger.posted().size
  const forged = (label: string) =>
    `0x${createHash('sha256').update(`forged\n${world.seed}\n${label}\n${epoch}`).digest('hex')}` as const
  const message = {
    epoch: BigInt(epoch),
    root: forged('root'),
    bundleDigest: forged('digest'),
    totalCumulative: emittedThrough(world.protocol.emission, BigInt(epoch)),
    revocations: 0,
  }
  const signatures = []
  for (const v of colluders)
    signatures.push(await signMessageOf(privateKeyToAccount(v.evmKey), ledger.domain, 'PostRoot', message))
  try {
    const { revocations: _r, ...post } = message
    await ledger.post(post, signatures)
    return true
  } catch {
    return false
  }
}
