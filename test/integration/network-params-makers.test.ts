import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { decodeFunctionData, type Hex, parseEventLogs } from 'viem'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  type ContractCall,
  deployContracts,
  encodeGovernableChanges,
  type GovernanceCall,
  getGovernableValues,
  getNetworkParams,
  getNetworkParamsHistory,
  INITIAL_NETWORK_PARAMS,
  MAX_MAKERS,
  makerKeysOf,
  makerPeerIdOf,
  networkParamsAbi,
  parseGovernableSettings,
  parseMakerChanges,
  readContract,
  sendContractTx,
  toRewardParams,
} from '../../src/chain/index.js'
import { createEvmVerifierChain } from '../../src/verifier/chain-port.js'
import { type ChainFixture, startChainFixture } from '../helpers/chain-fixture.js'

const newMaker = async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
const word = (n: number): Hex => `0x${n.toString(16).padStart(64, '0')}`

/**
 * NetworkParams' maker list, versioned with the parameter set: the deploy's makers, `setMakers`
 * through governance (from the next epoch, keeping the set; `setParams` keeps the makers), the
 * views by version and by epoch, and the lists it refuses.
 */
describe('NetworkParams hardware makers on the embedded chain', () => {
  let f: ChainFixture
  let clean: string
  let makers: string[]

  beforeAll(async () => {
    makers = [await newMaker(), await newMaker(), await newMaker()]
    f = await startChainFixture({}, { makers: makers.slice(0, 2) })
    clean = await f.snapshot()
  })
  afterAll(() => f.stop())
  beforeEach(async () => {
    await f.revert(clean)
    clean = await f.snapshot()
  })

  const np = () => f.network.contracts.NetworkParams
  const read = <T>(functionName: string, args: readonly unknown[] = []) =>
    readContract<T>(f.client(0), { address: np(), abi: networkParamsAbi, functionName, args })
  const setMakers = (base: number, list: readonly Hex[]): ContractCall => ({
    address: np(),
    abi: networkParamsAbi,
    functionName: 'setMakers',
    args: [base, list],
  })
  const sorted = (peerIds: readonly string[]) => makerKeysOf(peerIds).map(makerPeerIdOf)
  /** The epoch the chain's clock is in now. */
  const epochNow = async () => (await getNetworkParams(f.client(0))).epoch

  it('starts with the deploy’s makers, sorted, as version 1’s list from epoch 0, and linearBps 5,000', async () => {
    const keys = makerKeysOf(makers.slice(0, 2))
    expect(await read<Hex[]>('makersOf', [1])).toEqual(keys)
    expect(await read<Hex[]>('makersAt', [0n])).toEqual(keys)
    expect(await read<Hex[]>('makersAt', [1_000_000n])).toEqual(keys)
    const v1 = await getNetworkParams(f.client(0))
    expect(v1).toMatchObject({ version: 1, makers: keys, params: { linearBps: 5_000 } })
    expect(toRewardParams(v1).hardware).toEqual({ makers: sorted(makers.slice(0, 2)), linearBps: 5_000 })
    const deployLogs = await f.client(0).public.getContractEvents({
      address: np(),
      abi: networkParamsAbi,
      eventName: 'MakersChanged',
      fromBlock: 0n,
    })
    expect(deployLogs.map((l) => l.args)).toEqual([{ version: 1, fromEpoch: 0n, makers: keys }])
    for (const v of [0, 2])
      await expect(read('makersOf', [v])).rejects.toMatchObject({ code: 'PARAMS_UNKNOWN_VERSION' })
  })

  it('a proposal approving one maker and revoking another makes a version with the new list and the same set, from the epoch after it executes; setParams then keeps that list', async () => {
    const current = await getGovernableValues(f.client(0))
    const { calls, makers: change } = encodeGovernableChanges(
      current,
      new Map(),
      f.network.contracts,
      parseMakerChanges([makers[2] as string], [makers[0] as string]),
    )
    expect(change?.makers).toEqual(sorted([makers[1] as string, makers[2] as string]))
    const executed = await f.govern(calls.map(asContractCall), 'makers')
    const executedIn = await epochNow()
    const events = parseEventLogs({ abi: networkParamsAbi, logs: executed.receipt.logs })
    const next = makerKeysOf([makers[1] as string, makers[2] as string])
    expect(events.map((e) => e.eventName).sort()).toEqual(['MakersChanged', 'ParamsChanged'])
    expect(events.find((e) => e.eventName === 'MakersChanged')?.args).toEqual({
      version: 2,
      fromEpoch: executedIn + 1n,
      makers: next,
    })

    const history = await getNetworkParamsHistory(f.client(0))
    expect(history.map((v) => [v.version, v.fromEpoch, v.makers])).toEqual([
      [1, 0n, makerKeysOf(makers.slice(0, 2))],
      [2, executedIn + 1n, next],
    ])
    expect(history[1]?.params).toEqual(history[0]?.params)
    expect(await read<Hex[]>('makersAt', [executedIn])).toEqual(makerKeysOf(makers.slice(0, 2)))
    expect(await read<Hex[]>('makersAt', [executedIn + 1n])).toEqual(next)

    // The verifiers' chain port answers each epoch with the makers in force in it.
    const port = createEvmVerifierChain(f.client(0), { deployBlock: BigInt(f.network.deployBlock) })
    expect((await port.paramsAt(Number(executedIn))).hardware?.makers).toEqual(sorted(makers.slice(0, 2)))
    expect(await port.paramsAt(Number(executedIn) + 1)).toMatchObject({
      version: 2,
      hardware: { makers: sorted([makers[1] as string, makers[2] as string]), linearBps: 5_000 },
    })

    // A later setParams (here linearBps) keeps version 2's makers.
    const raised = { ...INITIAL_NETWORK_PARAMS, linearBps: 7_500 }
    await f.govern([{ address: np(), abi: networkParamsAbi, functionName: 'setParams', args: [2, raised] }])
    const v3 = (await getNetworkParamsHistory(f.client(0)))[2]
    expect(v3).toMatchObject({ version: 3, makers: next, params: raised })
    expect(toRewardParams(v3 as NonNullable<typeof v3>).hardware?.linearBps).toBe(7_500)
  })

  it('one proposal as gov propose builds it can set parameters and makers together: setParams, then setMakers on the version it made', async () => {
    const { calls } = encodeGovernableChanges(
      await getGovernableValues(f.client(0)),
      parseGovernableSettings(['hardware.linearBps=6000']),
      f.network.contracts,
      parseMakerChanges([makers[2] as string], []),
    )
    await f.govern(calls.map(asContractCall))
    const history = await getNetworkParamsHistory(f.client(0))
    expect(history).toHaveLength(3)
    expect(history[2]).toMatchObject({
      version: 3,
      params: { ...INITIAL_NETWORK_PARAMS, linearBps: 6_000 },
      makers: makerKeysOf(makers),
    })
    // Both apply from the same epoch: version 2 never applies, version 3 does.
    expect(history[1]?.fromEpoch).toBe(history[2]?.fromEpoch)
    expect(await read<number>('versionAt', [history[2]?.fromEpoch])).toBe(3)
  })

  it('refuses a maker list with the zero key, a repeat, keys out of order or too many, a stale version, and anyone but governance', async () => {
    const [a, b] = makerKeysOf(makers.slice(0, 2)) as [Hex, Hex]
    const refused = async (list: readonly Hex[]) => {
      const err = await f.govern([setMakers(1, list)]).then(
        () => undefined,
        (e: unknown) => e,
      )
      return err as { code: string; message: string }
    }
    expect(await refused([word(0), a])).toMatchObject({
      code: 'PARAMS_INVALID_MAKER',
      message: 'execute: maker 0 of the list is the zero key',
    })
    expect(await refused([a, a])).toMatchObject({
      code: 'PARAMS_INVALID_MAKER',
      message: `execute: maker 1 of the list (${makerPeerIdOf(a)}) is a repeat or out of order: a maker list is strictly ascending`,
    })
    expect(await refused([b, a])).toMatchObject({ code: 'PARAMS_INVALID_MAKER' })
    const tooMany = Array.from({ length: MAX_MAKERS + 1 }, (_, i) => word(i + 1))
    expect(await refused(tooMany)).toMatchObject({
      code: 'INVALID_PARAMETER',
      message: expect.stringContaining('hardware.makers'),
    })
    // The full length is fine.
    await f.govern([setMakers(1, tooMany.slice(1))])
    expect(await read<Hex[]>('makersOf', [2])).toHaveLength(MAX_MAKERS)
    // Built on version 1, now that version 2 exists: stale.
    expect(await refused([a])).toMatchObject({ code: 'PARAMS_VERSION_STALE' })
    // linearBps above 10,000 in a parameter set.
    await expect(
      f.govern([
        {
          address: np(),
          abi: networkParamsAbi,
          functionName: 'setParams',
          args: [2, { ...INITIAL_NETWORK_PARAMS, linearBps: 10_001 }],
        },
      ]),
    ).rejects.toMatchObject({
      code: 'INVALID_PARAMETER',
      message: expect.stringContaining('hardware.linearBps'),
    })
    await expect(
      sendContractTx(f.client(0), {
        address: np(),
        abi: networkParamsAbi,
        functionName: 'setMakers',
        args: [2, [a]],
      }),
    ).rejects.toMatchObject({ code: 'NOT_OWNER' })
    expect(await read<number>('versionCount')).toBe(2)
  })

  it('deploy refuses a maker that is not an Ed25519 peer id, or one named twice, before deploying anything', async () => {
    const secp = peerIdFromPrivateKey(await generateKeyPair('secp256k1')).toString()
    const deployer = f.client(0)
    const first = makers[0] as string
    const nonce = await deployer.public.getTransactionCount({ address: f.account(0).address })
    for (const [list, message] of [
      [[first, secp], 'not an Ed25519'],
      [[first, first], 'named twice'],
    ] as const) {
      await expect(
        deployContracts(deployer, {
          name: 'x',
          rpcUrl: 'http://x',
          parameters: f.network.parameters,
          makers: list,
        }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(message) })
    }
    expect(await deployer.public.getTransactionCount({ address: f.account(0).address })).toBe(nonce)
  })
})

/** A proposal's NetworkParams call as the fixture's `govern` takes it. */
function asContractCall(call: GovernanceCall): ContractCall {
  const { functionName, args } = decodeFunctionData({ abi: networkParamsAbi, data: call.data })
  return { address: call.target, abi: networkParamsAbi, functionName, args: args ?? [] }
}
