import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { registerVerifier } from '../../src/chain/index.js'
import { systemClock } from '../../src/core/clock.js'
import type { Logger } from '../../src/core/logger.js'
import type { MeshLibp2p } from '../../src/mesh/create-libp2p.js'
import { createPeerSigner, createPeerVerifier, peerIdBytes } from '../../src/mesh/peer-key.js'
import { createWireCodec } from '../../src/mesh/wire-codec.js'
import { SENSOR_READING } from '../../src/sensors/reading.js'
import { BANDWIDTH_RECEIPT, STORAGE_RECEIPT } from '../../src/storage/protocol.js'
import { createEvmRootPoster, createEvmVerifierChain } from '../../src/verifier/chain-port.js'
import { EpochCloser } from '../../src/verifier/epoch-closer.js'
import { EPOCH_ATTESTATION, EPOCH_PROPOSAL } from '../../src/verifier/leader.js'
import {
  BANDWIDTH_OBSERVATION,
  SENSOR_OBSERVATION,
  STORAGE_OBSERVATION,
  UPTIME_OBSERVATION,
} from '../../src/verifier/observation.js'
import { StorageRepairer } from '../../src/verifier/storage-repairer.js'
import { openVerifierStore, type VerifierStore } from '../../src/verifier/store.js'
import { VerifierAgent } from '../../src/verifier/verifier-agent.js'
import { type ChainFixture, MESH } from './chain-fixture.js'
import { startMeshPort } from './live-node.js'

/** One verifier running in the test's process: agent and closer over real libp2p and the chain. */
export interface InProcessVerifier {
  peerId: string
  libp2p: MeshLibp2p
  store: VerifierStore
  closer: EpochCloser
  agent: VerifierAgent
}

/**
 * Registers dev accounts `accounts` as verifiers (each funded with 200,000 MESH and staking
 * 100,000), each with a fresh peer key, and starts for each a verifier agent and an epoch closer on
 * real libp2p (bootstrapped from `bootstrap`) and the fixture's chain, with short timings (3
 * uptime challenges an epoch, 2 chunk challenges per stored shard, half a second of grace, an 8 s
 * leader timeout). Stores are SQLite files in
 * `dir`. `stop` stops them all, in reverse.
 */
export async function startInProcessVerifiers(
  f: ChainFixture,
  init: {
    accounts: readonly number[]
    network: string
    epochDuration: number
    bootstrap: string[]
    dir: string
    logger: Logger
    /** Where each verifier is (for proof of location), in `accounts` order; none: not said. */
    places?: readonly { lat: number; lon: number }[]
  },
): Promise<{ verifiers: InProcessVerifier[]; stop(): Promise<void> }> {
  const keys = []
  for (const i of init.accounts) {
    const key = await generateKeyPair('Ed25519')
    keys.push(key)
    await f.fund(i, 200_000n * MESH)
    await registerVerifier(f.client(i), {
      peerId: peerIdBytes(createPeerSigner(key).peerId),
      stake: 100_000n * MESH,
    })
  }
  const verifiers: InProcessVerifier[] = []
  const stops: (() => Promise<void>)[] = []
  const { network: net, logger } = init
  const p = f.network.parameters
  for (const [k, key] of keys.entries()) {
    const account = init.accounts[k] as number
    const { libp2p, port } = await startMeshPort(key, init.bootstrap)
    const store = openVerifierStore(join(init.dir, `verifier-${account}.db`))
    const codec = createWireCodec({
      network: net,
      signer: createPeerSigner(key),
      clock: systemClock,
      types: [
        UPTIME_OBSERVATION,
        STORAGE_OBSERVATION,
        STORAGE_RECEIPT,
        BANDWIDTH_OBSERVATION,
        BANDWIDTH_RECEIPT,
        SENSOR_READING,
        SENSOR_OBSERVATION,
        EPOCH_PROPOSAL,
        EPOCH_ATTESTATION,
      ],
      nextSeq: (type) => store.nextSeq(type),
    })
    const chain = createEvmVerifierChain(f.client(account), { deployBlock: BigInt(f.network.deployBlock) })
    const schedule = { genesisTime: p.genesisTime, epochDuration: init.epochDuration }
    const common = { port, clock: systemClock, store, codec, verifier: createPeerVerifier(), logger }
    const repairer = new StorageRepairer({ port, codec, store, logger })
    const agent = new VerifierAgent(
      {
        network: net,
        schedule,
        challengesPerEpoch: 3,
        challengeTimeoutMs: 1_000,
        storageChallengesPerShard: 2,
        storageTimeoutMs: 1_500,
        pollMs: 250,
        ...(init.places?.[k] === undefined ? {} : { place: init.places[k] }),
      },
      { ...common, chain, repairer },
    )
    const closer = new EpochCloser(
      {
        network: net,
        schedule,
        emission: { initialEmission: BigInt(p.initialEmission), halvingInterval: BigInt(p.halvingInterval) },
        graceMs: 500,
        leaderTimeoutMs: 8_000,
        tickMs: 250,
      },
      { ...common, chain, poster: createEvmRootPoster(f.client(account)), plan: (e) => agent.planned(e) },
    )
    agent.start()
    closer.start()
    verifiers.push({ peerId: port.peerId, libp2p, store, closer, agent })
    stops.push(async () => {
      await closer.stop()
      await agent.stop()
      await port.close()
      store.close()
    })
  }
  return {
    verifiers,
    async stop() {
      for (const stop of stops.splice(0).reverse()) await stop()
    },
  }
}
