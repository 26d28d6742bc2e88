import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { latLngToCell } from 'h3-js'
import { Registry } from 'prom-client'
import { afterAll, describe, expect, it } from 'vitest'
import { createApiServer, createNetworkDataSource, HealthProber, JobLog } from '../../src/api/index.js'
import {
  castVote,
  claim,
  delegateVotes,
  encodeGovernableChanges,
  executeProposal,
  getEpochState,
  getGovernableValues,
  parseMakerChanges,
  propose,
  queueProposal,
  registerNode,
} from '../../src/chain/index.js'
import { systemClock } from '../../src/core/clock.js'
import { createLogger } from '../../src/core/logger.js'
import { createPeerSigner, createPeerVerifier, peerIdBytes } from '../../src/mesh/peer-key.js'
import { networkIdOf } from '../../src/mesh/wire-codec.js'
import { startOpsServer } from '../../src/node/ops-server.js'
import { bundleCid, checkBundle, settleBundle } from '../../src/verifier/bundle.js'
import { createEvmVerifierChain } from '../../src/verifier/chain-port.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'
import { startInProcessVerifiers } from '../helpers/in-process-verifiers.js'
import { LiveNodes, tcpAddr, until } from '../helpers/live-node.js'

const EPOCH_S = 6
const logger = createLogger({ level: process.env.MESHWORK_TEST_LOG ?? 'silent' })

