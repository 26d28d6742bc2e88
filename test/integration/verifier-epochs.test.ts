import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { afterAll, describe, expect, it } from 'vitest'
import { registerNode, registerVerifier } from '../../src/chain/index.js'
import { systemClock } from '../../src/core/clock.js'
import { createLogger } from '../../src/core/logger.js'
import { createPeerSigner, createPeerVerifier, peerIdBytes } from '../../src/mesh/peer-key.js'
import { createWireCodec } from '../../src/mesh/wire-codec.js'
import { DEFAULT_REWARD_PARAMS } from '../../src/rewards/index.js'
import { bundleCid, checkBundle, settleBundle } from '../../src/verifier/bundle.js'
import { createEvmRootPoster, createEvmVerifierChain } from '../../src/verifier/chain-port.js'
import { EpochCloser } from '../../src/verifier/epoch-closer.js'
import { EPOCH_ATTESTATION, EPOCH_PROPOSAL } from '../../src/verifier/leader.js'
import { UPTIME_OBSERVATION } from '../../src/verifier/observation.js'
import { openVerifierStore, type VerifierStore } from '../../src/verifier/store.js'
import { VerifierAgent } from '../../src/verifier/verifier-agent.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'
import { LIVE_NET, LiveNodes, startMeshPort, tcpAddr, until } from '../helpers/live-node.js'

const EPOCH_S = 6
const logger = createLogger({ level: process.env.MESHWORK_TEST_LOG ?? 'silent' })

