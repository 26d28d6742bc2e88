import type { Hex } from 'viem'
import { networkParamsAbi } from '../abi/index.js'
import type { ChainReader } from '../client.js'
import type { NetworkParamsStruct, NetworkParamsVersion } from '../network-params.js'
import { readContract } from '../transact.js'

/**
 * Reads every version NetworkParams holds (parameter set and maker list), oldest first. A version
 * whose `fromEpoch` equals the next one's never applied (two changes executed in the same epoch: the
 * later wins).
 */
export async function getNetworkParamsHistory(client: ChainReader): Promise<NetworkParamsVersion[]> {
  const call = <T>(functionName: string, args: readonly unknown[] = []) =>
    readContract<T>(client, {
      address: client.contracts.NetworkParams,
      abi: networkParamsAbi,
      functionName,
      args,
    })
  const count = await call<number>('versionCount')
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const [[fromEpoch, params], makers] = await Promise.all([
        call<readonly [bigint, NetworkParamsStruct]>('getVersion', [i + 1]),
        call<readonly Hex[]>('makersOf', [i + 1]),
      ])
      return { version: i + 1, fromEpoch, params, makers }
    }),
  )
}
