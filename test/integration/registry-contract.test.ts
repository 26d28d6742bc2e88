import { concatHex, type Hex, keccak256, toHex, zeroAddress } from 'viem'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  addNodeStake,
  contractDomain,
  getTokenBalance,
  type Messages,
  type NodeRecord,
  nodeIdOf,
  nodeRegistryAbi,
  packSignatures,
  readContract,
  registerNode,
  registerVerifier,
  requestNodeUnbond,
  requestVerifierUnbond,
  type SignedBy,
  sendContractTx,
  signMessageOf,
  signSlashNode,
  slashNode,
  withdrawNode,
  withdrawVerifier,
} from '../../src/chain/index.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'
import { expectForeignSigners } from '../helpers/expect-foreign-signers.js'

const VERIFIERS = [1, 2, 3, 4, 5]

/** Signatures in ascending signer order, unpacked, to build malformed lists by hand. */
const inSignerOrder = (list: readonly SignedBy[]): Hex[] =>
  [...list].sort((a, b) => (BigInt(a.signer) < BigInt(b.signer) ? -1 : 1)).map((s) => s.signature)
const VERIFIER_STAKE = 100_000n * MESH
const MIN_NODE_STAKE = 1_000n * MESH
const UNBONDING = 60
/** Funded, never registered as a verifier. */
const OUTSIDER = 10
const H3_CELL = 0x8a2a1072b59ffffn

/** NodeRegistry's `Verifier` struct as viem decodes it. */
interface VerifierView {
  stake: bigint
  unbondingEndsAt: bigint
  registeredAt: bigint
  unbonding: bigint
}

