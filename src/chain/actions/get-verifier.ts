import { nodeRegistryAbi } from '../abi/index.js'
import type { ChainReader } from '../client.js'
import { readContract } from '../transact.js'

/** A verifier's registration; `registeredAt` is zero when not registered. */
export interface VerifierRecord {
  stake: bigint
  unbondingEndsAt: bigint
  registeredAt: bigint
  unbonding: bigint
  /** Whether its stake counts toward a quorum now. */
  active: boolean
}

/** Reads a verifier's registration and whether it is active. */
export async function getVerifier(client: ChainReader, verifier: `0x${string}`): Promise<VerifierRecord> {
  const call = <T>(functionName: string) =>
    readContract<T>(client, {
      address: client.contracts.NodeRegistry,
      abi: nodeRegistryAbi,
      functionName,
      args: [verifier],
    })
  const [record, active] = await Promise.all([
    call<Omit<VerifierRecord, 'active'>>('getVerifier'),
    call<boolean>('isActiveVerifier'),
  ])
  return { ...record, active }
}
