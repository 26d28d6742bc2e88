import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, describe, expect, it } from 'vitest'
import { epochRewardsAbi, registerNode, registerVerifier } from '../../src/chain/index.js'
import { systemClock } from '../../src/core/clock.js'
import { mulberry32 } from '../../src/core/prng.js'
import { createPeerSigner, createPeerVerifier, peerIdBytes } from '../../src/mesh/peer-key.js'
import { createWireCodec, networkIdOf, type SignedEnvelope } from '../../src/mesh/wire-codec.js'
import { UPTIME_PROTOCOL } from '../../src/node/uptime.js'
import {
  AccountAmounts,
  addPayouts,
  buildCumulativeTree,
  type CumulativeEntry,
  DEFAULT_REWARD_PARAMS,
  emissionOf,
} from '../../src/rewards/index.js'
import { auditEpoch, httpBundleSource } from '../../src/verifier/audit.js'
import { buildBundle, checkBundle, settleBundle } from '../../src/verifier/bundle.js'
import { createEvmVerifierChain } from '../../src/verifier/chain-port.js'
import { observationTopic } from '../../src/verifier/challenger.js'
import { epochTopic } from '../../src/verifier/epoch-closer.js'
import { attemptAt, EPOCH_ATTESTATION, EPOCH_PROPOSAL, leaderOf } from '../../src/verifier/leader.js'
import { UPTIME_OBSERVATION, type UptimeObservationBody } from '../../src/verifier/observation.js'
import { openVerifierStore } from '../../src/verifier/store.js'
import { BUNDLE_PROTOCOL } from '../../src/verifier/verifier-agent.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'
import { type CliProcess, runCli, startCli } from '../helpers/cli.js'
import { LIVE_CELL, LiveNodes, startMeshPort, tcpAddr, until } from '../helpers/live-node.js'

/**
 * Faults and attacks on the embedded chain with real libp2p on loopback: 3 honest verifiers (quorum
 * 2) run as `meshwork verifier start` processes; 6 nodes: two always on, one that goes offline
 * halfway through an epoch, one never online, one that answers with another node's signature and one
 * that replays an old answer; a fourth registered verifier proposes roots from tampered bundles when
 * it leads; one honest verifier is SIGKILLed at random moments and restarted, then stopped for an
 * epoch, then restarted to catch up.
 */

const EPOCH_S = 8
const GRACE_MS = 500
const LEADER_TIMEOUT_S = 5
const KILLS = 20
const VERIFIER_ENV = {
  MESHWORK_VERIFIER__CHALLENGES_PER_EPOCH: '10',
  MESHWORK_VERIFIER__CHALLENGE_TIMEOUT_MS: '1500',
  MESHWORK_VERIFIER__GRACE_SECONDS: String(GRACE_MS / 1000),
  MESHWORK_VERIFIER__LEADER_TIMEOUT_SECONDS: String(LEADER_TIMEOUT_S),
  MESHWORK_VERIFIER__POLL_MS: '400',
}

interface RunningVerifier {
  dir: string
  cli: CliProcess
  ops: string
}

