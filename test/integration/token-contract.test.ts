import { parseSignature, toHex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  deployContracts,
  epochRewardsAbi,
  epochRewardsBytecode,
  getTokenBalance,
  getVerifier,
  meshTokenAbi,
  readContract,
  registerVerifier,
  sendContractTx,
  signSlashVerifier,
  slashVerifier,
  toChainError,
  transferTokens,
} from '../../src/chain/index.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'

describe('MeshToken on the embedded chain', () => {
  let f: ChainFixture
  beforeAll(async () => {
    f = await startChainFixture({ quorum: 2 })
  })
  afterAll(() => f.stop())

  const token = <T>(functionName: string, args: readonly unknown[] = []) =>
    readContract<T>(f.client(0), {
      address: f.network.contracts.MeshToken,
      abi: meshTokenAbi,
      functionName,
      args,
    })

  it('starts with the genesis allocation at the treasury and EpochRewards as its only minter', async () => {
    expect(await token<bigint>('totalSupply')).toBe(400_000_000n * MESH)
    expect(await getTokenBalance(f.client(0), f.account(0).address)).toBe(400_000_000n * MESH)
    expect(await token<string>('minter')).toBe(f.network.contracts.EpochRewards)
    for (const fn of ['mint', 'burn'] as const) {
      const args = fn === 'mint' ? [f.account(1).address, 1n] : [1n]
      await expect(
        sendContractTx(f.client(0), {
          address: f.network.contracts.MeshToken,
          abi: meshTokenAbi,
          functionName: fn,
          args,
        }),
      ).rejects.toMatchObject({ code: 'TOKEN_NOT_MINTER' })
    }
  })

  it('lets a holder approve by EIP-2612 permit and delegate votes', async () => {
    const owner = f.account(1)
    await transferTokens(f.client(0), owner.address, 500n * MESH)
    const deadline = BigInt((await f.now()) + 3_600)
    const nonce = await token<bigint>('nonces', [owner.address])
    const signature = await owner.signTypedData({
      domain: {
        name: 'Meshwork',
        version: '1',
        chainId: f.chain.chainId,
        verifyingContract: f.network.contracts.MeshToken,
      },
      types: {
        Permit: [
          { name: 'owner', type: 'address' },
          { name: 'spender', type: 'address' },
          { name: 'value', type: 'uint256' },
          { name: 'nonce', type: 'uint256' },
          { name: 'deadline', type: 'uint256' },
        ],
      },
      primaryType: 'Permit',
      message: { owner: owner.address, spender: f.account(2).address, value: 200n * MESH, nonce, deadline },
    })
    const { r, s, v } = parseSignature(signature)
    // Anyone may submit the permit; the spender then moves the tokens.
    await sendContractTx(f.client(3), {
      address: f.network.contracts.MeshToken,
      abi: meshTokenAbi,
      functionName: 'permit',
      args: [owner.address, f.account(2).address, 200n * MESH, deadline, Number(v), r, s],
    })
    expect(await token<bigint>('allowance', [owner.address, f.account(2).address])).toBe(200n * MESH)

    await sendContractTx(f.client(1), {
      address: f.network.contracts.MeshToken,
      abi: meshTokenAbi,
      functionName: 'delegate',
      args: [owner.address],
    })
    expect(await token<bigint>('getVotes', [owner.address])).toBe(500n * MESH)
  })

  it('refuses an emission schedule that would not fit under the max supply, before and on chain', async () => {
    const deployer = f.client(0)
    // 700 million over one halving period, 1.4 billion in all: more than the 600 million unminted.
    const tooMuch = 700_000_000n * MESH
    const parameters = { ...f.network.parameters, initialEmission: tooMuch.toString(), halvingInterval: 1 }
    await expect(
      deployContracts(deployer, { name: 'too-much', rpcUrl: 'http://127.0.0.1:8545', parameters }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('initialEmission') })
    // The contract refuses it too, for anyone deploying without our tools.
    const p = f.network.parameters
    await expect(
      deployer.wallet
        .deployContract({
          abi: epochRewardsAbi,
          bytecode: epochRewardsBytecode,
          args: [
            f.network.contracts.MeshToken,
            f.network.contracts.NodeRegistry,
            deployer.wallet.account.address,
            BigInt(p.genesisTime),
            BigInt(p.epochDuration),
            tooMuch,
            1n,
            p.disputeWindow,
          ],
        })
        .catch((err: unknown) => {
          throw toChainError(err, 'deploy EpochRewards')
        }),
    ).rejects.toMatchObject({ code: 'INVALID_PARAMETER' })
  })

  it('frees a verifier seat when slashing takes all of its stake', async () => {
    for (const i of [4, 5, 6]) {
      await transferTokens(f.client(0), f.account(i).address, 100_000n * MESH)
      await registerVerifier(f.client(i), { peerId: toHex(`v-${i}`), stake: 100_000n * MESH })
    }
    const message = {
      verifier: f.account(6).address,
      amount: 100_000n * MESH,
      evidenceHash: toHex('signed a wrong root', { size: 32 }),
    }
    // The accused cannot make up the quorum for itself.
    const withAccused = await Promise.all(
      [4, 6].map((i) => signSlashVerifier(f.client(0), f.account(i), message)),
    )
    await expect(slashVerifier(f.client(9), { ...message, signatures: withAccused })).rejects.toMatchObject({
      code: 'QUORUM_SIGNER_ACCUSED',
    })
    const signatures = await Promise.all(
      [4, 5].map((i) => signSlashVerifier(f.client(0), f.account(i), message)),
    )
    const treasury = await getTokenBalance(f.client(0), f.account(0).address)
    await slashVerifier(f.client(9), { ...message, signatures })
    expect(await getTokenBalance(f.client(0), f.account(0).address)).toBe(treasury + 100_000n * MESH)
    expect(await getVerifier(f.client(0), f.account(6).address)).toMatchObject({
      registeredAt: 0n,
      active: false,
    })
  })
})