describe('the HTTP API over the embedded chain, a live node and real verifiers', () => {
  const nodes = new LiveNodes()
  const dir = mkdtempSync(join(tmpdir(), 'mw-api-'))
  const stops: (() => Promise<unknown> | unknown)[] = []
  let f: ChainFixture | undefined
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop()
    await nodes.stopAll()
    nodes.cleanUp()
    await f?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('serves the network, the node with its score and why, posted epochs recomputed from bundles, and claims', async () => {
    f = await startChainFixture({ quorum: 1, disputeWindow: 1, epochDuration: EPOCH_S })
    const fixture = f
    const miner = setInterval(
      () => void fixture.chain.provider.request({ method: 'evm_mine', params: [] }).catch(() => undefined),
      1_000,
    )
    stops.push(() => clearInterval(miner))
    const net = networkIdOf(f.network)
    const cell = latLngToCell(52.52, 13.405, 7)
    const node = await nodes.start({ network: net, cell })
    await f.fund(4, 10_000n * MESH)
    await registerNode(f.client(4), {
      peerId: peerIdBytes(node.peerId),
      services: 1,
      h3Cell: BigInt(`0x${cell}`),
      stake: 1_000n * MESH,
    })
    const { verifiers, stop } = await startInProcessVerifiers(f, {
      accounts: [1],
      network: net,
      epochDuration: EPOCH_S,
      bootstrap: [tcpAddr(node.libp2p)],
      dir,
      logger,
    })
    stops.push(stop)
    const store = (verifiers[0] as (typeof verifiers)[number]).store

    // The node's health check, as its ops port serves it.
    const ops = await startOpsServer({
      listen: '127.0.0.1:0',
      registry: new Registry(),
      status: () => ({}),
      healthy: () => node.libp2p.status === 'started',
    })
    stops.push(() => ops.close())
    const health = new HealthProber(
      { intervalMs: 500 },
      {
        targets: () => new Map([[node.peerId, ops.url]]),
        clock: systemClock,
        logger,
      },
    )
    health.start()
    stops.push(() => health.stop())

    const chain = createEvmVerifierChain(f.client(0), { deployBlock: BigInt(f.network.deployBlock) })
    const source = createNetworkDataSource(
      {
        network: f.network,
        label: (id) => (id === node.peerId ? 'node-0 (Berlin)' : undefined),
        pollMs: 500,
      },
      {
        reader: f.client(0),
        chain,
        // The verifier's bundles, straight from its store (its ops port serves the same bytes).
        bundles: () => [
          {
            name: 'store',
            fetch: async (cid) => {
              const held = store.bundle(cid)
              if (held === undefined) throw new Error('not held')
              return held.bytes
            },
          },
        ],
        health,
        jobs: new JobLog(),
        verifier: createPeerVerifier(),
        clock: systemClock,
        logger,
      },
    )
    stops.push(() => source.close())
    const app = createApiServer({}, { source, clock: systemClock, logger })
    await app.listen({ host: '127.0.0.1', port: 0 })
    stops.push(() => app.close())
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
    const get = async (path: string) => {
      const res = await fetch(`${base}${path}`)
      // biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked field by field below
      return { status: res.status, body: (await res.json()) as Record<string, any> }
    }

    // Live: the first posted epoch arrives as a server-sent event.
    const events = await fetch(`${base}/api/events`)
    const reader = (events.body as ReadableStream<Uint8Array>).getReader()
    let text = ''
    const measured =
      Math.floor(((await chain.head()).timestamp - f.network.parameters.genesisTime) / EPOCH_S) + 1
    await until(
      async () => {
        const { value } = await reader.read()
        text += new TextDecoder().decode(value)
        return new RegExp(`event: epoch\\ndata: \\{"epoch":${measured},`).test(text)
      },
      90_000,
      0,
    )
    await reader.cancel()
    expect(text).toContain('event: network')

    const network = await get('/api/network')
    expect(network.status).toBe(200)
    expect(network.body).toMatchObject({
      chainId: 31337,
      network: net,
      nodes: 1,
      nodesOnline: 1,
      epochDuration: EPOCH_S,
    })
    expect(network.body.lastPostedEpoch).toBeGreaterThanOrEqual(measured)
    expect(network.body.verifiers).toHaveLength(1)

    const listed = await get('/api/nodes')
    expect(listed.body.nodes).toHaveLength(1)
    const view = listed.body.nodes[0]
    expect(view).toMatchObject({
      peerId: node.peerId,
      label: 'node-0 (Berlin)',
      services: ['compute'],
      h3Cell: cell,
      online: true,
    })
    expect(view.lat).toBeCloseTo(52.52, 0)
    expect(view.lon).toBeCloseTo(13.4, 0)

    // The epoch as the chain has it, recomputed from its bundle.
    const epoch = await get(`/api/epochs/${measured}`)
    expect(epoch.status).toBe(200)
    expect(epoch.body.matches).toBe(true)
    const posted = (await chain.postedRoots()).get(measured)
    expect(epoch.body.epoch.root).toBe(posted?.root)
    expect(epoch.body.epoch.cid).toBe(bundleCid(posted?.digest as string))
    expect(epoch.body.nodes[0]).toMatchObject({ peerId: node.peerId, eligible: true })
    expect(BigInt(epoch.body.nodes[0].reward)).toBeGreaterThan(0n)

    // The node page: the score and why, per verifier.
    const detail = await get(`/api/nodes/${node.peerId}`)
    const mine = detail.body.epochs.find((e: { epoch: number }) => e.epoch === measured)
    expect(mine.scorePpm).toBe(1_000_000)
    expect(mine.explanation.join(' ')).toMatch(
      /Answered (all \d+ challenges|the one challenge) from verifier/,
    )
    expect(BigInt(detail.body.estimate.nextEpoch)).toBeGreaterThan(0n)

    // A claim shows in the totals and in the epoch whose root was the newest when it was made.
    const latest = network.body.lastPostedEpoch as number
    await until(
      async () => (await getEpochState(fixture.client(0))).claimableEpoch >= BigInt(measured),
      30_000,
      500,
    )
    const claimable = Number((await getEpochState(fixture.client(0))).claimableEpoch)
    const held = store.bundle(bundleCid((await chain.postedRoots()).get(claimable)?.digest as string))
    const checked = checkBundle(held?.bytes as Uint8Array, {
      network: net,
      verifier: createPeerVerifier(),
      previousRoot: (await chain.postedRoots()).get(claimable - 1)?.root ?? null,
    })
    if (!checked.ok) throw new Error(checked.fault)
    const operator = f.account(4).address.toLowerCase() as `0x${string}`
    const leaf = settleBundle(checked.bundle).tree.proof(operator)
    expect(leaf).toBeDefined()
    await claim(f.client(0), {
      account: operator,
      cumulativeAmount: leaf?.cumulativeAmount as bigint,
      proof: leaf?.proof ?? [],
    })
    await until(async () => BigInt((await get('/api/network')).body.totalClaimed) > 0n, 10_000, 200)
    const epochs = await get('/api/epochs')
    const claimedSum = epochs.body.epochs.reduce(
      (s: bigint, e: { claimed: string }) => s + BigInt(e.claimed),
      0n,
    )
    expect(claimedSum).toBe(leaf?.cumulativeAmount)
    expect(latest).toBeGreaterThanOrEqual(measured)

    // Bad input over the socket too.
    expect((await get('/api/epochs/x')).status).toBe(400)
    expect((await get('/api/epochs/999999')).body.error.code).toBe('API_EPOCH_NOT_FOUND')

    // A stopped node goes offline.
    await node.stop()
    await until(async () => (await get('/api/network')).body.nodesOnline === 0, 10_000, 200)
  }, 150_000)
})