describe('verifier faults and attacks', () => {
  const nodes = new LiveNodes()
  const dir = mkdtempSync(join(tmpdir(), 'mw-verifier-faults-'))
  const stops: (() => Promise<unknown> | unknown)[] = []
  let f: ChainFixture | undefined
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop()
    await nodes.stopAll()
    nodes.cleanUp()
    await f?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('roots follow measured uptime and survive a flapping verifier, a stopped one and a tampering leader', async ({
    annotate,
    onTestFailed,
  }) => {
    f = await startChainFixture({ quorum: 2, disputeWindow: 1, epochDuration: EPOCH_S }, { port: 0 })
    const fixture = f
    const miner = setInterval(
      () => void fixture.chain.provider.request({ method: 'evm_mine', params: [] }).catch(() => undefined),
      1_000,
    )
    stops.push(() => clearInterval(miner))
    const net = networkIdOf(f.network)
    const reader = createEvmVerifierChain(f.client(0), { deployBlock: BigInt(f.network.deployBlock) })

    // ─── Nodes: operators are dev accounts 4 to 9 ───────────────────────────────────────────────
    const always = await nodes.start({ network: net })
    const bootstrap = [tcpAddr(always.libp2p)]
    const also = await nodes.start({ network: net, bootstrap })
    const half = await nodes.start({ network: net, bootstrap })
    const offlineKey = await generateKeyPair('Ed25519')
    // Answers every challenge with the always-on node's answer to the same challenge (its signature
    // binds the other peer id), and one that replays the first answer it got forever.
    const forwarder = await startMeshPort(await generateKeyPair('Ed25519'), bootstrap)
    const replayer = await startMeshPort(await generateKeyPair('Ed25519'), bootstrap)
    for (const hostile of [forwarder, replayer]) nodes.track({ stop: () => hostile.port.close() })
    let replay: Uint8Array | undefined
    forwarder.port.handle(UPTIME_PROTOCOL, (request) =>
      forwarder.port.request(always.peerId, UPTIME_PROTOCOL, request, { timeoutMs: 1_000 }),
    )
    replayer.port.handle(UPTIME_PROTOCOL, async (request) => {
      replay ??= await replayer.port.request(always.peerId, UPTIME_PROTOCOL, request, { timeoutMs: 1_000 })
      return replay
    })
    const peers = {
      always: always.peerId,
      also: also.peerId,
      half: half.peerId,
      offline: createPeerSigner(offlineKey).peerId,
      forwarder: forwarder.libp2p.peerId.toString(),
      replayer: replayer.libp2p.peerId.toString(),
    }
    const operators: Record<keyof typeof peers, `0x${string}`> = {} as never
    for (const [i, [name, peerId]] of Object.entries(peers).entries()) {
      await f.fund(4 + i, 10_000n * MESH)
      await registerNode(f.client(4 + i), {
        peerId: peerIdBytes(peerId),
        services: 1,
        h3Cell: BigInt(`0x${LIVE_CELL}`),
        stake: 1_000n * MESH,
      })
      operators[name as keyof typeof peers] = f.account(4 + i).address.toLowerCase() as `0x${string}`
    }

    // ─── Three honest verifiers, as processes of the real CLI ──────────────────────────────────
    const networkPath = join(dir, 'network.json')
    writeFileSync(networkPath, JSON.stringify({ ...f.network, bootstrap }))
    const dirs = [0, 1, 2].map((i) => join(dir, `verifier-${i}`))
    for (const d of dirs) {
      const init = await runCli([
        'verifier',
        'init',
        '--dir',
        d,
        '--network',
        networkPath,
        '--listen',
        '/ip4/127.0.0.1/tcp/0',
        '--api-listen',
        '127.0.0.1:0',
      ])
      expect(init.code, init.stderr).toBe(0)
      const reg = await runCli(['verifier', 'register', '--dir', d, '--stake', '100000', '--fund'])
      expect(reg.code, reg.stderr).toBe(0)
    }
    // Every process each verifier directory ran, for its logs.
    const runs = new Map<string, CliProcess[]>()
    const spawnVerifier = (d: string): CliProcess => {
      const cli = startCli(['verifier', 'start', '--dir', d, '--verbose'], { env: VERIFIER_ENV })
      runs.set(d, [...(runs.get(d) ?? []), cli])
      return cli
    }
    const ready = async (d: string, cli: CliProcess): Promise<RunningVerifier> => {
      const [, ops] = await cli.waitFor(/metrics\s+(http:\/\/\S+)\/metrics/, 30_000)
      return { dir: d, cli, ops: ops as string }
    }
    const start = (d: string) => ready(d, spawnVerifier(d))
    // On failure, what each verifier did about epochs (CI keeps only the test's output).
    onTestFailed(() => {
      const closing = /proposing|posted a root|root not posted|refusing|could not|closer|attest/
      for (const [d, clis] of runs) {
        const lines = clis.flatMap((cli) => cli.output().split('\n')).filter((l) => closing.test(l))
        process.stderr.write(`── ${d}: last epoch lines ──\n${lines.slice(-60).join('\n')}\n`)
      }
    })
    const running = await Promise.all(dirs.map(start))
    // Every process started, whatever happened to the test midway.
    stops.push(() => Promise.all([...runs.values()].flat().map((cli) => cli.stop('SIGTERM', 10_000))))
    const status = async (v: RunningVerifier) =>
      (await (await fetch(`${v.ops}/status`)).json()) as {
        lastPostedEpoch: number | null
        proposalsRefused: Record<string, number>
      }

    // ─── A fourth verifier that tampers: when it leads, it proposes a bundle whose carried table ──
    // pays its operator 1,000 MESH more than the posted root holds.
    const attackerKey = await generateKeyPair('Ed25519')
    const attacker = await startMeshPort(attackerKey, bootstrap)
    nodes.track({ stop: () => attacker.port.close() })
    await f.fund(10, 200_000n * MESH)
    await registerVerifier(f.client(10), {
      peerId: peerIdBytes(attacker.libp2p.peerId.toString()),
      stake: 100_000n * MESH,
    })
    const attackerAddress = f.account(10).address.toLowerCase() as `0x${string}`
    let seq = 0
    const codec = createWireCodec({
      network: net,
      signer: createPeerSigner(attackerKey),
      clock: systemClock,
      types: [UPTIME_OBSERVATION, EPOCH_PROPOSAL, EPOCH_ATTESTATION],
      nextSeq: () => ++seq,
    })
    const heard = new Map<number, SignedEnvelope<UptimeObservationBody>[]>()
    stops.push(
      attacker.port.subscribe(observationTopic(net), (m) => {
        const d = codec.decode(m.data, { from: m.from })
        if (!d.ok) return d.verdict
        const body = d.envelope.body as UptimeObservationBody
        heard.set(body.epoch, [
          ...(heard.get(body.epoch) ?? []),
          d.envelope as SignedEnvelope<UptimeObservationBody>,
        ])
        return 'accept'
      }),
    )
    stops.push(attacker.port.subscribe(epochTopic(net), () => 'accept'))
    const served = new Map<string, Uint8Array>()
    attacker.port.handle(BUNDLE_PROTOCOL, async (request) => {
      const bytes = served.get(new TextDecoder().decode(request))
      if (bytes === undefined) throw new RangeError('no such bundle')
      return bytes
    })
    const tampered: { epoch: number; attempt: number; root: string }[] = []
    const endMs = (e: number) => (f?.network.parameters.genesisTime ?? 0) * 1000 + (e + 1) * EPOCH_S * 1000
    const attackStep = async () => {
      const posted = await reader.postedRoots()
      const epoch = posted.size === 0 ? 0 : Math.max(...posted.keys()) + 1
      const head = await reader.head()
      const nowMs = head.timestamp * 1000
      if (nowMs < endMs(epoch) + GRACE_MS) return
      const closing = await reader.firstBlockAtOrAfter(endMs(epoch) / 1000)
      if (closing === undefined) return
      const closers = (await reader.registry(closing.number)).verifiers.map((v) => v.address)
      const attempt = attemptAt(nowMs, endMs(epoch) + GRACE_MS, LEADER_TIMEOUT_S * 1000)
      if (closers.length === 0 || leaderOf(closers, epoch, attempt) !== attackerAddress) return
      if (tampered.some((t) => t.epoch === epoch && t.attempt === attempt)) return
      const seed = await reader.firstBlockAtOrAfter(endMs(epoch) / 1000 - EPOCH_S)
      if (seed === undefined) return
      const registry = await reader.registry(seed.number)
      const previous = posted.get(epoch - 1)
      let carried: CumulativeEntry[] = []
      if (previous !== undefined) {
        const audit = await auditEpoch(epoch - 1, {
          chain: reader,
          sources: running.map((v) => httpBundleSource(v.ops)),
          network: net,
          verifier: createPeerVerifier(),
        })
        carried = audit.settlement.entries
      }
      // The tampering: 1,000 MESH more for the attacker than it was ever paid.
      const bonus = new AccountAmounts()
      bonus.add(attackerAddress, 1_000n * MESH)
      const forged = addPayouts(carried, bonus)
      const forgedRoot = buildCumulativeTree(forged).root
      const encoded = buildBundle({
        net,
        epoch,
        seed: seed.hash,
        emission: emissionOf(
          {
            initialEmission: BigInt(fixture.network.parameters.initialEmission),
            halvingInterval: BigInt(fixture.network.parameters.halvingInterval),
          },
          BigInt(epoch),
        ),
        params: DEFAULT_REWARD_PARAMS,
        nodes: registry.nodes.map((n) => ({
          peerId: n.peerId,
          operator: n.operator,
          stake: n.stake,
          registeredEpoch: 0,
        })),
        verifiers: registry.verifiers.map((v) => ({ peerId: v.peerId, address: v.address })),
        observations: heard.get(epoch) ?? [],
        carried: { root: forgedRoot, entries: forged },
      })
      const checked = checkBundle(encoded.bytes, {
        network: net,
        verifier: createPeerVerifier(),
        previousRoot: forgedRoot,
      })
      if (!checked.ok) throw new Error(`the attacker's own bundle: ${checked.fault}`)
      const settled = settleBundle(checked.bundle)
      served.set(encoded.cid, encoded.bytes)
      tampered.push({ epoch, attempt, root: settled.root })
      await attacker.port.publish(
        epochTopic(net),
        codec.encode(EPOCH_PROPOSAL, {
          epoch,
          attempt,
          cid: encoded.cid,
          root: settled.root,
          bundleDigest: encoded.digest,
          totalCumulative: settled.totalCumulative.toString(),
        }).bytes,
      )
    }
    const attackLoop = setInterval(() => void attackStep().catch(() => undefined), 300)
    stops.push(() => clearInterval(attackLoop))

    // ─── The measured epochs: the first to begin after everyone is up ─────────────────────────
    const headNow = async () => (await reader.head()).timestamp * 1000
    const first = Math.floor(((await headNow()) / 1000 - f.network.parameters.genesisTime) / EPOCH_S) + 1
    const halfEpoch = first + 1
    // The half node goes offline at the middle of the challenge window (10% to 80%) of `halfEpoch`,
    // by the verifiers' clock: the local clock, or the head block's time when that is ahead. (By
    // the head block's time alone, whole seconds of blocks mined every second, it went 0.4 to 1.4 s
    // late, and earned up to 0.79 of an always-on node's reward.)
    const offAtMs = endMs(halfEpoch) - EPOCH_S * 1000 + Math.round(EPOCH_S * 1000 * 0.45)
    const halfStopped = (async () => {
      await until(async () => Math.max(Date.now(), await headNow()) >= offAtMs, 120_000, 50)
      await half.stop()
    })()

    // ─── One verifier killed with SIGKILL at random moments, 20 times, restarted each time ────
    // The moments are drawn from spawn on, so some kills land while it starts up and some while it
    // challenges, stores, proposes or attests.
    const rand = mulberry32(20261202)
    const t0 = Date.now()
    let victim = (running[2] as RunningVerifier).cli
    for (let kill = 0; kill < KILLS; kill++) {
      await new Promise((resolve) => setTimeout(resolve, 300 + (rand() % 3_700)))
      await victim.stop('SIGKILL', 10_000)
      victim = spawnVerifier(dirs[2] as string)
    }
    running[2] = await ready(dirs[2] as string, victim)
    await halfStopped
    await annotate(`${KILLS} SIGKILLs in ${Math.round((Date.now() - t0) / 1000)} s`)

    // ─── It stops for good: the other two still post ────────────────────────────────────────────
    await (running[2] as RunningVerifier).cli.stop('SIGTERM', 10_000)
    const postedBefore = Math.max(-1, ...(await reader.postedRoots()).keys())
    await until(
      async () => Math.max(-1, ...(await reader.postedRoots()).keys()) >= postedBefore + 1,
      60_000,
      500,
    )
    // Until the tamperer has led at least once since the measured epochs began (every 4th epoch).
    await until(async () => tampered.some((t) => t.epoch >= first), 90_000, 500)
    const lastPosted = Math.max(...(await reader.postedRoots()).keys())
    await until(
      async () => Math.max(...(await reader.postedRoots()).keys()) > (tampered.at(-1)?.epoch ?? 0),
      60_000,
      500,
    )

    // ─── …and restarted, it catches up ───────────────────────────────────────────────────────────
    running[2] = await start(dirs[2] as string)
    await until(
      async () => ((await status(running[2] as RunningVerifier)).lastPostedEpoch ?? -1) >= lastPosted,
      30_000,
      300,
    )
    expect(halfEpoch + 1).toBeLessThanOrEqual(Math.max(...(await reader.postedRoots()).keys()))

    // ─── Every posted root is recomputable, was posted once, and none is the tamperer's ───────
    const posted = await reader.postedRoots()
    const events = await f.client(0).public.getContractEvents({
      address: f.network.contracts.EpochRewards,
      abi: epochRewardsAbi,
      eventName: 'RootPosted',
      fromBlock: BigInt(f.network.deployBlock),
    })
    const postedEpochs = events.map((e) => Number((e.args as { epoch: bigint }).epoch))
    expect(postedEpochs).toEqual([...new Set(postedEpochs)])
    const tamperedRoots = new Set(tampered.map((t) => t.root))
    for (const [, r] of posted) expect(tamperedRoots.has(r.root)).toBe(false)
    const verify = await runCli([
      'rewards',
      'verify',
      '--epoch',
      String(tampered[0]?.epoch),
      '--network',
      networkPath,
      '--json',
    ])
    expect(verify.code, verify.stderr).toBe(0)
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, epoch: tampered[0]?.epoch })
    const refused = await Promise.all(running.slice(0, 2).map(status))
    expect(refused.some((s) => (s.proposalsRefused.carried_root_mismatch ?? 0) > 0)).toBe(true)
    await annotate(
      `tampered proposals: ${tampered.map((t) => `${t.epoch}/${t.attempt}`).join(', ')}; refused`,
    )

    // ─── Rewards follow measured uptime ──────────────────────────────────────────────────────────
    const shown = await runCli([
      'rewards',
      'show',
      '--network',
      networkPath,
      '--epoch',
      String(halfEpoch),
      '--last',
      '2',
      '--address',
      ...Object.values(operators),
      '--json',
    ])
    expect(shown.code, shown.stderr).toBe(0)
    const report = JSON.parse(shown.stdout) as {
      epochs: {
        epoch: number
        matches: boolean
        accounts: {
          account: string
          earned: string
          nodes: { scorePpm: number; verifiers: { answered: number }[] }[]
        }[]
      }[]
    }
    const earned = (e: number, who: keyof typeof peers) =>
      BigInt(
        report.epochs.find((x) => x.epoch === e)?.accounts.find((a) => a.account === operators[who])
          ?.earned ?? -1,
      )
    for (const e of [first, halfEpoch]) {
      expect(report.epochs.find((x) => x.epoch === e)?.matches).toBe(true)
      expect(earned(e, 'always')).toBeGreaterThan(0n)
      expect(earned(e, 'offline')).toBe(0n)
      expect(earned(e, 'forwarder')).toBe(0n)
      expect(earned(e, 'replayer')).toBe(0n)
    }
    // Rewards follow measured uptime: nodes that were on the whole epoch answered (nearly) every
    // challenge and earn alike, in the ratio of their scores; the half node earns about half as much
    // in the epoch it left midway. The flapping verifier does not cost the others' challenges
    // anything: a challenge sent while it is killed is not recorded (its slot is not counted), and
    // the median of the three observations ignores one verifier's view. The first measured epoch
    // begins within 8 s of the verifiers' start, and they used to miss a node they were not yet
    // connected to there (2 of 18 challenges in two CI runs): libp2p looked its address up in the
    // DHT from inside its dial queue, deadlocked with the DHT's first self-query until that query's
    // 5 s deadline (see `locate` in src/mesh/libp2p-port.ts and its test in libp2p-port.test.ts).
    // Since the port looks peers up itself, no online node misses a challenge in these runs (the
    // slowest answer about 0.7 s of the 1.5 s allowed); 0.9 leaves room for one answer late under
    // load.
    const ratio = (a: bigint, b: bigint) => Number((a * 1000n) / b) / 1000
    const score = (e: number, who: keyof typeof peers) =>
      report.epochs.find((x) => x.epoch === e)?.accounts.find((a) => a.account === operators[who])?.nodes[0]
        ?.scorePpm ?? 0
    const onAll = (['always', 'also', 'half'] as const).map((who) => `${who} ${score(first, who) / 1e6}`)
    await annotate(`scores in epoch ${first}: ${onAll.join(', ')}`)
    for (const who of ['always', 'also', 'half'] as const)
      expect(score(first, who)).toBeGreaterThanOrEqual(900_000)
    for (const who of ['also', 'half'] as const) {
      expect(ratio(earned(first, who), earned(first, 'always'))).toBeGreaterThan(0.9)
      expect(ratio(earned(first, who), earned(first, 'always'))).toBeCloseTo(
        score(first, who) / score(first, 'always'),
        2,
      )
    }
    const halfShare = ratio(earned(halfEpoch, 'half'), earned(halfEpoch, 'always'))
    expect(halfShare).toBeGreaterThan(0.25)
    expect(halfShare).toBeLessThan(0.8)
    await annotate(`half-epoch node earned ${halfShare} of an always-on node's uptime reward`)
    // The forwarder and the replayer were heard, and every answer was scored missed.
    const hostile = report.epochs
      .find((x) => x.epoch === first)
      ?.accounts.filter((a) => a.account === operators.forwarder || a.account === operators.replayer)
    for (const a of hostile ?? []) {
      expect(a.nodes[0]?.verifiers.length).toBeGreaterThan(0)
      expect(a.nodes[0]?.verifiers.every((v) => v.answered === 0)).toBe(true)
    }

    // ─── Claims: one operator, then the rest of the fleet in one claimMany ──────────────────────
    const claimOne = await runCli(['rewards', 'claim', '--network', networkPath, '--json'], {
      env: { MESHWORK_PRIVATE_KEY: fixture.chain.accounts[4]?.privateKey },
    })
    expect(claimOne.code, claimOne.stderr).toBe(0)
    const claimedOne = JSON.parse(claimOne.stdout) as { claimed: { account: string; amount: string }[] }
    expect(claimedOne.claimed[0]?.account).toBe(operators.always)
    expect(BigInt(claimedOne.claimed[0]?.amount ?? 0)).toBeGreaterThan(0n)
    const fleet = await runCli(
      ['rewards', 'claim', '--network', networkPath, '--address', operators.also, operators.half, '--json'],
      { env: { MESHWORK_PRIVATE_KEY: fixture.chain.accounts[4]?.privateKey } },
    )
    expect(fleet.code, fleet.stderr).toBe(0)
    const claimedFleet = JSON.parse(fleet.stdout) as { claimed: { account: string }[]; txs: string[] }
    expect(claimedFleet.claimed.map((c) => c.account).sort()).toEqual([operators.also, operators.half].sort())
    expect(claimedFleet.txs).toHaveLength(1)
    const nothing = await runCli([
      'rewards',
      'claim',
      '--network',
      networkPath,
      '--address',
      operators.offline,
      '--json',
    ])
    expect(nothing.code).toBe(1)
    expect(JSON.parse(nothing.stdout).error.code).toBe('NOT_IN_ROOT')

    // ─── The SIGKILLed verifier lost nothing it acknowledged ──────────────────────────────────────
    await (running[2] as RunningVerifier).cli.stop('SIGTERM', 10_000)
    const acked: { epoch: number; from: string; node: string; seq: number }[] = []
    for (const run of runs.get(dirs[2] as string) ?? []) {
      for (const line of run.output().split('\n')) {
        // A line cut short by the kill was not acknowledged.
        if (!line.includes('"observation stored"')) continue
        try {
          acked.push(JSON.parse(line))
        } catch {}
      }
    }
    expect(acked.length).toBeGreaterThan(20)
    const store = openVerifierStore(join(dirs[2] as string, 'verifier.db'))
    try {
      for (const a of acked) {
        const held = store.observations(a.epoch).find((o) => o.from === a.from && o.body.node === a.node)
        expect(held?.seq ?? -1, `${a.epoch} ${a.from} ${a.node}`).toBeGreaterThanOrEqual(a.seq)
      }
    } finally {
      store.close()
    }
    await annotate(
      `${acked.length} acknowledged observations of the SIGKILLed verifier, all held after restarts`,
    )
  }, 300_000)
})
