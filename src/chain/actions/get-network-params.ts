import type { Hex } from 'viem'
import { networkParamsAbi } from '../abi/index.js'
import type { ChainReader } from '../client.js'
import type { NetworkParamsStruct, NetworkParamsVersion } from '../network-params.js'
import { readContract } from '../transact.js'

/**
 * Reads the parameter set and maker list in force in `epoch` (default: the epoch the chain's clock
 * is in) from NetworkParams, with their version and the epoch it applies from; as of `blockNumber`
 * when given (default: the newest block).
 *
 * An epoch's set is final once a block of that epoch (or later) exists: a change executed from then
 * on applies from a later epoch. Before that, a change may still land for it.
 *
 * @example
 * const { version, params } = await getNetworkParams(reader, { epoch: 12n })
 */
export async function getNetworkParams(
  client: ChainReader,
  options: { epoch?: bigint; blockNumber?: bigint } = {},
): Promise<NetworkParamsVersion & { epoch: bigint }> {
  const call = <T>(functionName: string, args: readonly unknown[] = []) =>
    readContract<T>(client, {
      address: client.contracts.NetworkParams,
      abi: networkParamsAbi,
      functionName,
      args,
      ...(options.blockNumber === undefined ? {} : { blockNumber: options.blockNumber }),
    })
  const epoch = options.epoch ?? (await call<bigint>('currentEpoch'))
  const version = await call<number>('versionAt', [epoch])
  const [[fromEpoch, params], makers] = await Promise.all([
    call<readonly [bigint, NetworkParamsStruct]>('getVersion', [version]),
    call<readonly Hex[]>('makersOf', [version]),
  ])
  return { epoch, version, fromEpoch, params, makers }
}