describe('verifiers close epochs on the embedded chain over real libp2p', () => {
  const nodes = new LiveNodes()
  const dir = mkdtempSync(join(tmpdir(), 'mw-verifier-epochs-'))
  const stops: (() => Promise<void> | void)[] = []
  let f: ChainFixture | undefined
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop()
    await nodes.stopAll()
    nodes.cleanUp()
    await f?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('3 verifiers (quorum 2) measure 2 nodes and post each epoch’s root once, which anyone recomputes from its bundle', async ({
    annotate,
  }) => {
    f = await startChainFixture({ quorum: 2, disputeWindow: 1, epochDuration: EPOCH_S })
    const fixture = f
    // A block a second, as a live chain has: epochs need seed blocks. (A block is stamped with the
    // wall clock, or a second after the one before when that is later: faster mining would make the
    // chain's time run ahead of the wall clock.)
    const miner = setInterval(
      () => void fixture.chain.provider.request({ method: 'evm_mine', params: [] }).catch(() => undefined),
      1_000,
    )
    stops.push(() => clearInterval(miner))

    // Two nodes, registered, running the node agent (which answers uptime challenges).
    const first = await nodes.start()
    const second = await nodes.start({ bootstrap: [tcpAddr(first.libp2p)] })
    for (const [i, node] of [first, second].entries()) {
      await f.fund(4 + i, 10_000n * MESH)
      await registerNode(f.client(4 + i), {
        peerId: peerIdBytes(node.peerId),
        services: 1,
        h3Cell: 1n,
        stake: 1_000n * MESH,
      })
    }
    // Three verifiers with their own peer keys, registered with stake.
    const keys: Ed25519PrivateKey[] = []
    for (const i of [1, 2, 3]) {
      const key = await generateKeyPair('Ed25519')
      keys.push(key)
      await f.fund(i, 200_000n * MESH)
      await registerVerifier(f.client(i), {
        peerId: peerIdBytes(createPeerSigner(key).peerId),
        stake: 100_000n * MESH,
      })
    }
    const stores: VerifierStore[] = []
    const network = f.network
    const net = LIVE_NET
    for (const [k, key] of keys.entries()) {
      const { port } = await startMeshPort(key, [tcpAddr(first.libp2p)])
      const store = openVerifierStore(join(dir, `verifier-${k}.db`))
      stores.push(store)
      const signer = createPeerSigner(key)
      const codec = createWireCodec({
        network: net,
        signer,
        clock: systemClock,
        types: [UPTIME_OBSERVATION, EPOCH_PROPOSAL, EPOCH_ATTESTATION],
        nextSeq: (type) => store.nextSeq(type),
      })
      const chain = createEvmVerifierChain(f.client(k + 1), { deployBlock: BigInt(network.deployBlock) })
      const schedule = { genesisTime: network.parameters.genesisTime, epochDuration: EPOCH_S }
      const common = { port, clock: systemClock, store, codec, verifier: createPeerVerifier(), logger }
      const agent = new VerifierAgent(
        { network: net, schedule, challengesPerEpoch: 3, challengeTimeoutMs: 1_000, pollMs: 250 },
        { ...common, chain },
      )
      const closer = new EpochCloser(
        {
          network: net,
          schedule,
          emission: {
            initialEmission: BigInt(network.parameters.initialEmission),
            halvingInterval: BigInt(network.parameters.halvingInterval),
          },
          params: DEFAULT_REWARD_PARAMS,
          graceMs: 500,
          leaderTimeoutMs: 8_000,
          tickMs: 250,
        },
        { ...common, chain, poster: createEvmRootPoster(f.client(k + 1)), plan: (e) => agent.planned(e) },
      )
      agent.start()
      closer.start()
      stops.push(async () => {
        await closer.stop()
        await agent.stop()
        await port.close()
        store.close()
      })
    }

    // The epochs that began while verifiers were still registering close with nothing to pay; the
    // first epoch to begin after the verifiers started is measured in full.
    const reader = createEvmVerifierChain(f.client(0), { deployBlock: BigInt(network.deployBlock) })
    // (Chain time: the dev chain runs ahead of the wall clock after the burst of setup blocks.)
    const measured =
      Math.floor(((await reader.head()).timestamp - network.parameters.genesisTime) / EPOCH_S) + 1
    const t0 = Date.now()
    let posted = await reader.postedRoots()
    await until(
      async () => {
        posted = await reader.postedRoots()
        return posted.has(measured)
      },
      90_000,
      500,
    )
    await annotate(`epochs 0 to ${measured} posted ${Date.now() - t0} ms after the verifiers started`)

    // Anyone recomputes the measured epoch's root from its bundle (taken here from a verifier's store).
    const root = posted.get(measured)
    const bytes = stores[0]?.bundle(bundleCid(root?.digest as string))?.bytes
    expect(bytes).toBeDefined()
    const checked = checkBundle(bytes as Uint8Array, {
      network: net,
      verifier: createPeerVerifier(),
      previousRoot: posted.get(measured - 1)?.root ?? null,
    })
    if (!checked.ok) throw new Error(checked.fault)
    const settled = settleBundle(checked.bundle)
    expect(settled.root).toBe(root?.root)
    // Every verifier observed both nodes answering every challenge.
    expect(checked.bundle.input.uptime).toHaveLength(6)
    expect(checked.bundle.input.uptime.every((o) => o.answered === o.challenges)).toBe(true)
    // Both always-on operators earn in every epoch the verifiers measured them.
    expect(
      settled.entries.find((e) => e.account.toLowerCase() === f?.account(4).address.toLowerCase())
        ?.cumulativeAmount,
    ).toBeGreaterThan(0n)
    expect(
      settled.entries.find((e) => e.account.toLowerCase() === f?.account(5).address.toLowerCase())
        ?.cumulativeAmount,
    ).toBeGreaterThan(0n)
    // One RootPosted per epoch: nobody posted twice.
    const events = await f.client(0).public.getContractEvents({
      address: network.contracts.EpochRewards,
      abi: (await import('../../src/chain/abi/index.js')).epochRewardsAbi,
      eventName: 'RootPosted',
      fromBlock: BigInt(network.deployBlock),
    })
    const epochs = events.map((e) => Number((e.args as { epoch: bigint }).epoch))
    expect(epochs).toEqual([...new Set(epochs)])
  }, 150_000)
})
