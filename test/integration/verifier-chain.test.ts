import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { sha256, toHex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  getNetworkParamsHistory,
  INITIAL_NETWORK_PARAMS,
  networkParamsAbi,
  postRoot,
  registerNode,
  registerVerifier,
  revokeRoot,
  signPostRoot,
  signRevokeRoot,
} from '../../src/chain/index.js'
import { peerIdBytes } from '../../src/mesh/peer-key.js'
import { createEvmVerifierChain, type VerifierChain } from '../../src/verifier/chain-port.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'
import { LIVE_CELL } from '../helpers/live-node.js'

const newPeerId = async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()

describe('the verifiers’ chain port on the embedded chain', () => {
  let f: ChainFixture
  let chain: VerifierChain
  const peers = new Map<number, string>()

  beforeAll(async () => {
    f = await startChainFixture({ quorum: 2, disputeWindow: 10 })
    chain = createEvmVerifierChain(f.client(0), { deployBlock: BigInt(f.network.deployBlock) })
    for (const i of [1, 2, 3, 4, 5]) {
      peers.set(i, await newPeerId())
      await f.fund(i, 200_000n * MESH)
    }
    for (const i of [1, 2]) {
      await registerVerifier(f.client(i), {
        peerId: toHex(peerIdBytes(peers.get(i) as string)),
        stake: 100_000n * MESH,
      })
    }
    for (const i of [3, 4]) {
      await registerNode(f.client(i), {
        peerId: peerIdBytes(peers.get(i) as string),
        services: 1,
        h3Cell: BigInt(`0x${LIVE_CELL}`),
        stake: 1_000n * MESH,
      })
    }
  }, 60_000)
  afterAll(() => f.stop())

  it('reads the registry as of a block: nodes registered later are not in an earlier snapshot', async () => {
    const before = (await chain.head()).number
    await registerNode(f.client(5), {
      peerId: peerIdBytes(peers.get(5) as string),
      services: 1,
      h3Cell: BigInt(`0x${LIVE_CELL}`),
      stake: 1_000n * MESH,
    })
    const earlier = await chain.registry(before)
    expect(earlier.nodes.map((n) => n.peerId).sort()).toEqual([peers.get(3), peers.get(4)].sort())
    expect(earlier.nodes.find((n) => n.peerId === peers.get(3))).toMatchObject({
      operator: f.account(3).address,
      stake: 1_000n * MESH,
    })
    expect(earlier.verifiers.map((v) => [v.peerId, v.address]).sort()).toEqual(
      [
        [peers.get(1), f.account(1).address],
        [peers.get(2), f.account(2).address],
      ].sort(),
    )
    const now = await chain.registry((await chain.head()).number)
    expect(now.nodes).toHaveLength(3)
  })

  it('finds an epoch’s seed block: the first at or after a time, none yet for the future', async () => {
    const head = await chain.head()
    const first = await chain.firstBlockAtOrAfter(head.timestamp)
    expect(first?.timestamp).toBeGreaterThanOrEqual(head.timestamp)
    expect(first?.number).toBeLessThanOrEqual(head.number)
    // (The search starts at the deploy block: earlier blocks are no epoch's seed.)
    if (first && first.number > BigInt(f.network.deployBlock)) {
      const previous = await f.client(0).public.getBlock({ blockNumber: first.number - 1n })
      expect(Number(previous.timestamp)).toBeLessThan(head.timestamp)
    }
    expect(await chain.firstBlockAtOrAfter(head.timestamp + 3_600)).toBeUndefined()
  })

  it('lists posted roots with their bundle digest', async () => {
    const end = f.network.parameters.genesisTime + f.network.parameters.epochDuration
    const now = await f.now()
    if (now < end) await f.advance(end - now)
    const message = {
      epoch: 0n,
      root: sha256(toHex('root')),
      bundleDigest: sha256(toHex('bundle')),
      totalCumulative: 5n,
      revocations: 0,
    }
    const signatures = await Promise.all([1, 2].map((i) => signPostRoot(f.client(0), f.account(i), message)))
    await postRoot(f.client(0), { ...message, signatures })
    const roots = await chain.postedRoots()
    expect(roots.get(0)).toMatchObject({
      root: message.root,
      digest: message.bundleDigest,
      totalCumulative: 5n,
    })

    // Revoked inside its dispute window: gone from the list (read from the blocks not scanned yet).
    const fixture = f
    const revoke = { epoch: 0n, root: message.root, revocations: 0 }
    const revokers = await Promise.all(
      [1, 2].map((i) => signRevokeRoot(fixture.client(0), fixture.account(i), revoke)),
    )
    await revokeRoot(fixture.client(0), { epoch: 0n, root: message.root, signatures: revokers })
    expect((await chain.postedRoots()).has(0)).toBe(false)
  })

  it('reads each epoch’s reward parameters by epoch: a change applies from the epoch after it executes, earlier epochs keep theirs', async () => {
    const { genesisTime, epochDuration } = f.network.parameters
    const epochNow = async () => Math.floor(((await f.now()) - genesisTime) / epochDuration)
    const before = await epochNow()
    // A fresh port, so nothing read before the change is cached by it.
    const port = createEvmVerifierChain(f.client(0), { deployBlock: BigInt(f.network.deployBlock) })
    expect(await port.paramsAt(before)).toMatchObject({ version: 1, uptime: { thresholdPpm: 250_000 } })
    // An epoch that has not begun yet may still change: its answer is not kept.
    expect((await port.paramsAt(before + 1_000)).version).toBe(1)

    const raised = { ...INITIAL_NETWORK_PARAMS, uptimeThresholdPpm: 900_000 }
    await f.govern(
      [
        {
          address: f.network.contracts.NetworkParams,
          abi: networkParamsAbi,
          functionName: 'setParams',
          args: [1, raised],
        },
      ],
      'raise the uptime threshold',
    )
    const executedIn = await epochNow()
    const effective = Number((await getNetworkParamsHistory(f.client(0)))[1]?.fromEpoch)
    expect(effective).toBe(executedIn + 1)

    // The epoch the change executed in, and every one before, keep version 1; from the next, 2.
    for (const epoch of [before, executedIn])
      expect(await port.paramsAt(epoch)).toMatchObject({ version: 1, uptime: { thresholdPpm: 250_000 } })
    expect(await port.paramsAt(effective)).toMatchObject({ version: 2, uptime: { thresholdPpm: 900_000 } })
    expect((await port.paramsAt(before + 1_000)).version).toBe(2)
    // A verifier that never read anything before the change reads the same.
    expect((await chain.paramsAt(before)).version).toBe(1)
    expect((await chain.paramsAt(effective)).version).toBe(2)
  })
})
