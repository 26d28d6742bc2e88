import type { Abi } from 'viem'
import {
  epochRewardsAbi,
  meshGovernorAbi,
  meshTimelockAbi,
  meshTokenAbi,
  networkParamsAbi,
  nodeRegistryAbi,
  paymentsAbi,
} from './generated/index.js'

export * from './generated/index.js'

type AbiError = Extract<Abi[number], { type: 'error' }>

const seen = new Set<string>()
/**
 * Every custom error of every Meshwork contract, once each. A revert can come from a contract the
 * caller did not call directly (the token inside a stake transfer); decoding with all of them finds it.
 */
export const meshworkErrorsAbi: readonly AbiError[] = [
  ...meshTokenAbi,
  ...nodeRegistryAbi,
  ...epochRewardsAbi,
  ...paymentsAbi,
  ...meshTimelockAbi,
  ...meshGovernorAbi,
  ...networkParamsAbi,
].filter((item): item is AbiError & typeof item => {
  if (item.type !== 'error') return false
  const key = `${item.name}(${item.inputs.map((i) => i.type).join(',')})`
  if (seen.has(key)) return false
  seen.add(key)
  return true
})
