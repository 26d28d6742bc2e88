import {
  type Abi,
  BaseError,
  ContractFunctionRevertedError,
  decodeErrorResult,
  type Hex,
  type TransactionReceipt,
} from 'viem'
import { MeshworkError } from '../core/errors.js'
import { meshworkErrorsAbi } from './abi/index.js'
import type { ChainClient } from './client.js'
import { chainError, REVERTS } from './errors.js'

/** A mined, successful transaction. */
export interface TxResult {
  hash: Hex
  receipt: TransactionReceipt
  gasUsed: bigint
}

/** What {@link sendContractTx} sends. */
export interface ContractCall {
  address: `0x${string}`
  abi: Abi
  functionName: string
  args: readonly unknown[]
}

/**
 * Sends a contract call from the client's account, waits for it to be mined and returns the receipt.
 * A revert (in gas estimation or on chain) becomes a {@link MeshworkError} whose code names the
 * contract's custom error (see docs/ERRORS.md).
 */
export async function sendContractTx(client: ChainClient, call: ContractCall): Promise<TxResult> {
  let hash: Hex
  try {
    const request = {
      address: call.address,
      abi: [...call.abi, ...meshworkErrorsAbi],
      functionName: call.functionName,
      args: call.args,
      account: client.wallet.account,
    } as never
    const estimate = await client.public.estimateContractGas(request)
    hash = await client.wallet.writeContract({ ...(request as object), gas: gasLimitFor(estimate) } as never)
  } catch (err) {
    throw toChainError(err, call.functionName)
  }
  const receipt = await client.public.waitForTransactionReceipt({ hash })
  if (receipt.status !== 'success') {
    throw chainError('TX_REVERTED', `${call.functionName} transaction ${hash} reverted`, {
      details: { hash },
    })
  }
  return { hash, receipt, gasUsed: receipt.gasUsed }
}

/**
 * The gas limit sent for a transaction estimated at `estimate`: half as much again plus 30,000.
 * The transaction runs in a later block than the estimate, whose timestamp can take another path:
 * MeshToken checkpoints votes and supply by timestamp (ERC-6372), so a mint, burn or transfer
 * estimated in the second of the previous checkpoint updates it in place, but mined a second later
 * writes a new one (about 22,600 gas more each). A fifth more, as before, left a root posted right
 * after another mint out of gas, and an out-of-gas revert carries no reason to report. Gas not used
 * is not charged.
 */
export function gasLimitFor(estimate: bigint): bigint {
  return estimate + estimate / 2n + 30_000n
}

/** Reads a view function, mapping reverts like {@link sendContractTx}. */
export async function readContract<T>(
  client: Pick<ChainClient, 'public'>,
  call: ContractCall & { blockNumber?: bigint },
): Promise<T> {
  try {
    return (await client.public.readContract({
      address: call.address,
      abi: [...call.abi, ...meshworkErrorsAbi],
      functionName: call.functionName,
      args: call.args,
      ...(call.blockNumber === undefined ? {} : { blockNumber: call.blockNumber }),
    } as never)) as T
  } catch (err) {
    throw toChainError(err, call.functionName)
  }
}

/**
 * Maps any error from viem or the RPC to a {@link MeshworkError}: a known custom error to its code,
 * an unknown revert to `CONTRACT_REVERTED`, a transport failure to `RPC_UNREACHABLE`.
 */
export function toChainError(err: unknown, action: string): MeshworkError {
  if (err instanceof MeshworkError) return err
  if (err instanceof BaseError) {
    const reverted = err.walk(
      (e) => e instanceof ContractFunctionRevertedError,
    ) as ContractFunctionRevertedError | null
    let name = reverted?.data?.errorName
    let args: readonly unknown[] = reverted?.data?.args ?? []
    if (name === undefined) {
      const raw = findRevertData(err)
      if (raw !== undefined) {
        try {
          const decoded = decodeErrorResult({ abi: meshworkErrorsAbi, data: raw })
          name = decoded.errorName
          args = decoded.args ?? []
        } catch {
          // not one of ours; fall through
        }
      }
    }
    if (name !== undefined) {
      const info = REVERTS[name]
      if (info) {
        return chainError(info.code, `${action}: ${info.message(args)}`, {
          ...(info.hint === undefined ? {} : { hint: info.hint }),
          details: { error: name, args: args.map(String) },
          cause: err,
        })
      }
      return chainError('CONTRACT_REVERTED', `${action} reverted with ${name}`, {
        details: { error: name, args: args.map(String) },
        cause: err,
      })
    }
    if (reverted || err.walk((e) => (e as { name?: string }).name === 'ExecutionRevertedError')) {
      return chainError('CONTRACT_REVERTED', `${action} reverted: ${reverted?.reason ?? err.shortMessage}`, {
        cause: err,
      })
    }
    const broke = err.walk((e) =>
      /insufficient funds|enough funds/i.test(
        `${(e as { details?: string }).details ?? ''} ${(e as Error).message}`,
      ),
    )
    if (broke) {
      return chainError('INSUFFICIENT_FUNDS', `${action}: the sending account has too little ETH for gas`, {
        hint: 'Send some ETH for gas to the account (on devnet, from a funded dev account)',
        cause: err,
      })
    }
    const transport = err.walk(
      (e) =>
        (e as { name?: string }).name === 'HttpRequestError' ||
        (e as { name?: string }).name === 'TimeoutError',
    )
    if (transport) {
      return chainError('RPC_UNREACHABLE', `${action}: the chain did not answer`, {
        hint: 'Check that the chain is running and --rpc points at it',
        cause: err,
      })
    }
    return chainError('CONTRACT_REVERTED', `${action} failed: ${err.shortMessage}`, { cause: err })
  }
  return chainError('CONTRACT_REVERTED', `${action} failed: ${(err as Error)?.message ?? String(err)}`, {
    cause: err,
  })
}

function findRevertData(err: BaseError): Hex | undefined {
  let found: Hex | undefined
  err.walk((e) => {
    const data = (e as { data?: unknown }).data
    if (typeof data === 'string' && /^0x[0-9a-fA-F]{8,}$/.test(data)) {
      found = data as Hex
      return true
    }
    return false
  })
  return found
}
