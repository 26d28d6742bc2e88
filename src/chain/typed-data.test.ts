import fc from 'fast-check'
import { recoverTypedDataAddress } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { contractDomain, recoverSignerSync, signMessageOf, TYPES } from './typed-data.js'

const domain = contractDomain('EpochRewards', 31337, `0x${'ab'.repeat(20)}`)
const hex32 = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((b) => `0x${Buffer.from(b).toString('hex')}` as const)

describe('recoverSignerSync', () => {
  it('recovers the signer of any PostRoot, as viem does', async () => {
    await fc.assert(
      fc.asyncProperty(
        hex32.filter((k) => BigInt(k) > 0n && BigInt(k) < 2n ** 255n),
        fc.record({
          epoch: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          root: hex32,
          bundleDigest: hex32,
          totalCumulative: fc.bigInt({ min: 0n, max: 2n ** 128n - 1n }),
          revocations: fc.integer({ min: 0, max: 1_000 }),
        }),
        async (key, message) => {
          const account = privateKeyToAccount(key)
          const { signature } = await signMessageOf(account, domain, 'PostRoot', message)
          const ours = recoverSignerSync(domain, 'PostRoot', message, signature)
          expect(ours).toBe(account.address)
          const viems = await recoverTypedDataAddress({
            domain,
            types: TYPES.PostRoot,
            primaryType: 'PostRoot',
            message,
            signature,
          } as never)
          expect(ours).toBe(viems)
        },
      ),
      { numRuns: 25 },
    )
  })

  it('refuses a signature of the wrong length or recovery byte, and recovers someone else for another message', async () => {
    const account = privateKeyToAccount(`0x${'42'.repeat(32)}`)
    const message = {
      epoch: 3n,
      root: `0x${'01'.repeat(32)}`,
      bundleDigest: `0x${'02'.repeat(32)}`,
      totalCumulative: 5n,
      revocations: 0,
    } as const
    const { signature } = await signMessageOf(account, domain, 'PostRoot', message)
    expect(() => recoverSignerSync(domain, 'PostRoot', message, `${signature}00`)).toThrow(/65 bytes/)
    expect(() => recoverSignerSync(domain, 'PostRoot', message, `0x${signature.slice(2, -2)}05`)).toThrow(
      /recovery byte/,
    )
    expect(recoverSignerSync(domain, 'PostRoot', { ...message, epoch: 4n }, signature)).not.toBe(
      account.address,
    )
  })
})
