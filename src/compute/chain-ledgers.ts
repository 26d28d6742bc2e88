import { type Hex, type LocalAccount, recoverMessageAddress } from 'viem'
import { depositChannel } from '../chain/actions/deposit-channel.js'
import { getChannel } from '../chain/actions/get-channel.js'
import { getNetworkParams } from '../chain/actions/get-network-params.js'
import { openChannel } from '../chain/actions/open-channel.js'
import { redeemVoucher } from '../chain/actions/redeem-voucher.js'
import { signVoucher } from '../chain/actions/sign-voucher.js'
import type { ChainClient, ChainReader } from '../chain/client.js'
import { contractDomain, recoverSigner } from '../chain/typed-data.js'
import type { BuilderLedger, ProviderLedger } from './payments.js'
import { verifyBoundsOf } from './verification.js'
import type { VerifyBoundsCache, VerifyBoundsReading } from './verify-bounds-cache.js'

/**
 * A provider's {@link ProviderLedger} on the Payments contract, sending as the node's operator (the
 * desk redeems one channel at a time).
 */
export function chainProviderLedger(
  client: ChainClient,
  options: { operator?: `0x${string}` } = {},
): ProviderLedger {
  const domain = contractDomain('Payments', client.chainId, client.contracts.Payments)
  return {
    // Channels pay the operator the node advertises; anyone may send the redeem (it pays the provider).
    operator: options.operator ?? client.wallet.account.address,
    channel: (id) => getChannel(client, id),
    voucherSigner: (channelId, cumulativeAmount, sig) =>
      recoverSigner(domain, 'Voucher', { channelId, cumulativeAmount }, sig),
    sessionSigner: (text, sig) => recoverMessageAddress({ message: text, signature: sig }),
    redeem: async (channelId, cumulativeAmount, signature) => {
      await redeemVoucher(client, { channelId, cumulativeAmount, signature })
    },
  }
}

/** A builder's {@link BuilderLedger}: opens and tops up channels and signs with the client's account. */
export function chainBuilderLedger(client: ChainClient): BuilderLedger {
  const account = client.wallet.account as LocalAccount
  // One transaction at a time: concurrent jobs opening or topping up channels would otherwise race
  // on the token allowance (each approve replaces the last) and on the account's nonce.
  let queue: Promise<unknown> = Promise.resolve()
  const serial = <T>(send: () => Promise<T>): Promise<T> => {
    const run = queue.then(send, send)
    queue = run.catch(() => undefined)
    return run
  }
  return {
    address: client.wallet.account.address,
    openChannel: (provider, amount) =>
      serial(async () => (await openChannel(client, { provider, amount })).channelId),
    deposit: (channelId, amount) =>
      serial(async () => {
        await depositChannel(client, channelId, amount)
      }),
    signVoucher: async (channelId, cumulativeAmount) =>
      (await signVoucher(client, account, { channelId, cumulativeAmount })).signature,
    signSession: (text): Promise<Hex> => account.signMessage({ message: text }),
  }
}

/**
 * Reads the compute re-run bounds for a {@link VerifyBoundsCache}: the newest block, then the
 * NetworkParams set in force in its epoch, as of that block (five calls).
 */
export function chainVerifyBounds(reader: ChainReader): () => Promise<VerifyBoundsReading> {
  return async () => {
    const block = await reader.public.getBlock()
    const r = await getNetworkParams(reader, { blockNumber: block.number })
    return {
      epoch: r.epoch,
      version: r.version,
      bounds: verifyBoundsOf(r.params),
      chainTime: Number(block.timestamp),
    }
  }
}
