import type { Abi, Hex } from 'viem'
import {
  epochRewardsAbi,
  meshGovernorAbi,
  meshTimelockAbi,
  networkParamsAbi,
  nodeRegistryAbi,
} from '../abi/index.js'
import type { ChainReader } from '../client.js'
import { type GovernableValues, paramsToValues } from '../governable.js'
import type { NetworkParamsStruct } from '../network-params.js'
import { readContract } from '../transact.js'

/**
 * Reads every governable value (docs/governance.md) as it stands after the changes executed so far:
 * NetworkParams' newest version (which may apply only from the next epoch) with its maker list, and
 * the current settings of NodeRegistry, EpochRewards, MeshGovernor and MeshTimelock. A proposal is
 * built on these.
 */
export async function getGovernableValues(client: ChainReader): Promise<{
  values: GovernableValues
  paramsVersion: number
  paramsFromEpoch: bigint
  /** The newest version's makers: raw Ed25519 keys, ascending. */
  makers: readonly Hex[]
}> {
  const read = <T>(address: `0x${string}`, abi: Abi, functionName: string, args: readonly unknown[] = []) =>
    readContract<T>(client, { address, abi, functionName, args })
  const c = client.contracts
  const paramsVersion = await read<number>(c.NetworkParams, networkParamsAbi, 'versionCount')
  const [
    [paramsFromEpoch, params],
    makers,
    minNodeStake,
    minVerifierStake,
    unbondingPeriod,
    quorum,
    maxVerifiers,
    disputeWindow,
    votingDelay,
    votingPeriod,
    proposalThreshold,
    quorumNumerator,
    delay,
  ] = await Promise.all([
    read<readonly [bigint, NetworkParamsStruct]>(c.NetworkParams, networkParamsAbi, 'getVersion', [
      paramsVersion,
    ]),
    read<readonly Hex[]>(c.NetworkParams, networkParamsAbi, 'makersOf', [paramsVersion]),
    read<bigint>(c.NodeRegistry, nodeRegistryAbi, 'minNodeStake'),
    read<bigint>(c.NodeRegistry, nodeRegistryAbi, 'minVerifierStake'),
    read<bigint>(c.NodeRegistry, nodeRegistryAbi, 'unbondingPeriod'),
    read<number>(c.NodeRegistry, nodeRegistryAbi, 'quorum'),
    read<number>(c.NodeRegistry, nodeRegistryAbi, 'maxVerifiers'),
    read<number>(c.EpochRewards, epochRewardsAbi, 'disputeWindow'),
    read<bigint>(c.MeshGovernor, meshGovernorAbi, 'votingDelay'),
    read<bigint>(c.MeshGovernor, meshGovernorAbi, 'votingPeriod'),
    read<bigint>(c.MeshGovernor, meshGovernorAbi, 'proposalThreshold'),
    read<bigint>(c.MeshGovernor, meshGovernorAbi, 'quorumNumerator', []),
    read<bigint>(c.MeshTimelock, meshTimelockAbi, 'getMinDelay'),
  ])
  return {
    paramsVersion,
    paramsFromEpoch,
    makers,
    values: {
      ...paramsToValues(params),
      'registry.minNodeStake': minNodeStake,
      'registry.minVerifierStake': minVerifierStake,
      'registry.unbondingPeriod': unbondingPeriod,
      'registry.quorum': BigInt(quorum),
      'registry.maxVerifiers': BigInt(maxVerifiers),
      'rewards.disputeWindow': BigInt(disputeWindow),
      'gov.votingDelay': votingDelay,
      'gov.votingPeriod': votingPeriod,
      'gov.proposalThreshold': proposalThreshold,
      'gov.quorumPercent': quorumNumerator,
      'timelock.delay': delay,
    },
  }
}