describe('NodeRegistry on the embedded chain', () => {
  let f: ChainFixture
  let clean: string

  beforeAll(async () => {
    f = await startChainFixture({ quorum: 3 })
    for (const i of VERIFIERS) {
      await f.fund(i, VERIFIER_STAKE)
      await registerVerifier(f.client(i), { peerId: toHex(`verifier-${i}`), stake: VERIFIER_STAKE })
    }
    for (const i of [6, 7, 8, 9, OUTSIDER]) await f.fund(i, 200_000n * MESH)
    clean = await f.snapshot()
  })
  afterAll(() => f.stop())
  beforeEach(async () => {
    await f.revert(clean)
    clean = await f.snapshot()
  })

  const addr = (i: number) => f.account(i).address
  const balance = (i: number) => getTokenBalance(f.client(0), addr(i))
  const registryBalance = () => getTokenBalance(f.client(0), f.network.contracts.NodeRegistry)
  const registryDomain = () =>
    contractDomain('NodeRegistry', f.chain.chainId, f.network.contracts.NodeRegistry)
  const read = <T>(functionName: string, args: readonly unknown[] = []) =>
    readContract<T>(f.client(0), {
      address: f.network.contracts.NodeRegistry,
      abi: nodeRegistryAbi,
      functionName,
      args,
    })
  const getNode = (nodeId: Hex) => read<NodeRecord>('getNode', [nodeId])
  const getVerifier = (i: number) => read<VerifierView>('getVerifier', [addr(i)])
  /** Calls a NodeRegistry function that has no action file. */
  const call = (i: number, functionName: string, args: readonly unknown[]) =>
    sendContractTx(f.client(i), {
      address: f.network.contracts.NodeRegistry,
      abi: nodeRegistryAbi,
      functionName,
      args,
    })

  /** Changes a NodeRegistry parameter through a governance proposal. */
  const govern = (functionName: string, args: readonly unknown[]) =>
    f.govern([{ address: f.network.contracts.NodeRegistry, abi: nodeRegistryAbi, functionName, args }])

  /** Registers a node for operator `i` with `stake`. */
  async function register(i: number, stake: bigint, name = `node-${i}`) {
    return registerNode(f.client(i), { peerId: toHex(name), services: 1, h3Cell: H3_CELL, stake })
  }

  const signSlash = (signers: number[], message: Messages['SlashNode']) =>
    Promise.all(signers.map((i) => signSlashNode(f.client(0), f.account(i), message)))

  /** Slashes `nodeId` by `amount` with the signatures of `signers`, submitted by an outsider. */
  async function slash(nodeId: Hex, amount: bigint, evidence: string, signers = [1, 2, 3]) {
    const message = { nodeId, amount, evidenceHash: keccak256(toHex(evidence)) }
    return slashNode(f.client(9), { ...message, signatures: await signSlash(signers, message) })
  }

  // ─── Happy paths ──────────────────────────────────────────────────────────────────────────

  it('registers a node: the stake moves into the registry and getNode shows the registration', async () => {
    const peerId = toHex('12D3KooW-node-6')
    const metadataHash = keccak256(toHex('metadata'))
    const before = await registryBalance()
    const { nodeId } = await registerNode(f.client(6), {
      peerId,
      services: 0b101,
      h3Cell: H3_CELL,
      metadataHash,
      stake: 2_000n * MESH,
    })
    expect(nodeId).toBe(nodeIdOf(peerId))
    expect(nodeId).toBe(keccak256(peerId))
    expect(await balance(6)).toBe(198_000n * MESH)
    expect(await registryBalance()).toBe(before + 2_000n * MESH)

    const node = await getNode(nodeId)
    expect(node.operator).toBe(addr(6))
    expect(node.services).toBe(0b101)
    expect(node.h3Cell).toBe(H3_CELL)
    expect(node.metadataHash).toBe(metadataHash)
    expect(node.stake).toBe(2_000n * MESH)
    expect(node.unbonding).toBe(0n)
    expect(node.registeredAt).toBeGreaterThan(0n)
    expect(await read<boolean>('isActiveNode', [nodeId])).toBe(true)
  })

  it('adds stake to a node, from its operator or from anyone else', async () => {
    const { nodeId } = await register(6, MIN_NODE_STAKE)
    await addNodeStake(f.client(6), nodeId, 500n * MESH)
    await addNodeStake(f.client(7), nodeId, 250n * MESH)
    const node = await getNode(nodeId)
    expect(node.stake).toBe(1_750n * MESH)
    // The top-up stays the node's: its operator is unchanged.
    expect(node.operator).toBe(addr(6))
    expect(await balance(6)).toBe(200_000n * MESH - 1_500n * MESH)
    expect(await balance(7)).toBe(200_000n * MESH - 250n * MESH)
  })

  it('unbonds, pays the operator back after the unbonding period, and deregisters a fully unbonded node', async () => {
    const { nodeId } = await register(6, 3_000n * MESH)
    await requestNodeUnbond(f.client(6), nodeId, 1_000n * MESH)
    let node = await getNode(nodeId)
    expect(node.stake).toBe(2_000n * MESH)
    expect(node.unbonding).toBe(1_000n * MESH)
    expect(node.unbondingEndsAt).toBe(BigInt((await f.now()) + UNBONDING))

    await expect(withdrawNode(f.client(6), nodeId)).rejects.toMatchObject({
      code: 'REGISTRY_UNBONDING_NOT_FINISHED',
    })
    await f.advance(UNBONDING)
    await withdrawNode(f.client(6), nodeId)
    expect(await balance(6)).toBe(198_000n * MESH)
    node = await getNode(nodeId)
    expect(node.operator).toBe(addr(6))
    expect(node.stake).toBe(2_000n * MESH)
    expect(node.unbonding).toBe(0n)
    await expect(withdrawNode(f.client(6), nodeId)).rejects.toMatchObject({
      code: 'REGISTRY_NOTHING_TO_WITHDRAW',
    })

    // Unbonding everything leaves the registry.
    await requestNodeUnbond(f.client(6), nodeId, 2_000n * MESH)
    expect(await read<boolean>('isActiveNode', [nodeId])).toBe(false)
    await f.advance(UNBONDING)
    await withdrawNode(f.client(6), nodeId)
    expect(await balance(6)).toBe(200_000n * MESH)
    node = await getNode(nodeId)
    expect(node.operator).toBe(zeroAddress)
    expect(node.stake).toBe(0n)
    await expect(withdrawNode(f.client(6), nodeId)).rejects.toMatchObject({
      code: 'REGISTRY_NODE_NOT_REGISTERED',
    })
  })

  it('restarts the unbonding timer on a new unbond request', async () => {
    const { nodeId } = await register(6, 3_000n * MESH)
    await requestNodeUnbond(f.client(6), nodeId, 500n * MESH)
    await f.advance(40)
    await requestNodeUnbond(f.client(6), nodeId, 500n * MESH)
    // The first request's period is over, but the second one restarted the timer for both.
    await f.advance(30)
    await expect(withdrawNode(f.client(6), nodeId)).rejects.toMatchObject({
      code: 'REGISTRY_UNBONDING_NOT_FINISHED',
    })
    await f.advance(UNBONDING)
    await withdrawNode(f.client(6), nodeId)
    expect(await balance(6)).toBe(198_000n * MESH)
  })

  it('registers a verifier, unbonds it and pays its stake back, freeing its seat', async () => {
    await registerVerifier(f.client(9), { peerId: toHex('verifier-9'), stake: 150_000n * MESH })
    expect(await balance(9)).toBe(50_000n * MESH)
    expect((await getVerifier(9)).stake).toBe(150_000n * MESH)
    expect(await read<boolean>('isActiveVerifier', [addr(9)])).toBe(true)
    expect(await read<number>('verifierCount')).toBe(6)

    // What stays must be zero or at least the minimum.
    await expect(requestVerifierUnbond(f.client(9), 60_000n * MESH)).rejects.toMatchObject({
      code: 'REGISTRY_STAKE_BELOW_MINIMUM',
    })
    await requestVerifierUnbond(f.client(9), 50_000n * MESH)
    await expect(withdrawVerifier(f.client(9))).rejects.toMatchObject({
      code: 'REGISTRY_UNBONDING_NOT_FINISHED',
    })
    await f.advance(UNBONDING)
    await withdrawVerifier(f.client(9))
    expect(await balance(9)).toBe(100_000n * MESH)
    expect(await read<number>('verifierCount')).toBe(6)

    await requestVerifierUnbond(f.client(9), 100_000n * MESH)
    expect(await read<boolean>('isActiveVerifier', [addr(9)])).toBe(false)
    await f.advance(UNBONDING)
    await withdrawVerifier(f.client(9))
    expect(await balance(9)).toBe(200_000n * MESH)
    expect((await getVerifier(9)).registeredAt).toBe(0n)
    expect(await read<number>('verifierCount')).toBe(5)
    await expect(withdrawVerifier(f.client(9))).rejects.toMatchObject({
      code: 'REGISTRY_VERIFIER_NOT_REGISTERED',
    })
  })

  it('slashes a node with a quorum to the treasury, bonded stake first, then unbonding stake', async () => {
    const { nodeId } = await register(6, 3_000n * MESH)
    await requestNodeUnbond(f.client(6), nodeId, 1_000n * MESH)
    const treasury = await balance(0)

    await slash(nodeId, 1_500n * MESH, 'evidence-1')
    let node = await getNode(nodeId)
    expect(node.stake).toBe(500n * MESH)
    expect(node.unbonding).toBe(1_000n * MESH)
    expect(await balance(0)).toBe(treasury + 1_500n * MESH)

    await slash(nodeId, 1_000n * MESH, 'evidence-2', [2, 4, 5])
    node = await getNode(nodeId)
    expect(node.stake).toBe(0n)
    expect(node.unbonding).toBe(500n * MESH)
    expect(await balance(0)).toBe(treasury + 2_500n * MESH)

    // A slash above what is left takes what is left.
    await slash(nodeId, 10_000n * MESH, 'evidence-3')
    node = await getNode(nodeId)
    expect(node.stake).toBe(0n)
    expect(node.unbonding).toBe(0n)
    expect(await balance(0)).toBe(treasury + 3_000n * MESH)
    expect(await read<boolean>('evidenceUsed', [keccak256(toHex('evidence-3'))])).toBe(true)

    // Nothing is left: the node is deregistered, the operator gets nothing back, and the peer id is
    // free to register again.
    expect(node.operator).toBe(zeroAddress)
    await f.advance(UNBONDING)
    await expect(withdrawNode(f.client(6), nodeId)).rejects.toMatchObject({
      code: 'REGISTRY_NODE_NOT_REGISTERED',
    })
    expect(await balance(6)).toBe(197_000n * MESH)
    expect(await read<boolean>('isActiveNode', [nodeId])).toBe(false)
  })

  // ─── Attacks ──────────────────────────────────────────────────────────────────────────────

  it('refuses a stake below the minimum, a bad peer id and a second registration of a peer id', async () => {
    await expect(register(6, MIN_NODE_STAKE - 1n)).rejects.toMatchObject({
      code: 'REGISTRY_STAKE_BELOW_MINIMUM',
    })
    await expect(
      registerNode(f.client(6), { peerId: '0x', services: 1, h3Cell: H3_CELL, stake: MIN_NODE_STAKE }),
    ).rejects.toMatchObject({ code: 'REGISTRY_INVALID_PEER_ID' })
    await expect(
      registerNode(f.client(6), {
        peerId: new Uint8Array(129).fill(7),
        services: 1,
        h3Cell: H3_CELL,
        stake: MIN_NODE_STAKE,
      }),
    ).rejects.toMatchObject({ code: 'REGISTRY_INVALID_PEER_ID' })
    expect(await balance(6)).toBe(200_000n * MESH)

    const { nodeId } = await register(6, MIN_NODE_STAKE, 'shared-peer')
    // Neither another operator nor the same one can register the peer id again.
    await expect(register(7, 5_000n * MESH, 'shared-peer')).rejects.toMatchObject({
      code: 'REGISTRY_NODE_ALREADY_REGISTERED',
    })
    await expect(register(6, MIN_NODE_STAKE, 'shared-peer')).rejects.toMatchObject({
      code: 'REGISTRY_NODE_ALREADY_REGISTERED',
    })
    const node = await getNode(nodeId)
    expect(node.operator).toBe(addr(6))
    expect(node.stake).toBe(MIN_NODE_STAKE)
    expect(await balance(7)).toBe(200_000n * MESH)
  })

  it('refuses an unbond or a withdraw by anyone but the operator', async () => {
    const { nodeId } = await register(6, 2_000n * MESH)
    await expect(requestNodeUnbond(f.client(7), nodeId, 1_000n * MESH)).rejects.toMatchObject({
      code: 'REGISTRY_NOT_OPERATOR',
    })
    await requestNodeUnbond(f.client(6), nodeId, 1_000n * MESH)
    await f.advance(UNBONDING)
    await expect(withdrawNode(f.client(7), nodeId)).rejects.toMatchObject({ code: 'REGISTRY_NOT_OPERATOR' })
    await expect(call(7, 'updateNode', [nodeId, 0, 0n, keccak256(toHex('hijack'))])).rejects.toMatchObject({
      code: 'REGISTRY_NOT_OPERATOR',
    })
    expect(await balance(7)).toBe(200_000n * MESH)
    await withdrawNode(f.client(6), nodeId)
    expect(await balance(6)).toBe(199_000n * MESH)
  })

  it('refuses a partial unbond that leaves less than the minimum, and an unbond above the stake', async () => {
    const { nodeId } = await register(6, 1_500n * MESH)
    await expect(requestNodeUnbond(f.client(6), nodeId, 600n * MESH)).rejects.toMatchObject({
      code: 'REGISTRY_STAKE_BELOW_MINIMUM',
    })
    await expect(requestNodeUnbond(f.client(6), nodeId, 1_501n * MESH)).rejects.toMatchObject({
      code: 'REGISTRY_INSUFFICIENT_STAKE',
    })
    await expect(requestNodeUnbond(f.client(6), nodeId, 0n)).rejects.toMatchObject({ code: 'ZERO_AMOUNT' })
    await requestNodeUnbond(f.client(6), nodeId, 500n * MESH)
    const node = await getNode(nodeId)
    expect(node.stake).toBe(MIN_NODE_STAKE)
    expect(node.unbonding).toBe(500n * MESH)
  })

  it('refuses a slash without quorum, signed by a non-verifier, or with duplicated signers', async () => {
    const { nodeId } = await register(6, 2_000n * MESH)
    const treasury = await balance(0)
    const message = { nodeId, amount: 500n * MESH, evidenceHash: keccak256(toHex('evidence')) }
    const submit = (signatures: SignedBy[]) => slashNode(f.client(9), { ...message, signatures })

    await expect(submit(await signSlash([1, 2], message))).rejects.toMatchObject({
      code: 'QUORUM_NOT_REACHED',
    })
    await expect(submit(await signSlash([1, 2, OUTSIDER], message))).rejects.toMatchObject({
      code: 'QUORUM_SIGNER_NOT_VERIFIER',
    })
    // The node's own operator is no verifier either.
    await expect(submit(await signSlash([1, 2, 6], message))).rejects.toMatchObject({
      code: 'QUORUM_SIGNER_NOT_VERIFIER',
    })
    // One verifier counted twice: the action would merge it, so send the raw list to the contract.
    const sigs = inSignerOrder(await signSlash([1, 2], message))
    await expect(
      call(9, 'slashNode', [
        message.nodeId,
        message.amount,
        message.evidenceHash,
        concatHex([sigs[0], sigs[1], sigs[1]] as Hex[]),
      ]),
    ).rejects.toMatchObject({ code: 'QUORUM_SIGNERS_NOT_ASCENDING' })
    await expect(
      call(9, 'slashNode', [
        message.nodeId,
        message.amount,
        message.evidenceHash,
        concatHex([...sigs].reverse()),
      ]),
    ).rejects.toMatchObject({ code: 'QUORUM_SIGNERS_NOT_ASCENDING' })

    expect((await getNode(nodeId)).stake).toBe(2_000n * MESH)
    expect(await balance(0)).toBe(treasury)
    expect(await read<boolean>('evidenceUsed', [message.evidenceHash])).toBe(false)
  })

  it('refuses to slash twice with the same evidence', async () => {
    const { nodeId } = await register(6, 3_000n * MESH)
    const treasury = await balance(0)
    await slash(nodeId, 500n * MESH, 'evidence')
    // The same signed message replayed, and a fresh quorum reusing the evidence for another amount.
    await expect(slash(nodeId, 500n * MESH, 'evidence')).rejects.toMatchObject({
      code: 'SLASH_EVIDENCE_USED',
    })
    await expect(slash(nodeId, 100n * MESH, 'evidence', [3, 4, 5])).rejects.toMatchObject({
      code: 'SLASH_EVIDENCE_USED',
    })
    expect((await getNode(nodeId)).stake).toBe(2_500n * MESH)
    expect(await balance(0)).toBe(treasury + 500n * MESH)
  })

  it('refuses slash signatures made for another chain, another contract or another amount', async () => {
    const { nodeId } = await register(6, 2_000n * MESH)
    const treasury = await balance(0)
    const message = { nodeId, amount: 500n * MESH, evidenceHash: keccak256(toHex('evidence')) }
    const wrongChain = { ...registryDomain(), chainId: 1 }
    const wrongContract = { ...registryDomain(), verifyingContract: f.network.contracts.EpochRewards }
    for (const domain of [wrongChain, wrongContract]) {
      const sigs = await Promise.all(
        [1, 2, 3].map((i) => signMessageOf(f.account(i), domain, 'SlashNode', message)),
      )
      await expectForeignSigners(slashNode(f.client(9), { ...message, signatures: sigs }))
    }
    // Signed for 1 MESH, submitted for the whole stake.
    const small = await signSlash([1, 2, 3], { ...message, amount: MESH })
    await expectForeignSigners(
      slashNode(f.client(9), { ...message, amount: 2_000n * MESH, signatures: small }),
    )
    expect((await getNode(nodeId)).stake).toBe(2_000n * MESH)
    expect(await balance(0)).toBe(treasury)
  })

  it('no longer counts a verifier toward a quorum once its stake is slashed below the minimum', async () => {
    const { nodeId } = await register(6, 2_000n * MESH)
    const treasury = await balance(0)
    // Verifiers 1, 2 and 4 slash verifier 3 by 1 MESH (no action file: send it raw).
    const message = { verifier: addr(3), amount: MESH, evidenceHash: keccak256(toHex('verifier-3-lied')) }
    const sigs = await Promise.all(
      [1, 2, 4].map((i) => signMessageOf(f.account(i), registryDomain(), 'SlashVerifier', message)),
    )
    await call(9, 'slashVerifier', [
      message.verifier,
      message.amount,
      message.evidenceHash,
      packSignatures(sigs),
    ])
    expect((await getVerifier(3)).stake).toBe(VERIFIER_STAKE - MESH)
    expect(await read<boolean>('isActiveVerifier', [addr(3)])).toBe(false)
    expect(await balance(0)).toBe(treasury + MESH)

    await expect(slash(nodeId, 500n * MESH, 'node-evidence', [1, 2, 3])).rejects.toMatchObject({
      code: 'QUORUM_SIGNER_NOT_VERIFIER',
    })
    await slash(nodeId, 500n * MESH, 'node-evidence', [1, 2, 4])
    expect((await getNode(nodeId)).stake).toBe(1_500n * MESH)
    expect(await balance(0)).toBe(treasury + MESH + 500n * MESH)
  })

  it('no longer counts a verifier toward a quorum once it unbonds', async () => {
    const { nodeId } = await register(6, 2_000n * MESH)
    await requestVerifierUnbond(f.client(3), VERIFIER_STAKE)
    await expect(slash(nodeId, 500n * MESH, 'evidence', [1, 2, 3])).rejects.toMatchObject({
      code: 'QUORUM_SIGNER_NOT_VERIFIER',
    })
    expect((await getNode(nodeId)).stake).toBe(2_000n * MESH)
  })

  it('refuses a duplicate verifier and a verifier beyond the seat limit', async () => {
    await expect(
      registerVerifier(f.client(1), { peerId: toHex('again'), stake: VERIFIER_STAKE }),
    ).rejects.toMatchObject({ code: 'REGISTRY_VERIFIER_ALREADY_REGISTERED' })
    await expect(
      registerVerifier(f.client(9), { peerId: toHex('verifier-9'), stake: VERIFIER_STAKE - 1n }),
    ).rejects.toMatchObject({ code: 'REGISTRY_STAKE_BELOW_MINIMUM' })
    await govern('setVerifierLimits', [3, 5])
    await expect(
      registerVerifier(f.client(9), { peerId: toHex('verifier-9'), stake: VERIFIER_STAKE }),
    ).rejects.toMatchObject({ code: 'REGISTRY_VERIFIER_SET_FULL' })
    expect(await balance(9)).toBe(200_000n * MESH)
  })

  it('lets only governance (the timelock) change parameters, and only to valid values', async () => {
    // Not the deployer either: it handed every parameter to the timelock.
    await expect(call(0, 'setMinNodeStake', [MESH])).rejects.toMatchObject({ code: 'NOT_OWNER' })
    await expect(call(6, 'setMinNodeStake', [MESH])).rejects.toMatchObject({ code: 'NOT_OWNER' })
    await expect(call(1, 'setVerifierLimits', [1, 21])).rejects.toMatchObject({ code: 'NOT_OWNER' })
    await expect(call(6, 'setUnbondingPeriod', [0n])).rejects.toMatchObject({ code: 'NOT_OWNER' })
    await expect(call(6, 'setMinVerifierStake', [MESH])).rejects.toMatchObject({ code: 'NOT_OWNER' })
    expect(await read<string>('owner')).toBe(f.network.contracts.MeshTimelock)

    // An executed proposal with a bad value reverts with the registry's own error.
    await expect(govern('setVerifierLimits', [0, 21])).rejects.toMatchObject({ code: 'INVALID_PARAMETER' })
    await expect(govern('setVerifierLimits', [5, 4])).rejects.toMatchObject({ code: 'INVALID_PARAMETER' })
    await expect(govern('setMinNodeStake', [0n])).rejects.toMatchObject({ code: 'INVALID_PARAMETER' })
    await expect(govern('setMinVerifierStake', [0n])).rejects.toMatchObject({ code: 'INVALID_PARAMETER' })
    await expect(govern('setUnbondingPeriod', [365n * 24n * 3_600n + 1n])).rejects.toMatchObject({
      code: 'INVALID_PARAMETER',
    })
    expect(await read<number>('quorum')).toBe(3)
    expect(await read<bigint>('minNodeStake')).toBe(MIN_NODE_STAKE)
    expect(await read<bigint>('unbondingPeriod')).toBe(BigInt(UNBONDING))

    // A valid change that passed the vote takes effect.
    await govern('setMinNodeStake', [2_000n * MESH])
    await expect(register(6, 1_500n * MESH)).rejects.toMatchObject({ code: 'REGISTRY_STAKE_BELOW_MINIMUM' })
    await register(6, 2_000n * MESH)
  })
})
