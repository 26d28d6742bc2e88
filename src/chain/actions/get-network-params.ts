import { networkParamsAbi } from '../abi/index.js'
import type { ChainReader } from '../client.js'
import type { NetworkParamsStruct, NetworkParamsVersion } from '../network-params.js'
import { readContract } from '../transact.js'

/**
 * Reads the parameter set in force in `epoch` (default: the epoch the chain's clock is in) from
 * NetworkParams, with its version and the epoch it applies from.
 */
export async function getNetworkParams(
  client: ChainReader,
  options: { epoch?: bigint } = {},
): Promise<NetworkParamsVersion & { epoch: bigint }> {
  const call = <T>(functionName: string, args: readonly unknown[] = []) =>
    readContract<T>(client, {
      address: client.contracts.NetworkParams,
      abi: networkParamsAbi,
      functionName,
      args,
    })
  const epoch = options.epoch ?? (await call<bigint>('currentEpoch'))
  const version = await call<number>('versionAt', [epoch])
  const [fromEpoch, params] = await call<readonly [bigint, NetworkParamsStruct]>('getVersion', [version])
  return { epoch, version, fromEpoch, params }
}