describe('the HTTP API on governance, over the embedded chain', () => {
  let f: ChainFixture | undefined
  const stops: (() => Promise<unknown> | unknown)[] = []
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop()
    await f?.stop()
  })

  it('shows a real proposal through its states with its votes and diff, and the new parameter version with the epoch it applies from', async () => {
    f = await startChainFixture({ epochDuration: EPOCH_S })
    const fixture = f
    const chain = createEvmVerifierChain(f.client(0), { deployBlock: BigInt(f.network.deployBlock) })
    const source = createNetworkDataSource(
      { network: f.network },
      {
        reader: f.client(0),
        chain,
        bundles: () => [],
        health: { health: () => ({ online: false, lastSeen: null }), onChange: () => () => undefined },
        jobs: new JobLog(),
        verifier: createPeerVerifier(),
        clock: systemClock,
        logger,
      },
    )
    stops.push(() => source.close())
    const app = createApiServer({}, { source, clock: systemClock, logger })
    stops.push(() => app.close())
    // biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked field by field below
    const get = async (url: string): Promise<{ status: number; body: Record<string, any> }> => {
      const res = await app.inject(url)
      return { status: res.statusCode, body: res.json() }
    }
    expect((await get('/api/network')).body.features).toContain('governance')
    const before = (await get('/api/governance')).body
    expect(before.proposals).toEqual([])
    expect(before.version).toBe(1)
    expect(before.history.map((v: { version: number }) => v.version)).toEqual([1])
    expect(before.params.find((p: { key: string }) => p.key === 'weights.storage')).toMatchObject({
      value: '2000',
      display: '2000 bps',
    })

    // The treasury (dev account 0) delegates to itself and proposes: storage 25%, uptime 35%.
    const deployer = f.client(0)
    await delegateVotes(deployer, f.account(0).address)
    await f.advance(1)
    // And it approves a hardware maker in the same proposal.
    const maker = createPeerSigner(await generateKeyPair('Ed25519')).peerId
    const { calls } = encodeGovernableChanges(
      await getGovernableValues(deployer),
      new Map([
        ['weights.uptime', 3_500n],
        ['weights.storage', 2_500n],
      ]),
      f.network.contracts,
      parseMakerChanges([maker], []),
    )
    const proposal = { calls, description: 'Storage gets 25%' }
    const { proposalId } = await propose(deployer, proposal)
    const id = proposalId.toString()
    const pending = (await get('/api/governance')).body.proposals
    expect(pending).toHaveLength(1)
    expect(pending[0]).toMatchObject({
      id,
      state: 'pending',
      description: 'Storage gets 25%',
      proposer: f.account(0).address,
      votes: { for: '0', against: '0', abstain: '0' },
      calls: [
        { contract: 'NetworkParams', functionName: 'setParams' },
        { contract: 'NetworkParams', functionName: 'setMakers' },
      ],
    })
    expect(pending[0].makers).toMatch(new RegExp(`^approves maker ${maker}`))
    // The diff: only what changes, from the version it replaces.
    expect(pending[0].changes).toEqual([
      { key: 'weights.uptime', from: '4000', to: '3500', fromDisplay: '4000 bps', toDisplay: '3500 bps' },
      { key: 'weights.storage', from: '2000', to: '2500', fromDisplay: '2000 bps', toDisplay: '2500 bps' },
    ])

    const p = f.network.parameters
    await f.advance(p.votingDelay + 1)
    await castVote(deployer, { proposalId, support: 'for' })
    const active = (await get(`/api/governance/proposals/${id}`)).body
    expect(active.state).toBe('active')
    expect(BigInt(active.votes.for)).toBeGreaterThan(0n)
    expect(BigInt(active.quorum)).toBeGreaterThan(0n)
    expect(active.summary).toMatch(/^active: voting until/)

    await f.advance(p.votingPeriod + 1)
    expect((await get(`/api/governance/proposals/${id}`)).body.state).toBe('succeeded')
    await queueProposal(deployer, proposal)
    expect((await get(`/api/governance/proposals/${id}`)).body.state).toBe('queued')
    await f.advance(p.timelockDelay + 1)
    await executeProposal(deployer, proposal)

    // Executed: a second version, in force from the next epoch, and its diff against the first.
    const after = (await get('/api/governance')).body
    expect(after.proposals[0]).toMatchObject({ id, state: 'executed' })
    expect(after.proposals[0].changes.map((c: { key: string }) => c.key)).toEqual([
      'weights.uptime',
      'weights.storage',
    ])
    // Two versions: the new set, then the new makers with that set (both from the next epoch).
    const v2 = after.history[1]
    expect(v2).toMatchObject({ version: 2, fromEpoch: after.epoch + 1, makers: [], makersChange: null })
    expect(v2.changes).toEqual(pending[0].changes)
    const v3 = after.history[0]
    expect(v3).toMatchObject({ version: 3, applied: true, fromEpoch: after.epoch + 1, makers: [maker] })
    expect(v3.makersChange).toMatch(new RegExp(`^approves maker ${maker}`))
    expect(after.version).toBe(1)
    expect(after.makers).toEqual([])
    // From that epoch on it is the set in force.
    await fixture.advance(EPOCH_S)
    const next = (await get('/api/governance')).body
    expect(next).toMatchObject({ version: 3, fromEpoch: v3.fromEpoch, makers: [maker] })
    expect(next.params.find((x: { key: string }) => x.key === 'weights.storage').value).toBe('2500')

    expect((await get('/api/governance/proposals/12345')).body.error.code).toBe('API_PROPOSAL_NOT_FOUND')
    expect((await get('/api/governance/proposals/x')).status).toBe(400)
  }, 60_000)
})
