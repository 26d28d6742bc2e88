import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { latLngToCell } from 'h3-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  getNode,
  getTokenBalance,
  nodeIdOf,
  registerNode,
  servicesMask,
  writeNetworkFile,
} from '../../src/chain/index.js'
import { NODE_CELL_RESOLUTION } from '../../src/cli/commands/node-init.js'
import { type MemberProcess, memberDirs, registerMembers, startMember } from '../../src/cli/devnet-members.js'
import { chainProviderLedger } from '../../src/compute/chain-ledgers.js'
import { ComputeService } from '../../src/compute/job-protocol.js'
import { PaymentDesk } from '../../src/compute/payments.js'
import { SandboxPool } from '../../src/compute/sandbox-pool.js'
import { createPeerSigner, createPeerVerifier, peerIdBytes } from '../../src/mesh/peer-key.js'
import { networkIdOf } from '../../src/mesh/wire-codec.js'
import type { NodeDatabase } from '../../src/node/database.js'
import { NODE_FILES } from '../../src/node/identity.js'
import { loadNodeDir } from '../../src/node/node-dir.js'
import { type JobOutcome, Meshwork } from '../../src/sdk/index.js'
import { bundleCid, checkBundle, settleBundle } from '../../src/verifier/bundle.js'
import { createEvmVerifierChain } from '../../src/verifier/chain-port.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'
import { LIVE_CELL, LiveNodes, tcpAddr, until } from '../helpers/live-node.js'

/**
 * The compute market end to end on the embedded chain over real libp2p on loopback: 6 nodes and 3
 * verifiers as processes of the real CLI (as the devnet runs them), one cheating node in process, a
 * builder paying with the SDK. A node that signs wrong results is caught, slashed by the verifiers'
 * quorum, scores 0 for compute and is not paid for a wrong result; honest nodes are paid by voucher and earn compute
 * rewards in the posted epoch; a burst of 500 jobs completes while 30% of the providers are killed,
 * and no job is paid twice.
 */

const EPOCH_S = 8
const PRICE = 10n ** 15n
const CHEAP = PRICE / 2n
const BUILDER = 1
const CHEATER_OPERATOR = 11
/** The H3 cell of the devnet's first node (Berlin), at the node cell resolution. */
const BERLIN = latLngToCell(52.52, 13.405, NODE_CELL_RESOLUTION)
/** Berlin's two nodes and Lagos' (a third to settle a mismatch), none of the others. */
const NEAR_BERLIN = { lat: 52.52, lon: 13.405, radiusKm: 5_200 }

describe('the compute market', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mw-compute-market-'))
  const nodes = new LiveNodes()
  const stops: (() => Promise<unknown> | unknown)[] = []
  let f: ChainFixture
  const members: MemberProcess[] = []
  let mw: Meshwork
  let cheater: string
  let cheaterDesk: PaymentDesk
  let cheaterRuns = 0
  let cheaterDb: NodeDatabase
  let networkPath: string
  const outcomes: JobOutcome[] = []

  beforeAll(async () => {
    // Payments burn the deploy's 5% fee: compute rewards are capped at a rebate of what was burned.
    f = await startChainFixture(
      { quorum: 2, disputeWindow: 1, epochDuration: EPOCH_S, paymentFeeBps: 500 },
      { port: 0 },
    )
    const fixture = f
    const miner = setInterval(
      () => void fixture.chain.provider.request({ method: 'evm_mine', params: [] }).catch(() => undefined),
      1_000,
    )
    stops.push(() => clearInterval(miner))
    networkPath = join(dir, 'network.json')
    writeNetworkFile(networkPath, f.network, { force: true })
    const dirs = await memberDirs(dir, { nodes: 6, verifiers: 3 }, networkPath)
    await registerMembers(dirs.created, { provider: f.chain.provider, network: f.network }, () => undefined)
    const nodeEnv = { MESHWORK_COMPUTE__REDEEM_SECONDS: '2', MESHWORK_COMPUTE__CREDIT_JOBS: '32' }
    const verifierEnv = {
      MESHWORK_VERIFIER__GRACE_SECONDS: '1',
      MESHWORK_VERIFIER__LEADER_TIMEOUT_SECONDS: '4',
      MESHWORK_VERIFIER__POLL_MS: '400',
      MESHWORK_VERIFIER__CHALLENGE_TIMEOUT_MS: '1500',
    }
    const [first, ...rest] = dirs.members as [(typeof dirs.members)[number], ...typeof dirs.members]
    const head = startMember(first, nodeEnv)
    members.push(head)
    const bootstrap = (await head.ready).addresses.filter((a) => a.includes('/tcp/') && !a.includes('/ws'))
    const env = { MESHWORK_MESH__BOOTSTRAP: JSON.stringify(bootstrap) }
    for (const m of rest)
      members.push(
        startMember(m, m.kind === 'verifier' ? { ...env, ...verifierEnv } : { ...env, ...nodeEnv }),
      )
    stops.push(() => Promise.all(members.map((m) => m.stop(10_000))))
    await Promise.all(members.map((m) => m.ready))
    writeNetworkFile(networkPath, { ...f.network, bootstrap }, { force: true })

    // The cheater: a real compute service whose sandbox answers a wrong output, signed as usual, at
    // half the honest price (so placement picks it first).
    const net = networkIdOf(f.network)
    const pool = new SandboxPool({ size: 1 })
    stops.push(() => pool.close())
    const lying = {
      size: pool.size,
      kinds: pool.kinds,
      get load() {
        return pool.load
      },
      // Honest twice, then a forged output: a third of its jobs are wrong.
      run: async (task: Parameters<SandboxPool['run']>[0]) => {
        const real = await pool.run(task)
        cheaterRuns++
        return cheaterRuns % 3 === 0 ? { ...real, output: new TextEncoder().encode('"forged"') } : real
      },
    } as unknown as SandboxPool
    await f.fund(CHEATER_OPERATOR, 1_000n * MESH)
    const operator = f.account(CHEATER_OPERATOR).address
    const cheaterDeskOf = (db: NodeDatabase) => {
      cheaterDb = db
      cheaterDesk = new PaymentDesk(
        { network: net },
        {
          ledger: chainProviderLedger(fixture.client(CHEATER_OPERATOR)),
          store: db.payments,
          now: () => Date.now(),
        },
      )
      return cheaterDesk
    }
    // In node-0's cell (Berlin): jobs placed near Berlin run on one of the two, checked by the other.
    const node = await nodes.start({
      network: net,
      bootstrap,
      operator,
      cell: BERLIN,
      services: (db, key) => [
        new ComputeService(
          { network: net, price: CHEAP, now: () => Date.now() },
          {
            pool: lying,
            signer: createPeerSigner(key),
            desk: cheaterDeskOf(db),
          },
        ),
      ],
    })
    stops.push(() => nodes.stopAll())
    cheater = node.peerId
    await registerNode(f.client(CHEATER_OPERATOR), {
      peerId: peerIdBytes(cheater),
      services: servicesMask(['compute']),
      h3Cell: BigInt(`0x${LIVE_CELL}`),
      stake: 1_000n * MESH,
    })
    expect(tcpAddr(node.libp2p)).toMatch(/tcp/)

    await f.fund(BUILDER, 10_000n * MESH)
    // Twelve processes have just started on two cores: give the first dial time, and a second try.
    const connect = () =>
      Meshwork.connect({
        network: networkPath,
        payer: { privateKey: f.chain.accounts[BUILDER]?.privateKey as `0x${string}`, deposit: 100n * PRICE },
        connectTimeoutMs: 30_000,
      })
    mw = await connect().catch(connect)
    stops.push(() => mw.close())
    await until(() => mw.ads().length >= 7, 30_000, 200)
  }, 180_000)

  afterAll(async () => {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch(() => undefined)
    nodes.cleanUp()
    await f?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  const verifierOps = () => members.filter((m) => m.kind === 'verifier').map((m) => m.ready)
  const status = async (ops: string) =>
    (await (await fetch(`${ops}/status`)).json()) as {
      compute: Record<string, number>
      lastPostedEpoch: number | null
    }

  it('catches a node that signs wrong results on a third of its jobs at its first wrong answer, slashes it by quorum, zeroes its compute score and pays it for honest work only', async ({
    annotate,
  }) => {
    const chain = createEvmVerifierChain(f.client(0), { deployBlock: BigInt(f.network.deployBlock) })
    const epochOf = async () =>
      Math.floor(((await chain.head()).timestamp - f.network.parameters.genesisTime) / EPOCH_S)
    const firstEpoch = await epochOf()
    // A bad spec is refused before anything is placed or paid.
    const spentBefore = mw.spent
    await expect(
      mw.jobs.run({ kind: 'js', code: '(x) => x', input: 1, limits: { timeMs: 0 } }),
    ).rejects.toMatchObject({ code: 'JOB_SPEC_INVALID', message: expect.stringContaining('limits.timeMs') })
    expect(mw.spent).toBe(spentBefore)
    // Every job re-checked (verify 1): the cheater lies on its third job and that job catches it, so
    // N = 3 checked jobs. (At the adaptive rate a new node's jobs are re-checked with p ≥ 0.87 for
    // its first three clean checks; a lie that goes unchecked is the price of checking less.)
    let caughtAt = 0
    let runsWhenCaught = 0
    for (let i = 1; i <= 20 && caughtAt === 0; i++) {
      const r = await mw.jobs.run({
        kind: 'js',
        code: '(x) => x * 3',
        input: i,
        near: NEAR_BERLIN,
        verify: 1,
        // Capped at the honest price: the cheap cheater's quote scores best, as a cheap node's would.
        maxPrice: PRICE,
      })
      outcomes.push(r)
      // The builder never gets the forged output.
      expect(r.value).toBe(i * 3)
      if (r.evidence.some((e) => e.node === cheater)) {
        caughtAt = i
        runsWhenCaught = cheaterRuns
      }
    }
    annotate(`cheater caught at job ${caughtAt}, its run ${runsWhenCaught}`)
    expect(runsWhenCaught).toBe(3)
    // Caught: never placed again by this client.
    for (let i = 0; i < 3; i++) {
      const r = await mw.jobs.run({ kind: 'js', code: '(x) => x - 1', input: i, near: NEAR_BERLIN })
      outcomes.push(r)
      expect(r.provider).not.toBe(cheater)
    }
    expect(cheaterRuns).toBe(runsWhenCaught)
    // Code by hash: the nodes fetch it from this client (and keep it).
    for (const input of [7, 8]) {
      const r = await mw.jobs.run({ kind: 'js', code: '(x) => x * x', input, byHash: true })
      outcomes.push(r)
      expect(r.value).toBe(input * input)
    }
    // More jobs for compute work: verified by independent nodes, reported to the verifiers.
    for (let i = 0; i < 6; i++)
      outcomes.push(await mw.jobs.run({ kind: 'js', code: '(x) => x + 1', input: i }))

    // Slashed on-chain by a quorum of verifiers that re-ran the job themselves.
    const nodeId = nodeIdOf(peerIdBytes(cheater))
    await until(async () => (await getNode(f.client(0), nodeId)).stake < 1_000n * MESH, 60_000, 250)
    expect((await getNode(f.client(0), nodeId)).stake).toBe(0n)
    // The fraud is recorded in the epoch of the evidence's timestamp (in chain time, by each
    // verifier's reckoning of the chain's clock): by now, or the epoch after at the latest.
    const lastEpoch = (await epochOf()) + 1
    const statuses = await Promise.all((await Promise.all(verifierOps())).map((v) => status(v.ops)))
    expect(statuses.filter((s) => s.compute.frauds === 1).length).toBeGreaterThanOrEqual(2)
    expect(statuses.reduce((n, s) => n + (s.compute.slashes ?? 0), 0)).toBe(1)
    expect(statuses.reduce((n, s) => n + (s.compute.receipts ?? 0), 0)).toBeGreaterThan(0)

    // Honest providers redeem their vouchers.
    const operators = new Map(mw.ads().map((a) => [a.peerId, a.ad.operator as `0x${string}`]))
    const paidNodes = new Set(outcomes.map((o) => o.provider).filter((p) => p !== cheater))
    await until(
      async () => {
        for (const p of paidNodes)
          if ((await getTokenBalance(f.client(0), operators.get(p) as `0x${string}`)) === 0n) return false
        return true
      },
      30_000,
      500,
    )
    // The cheater billed its three runs and was paid for the two honest ones, not for the forged one.
    expect(cheaterDesk.counts.get('billed')).toBe(3)
    expect(cheaterDb.payments.unredeemed().reduce((sum, c) => sum + c.book.paid, 0n)).toBe(2n * CHEAP)

    // The epochs of the jobs are posted with compute observations: honest nodes earn from the
    // compute pool, the cheater's compute weight is 0.
    await until(async () => (await chain.postedRoots()).has(lastEpoch), 60_000, 500)
    const roots = await chain.postedRoots()
    const verifiers = await Promise.all(verifierOps())
    let earned = 0n
    let zeroed = 0
    for (let e = firstEpoch; e <= lastEpoch; e++) {
      const root = roots.get(e)
      if (!root) continue
      // From any verifier that holds it (one that did not attest may not).
      let bytes: Uint8Array | undefined
      for (const v of verifiers) {
        const res = await fetch(`${v.ops}/bundles/${bundleCid(root.digest)}`)
        if (res.ok) {
          bytes = new Uint8Array(await res.arrayBuffer())
          break
        }
      }
      if (bytes === undefined) throw new Error(`no verifier holds the bundle of epoch ${e}`)
      const checked = checkBundle(bytes, {
        network: networkIdOf(f.network),
        verifier: createPeerVerifier(),
        previousRoot: roots.get(e - 1)?.root ?? null,
      })
      expect(checked.ok).toBe(true)
      if (!checked.ok) continue
      const settled = settleBundle(checked.bundle)
      expect(settled.root).toBe(root.root.toLowerCase())
      for (const c of settled.rewards.compute) {
        if (c.peerId !== cheater) {
          earned += c.reward
          continue
        }
        // Its honest jobs may pay; an epoch in which most verifiers report its fraud pays it nothing.
        if (c.fraud) expect(c).toMatchObject({ weight: 0n, reward: 0n })
        if (c.fraud) zeroed++
      }
    }
    // Whether the fraud lands in a posted epoch's observations depends on when the evidence came
    // relative to the epoch's end (docs/ARCHITECTURE.md, known limits): the slash above never does.
    annotate(`epochs ${firstEpoch} to ${lastEpoch}: the cheater's compute score zeroed in ${zeroed}`)
    expect(earned).toBeGreaterThan(0n)
  }, 180_000)

  it('completes a 500-job burst while 30% of the providers are killed, and pays no job twice', async ({
    annotate,
  }) => {
    // What the cheater was paid (it never redeems), before it stops.
    const cheaterPaid = cheaterDb.payments.unredeemed().reduce((sum, c) => sum + c.book.paid, 0n)
    await nodes.stopAll()
    const nodeProcs = members.filter((m) => m.kind === 'node')
    const victims = nodeProcs.slice(1, 3)
    const burst: JobOutcome[] = []
    const startedAt = new Map<string, number>()
    let next = 0
    let done = 0
    let killed = false
    let killedAt = Number.POSITIVE_INFINITY
    const started = Date.now()
    const worker = async () => {
      while (next < 500) {
        const i = next++
        const t = Date.now()
        const r = await mw.jobs.run({ kind: 'js', code: '(x) => [x, x * x]', input: i })
        expect(r.value).toEqual([i, i * i])
        burst.push(r)
        startedAt.set(r.jobId, t)
        if (++done === 150 && !killed) {
          killed = true
          killedAt = Date.now()
          for (const v of victims) v.child.kill('SIGKILL')
        }
      }
    }
    await Promise.all(Array.from({ length: 12 }, worker))
    annotate(
      `500 jobs in ${Date.now() - started} ms, ${victims.length} of ${nodeProcs.length} providers killed after 150`,
    )
    expect(burst).toHaveLength(500)
    expect(new Set(burst.map((r) => r.jobId)).size).toBe(500)
    // Jobs placed after the kill ran on the survivors. (A job that ran on a victim before the kill may
    // finish much later, once its check on another node is done: it is not counted here.)
    const dead = new Set(victims.map((v) => loadNodeDir(v.dir).identity.peerId))
    const placedAfter = burst.filter((r) => (startedAt.get(r.jobId) ?? 0) > killedAt + 1_000)
    expect(placedAfter.length).toBeGreaterThan(100)
    expect(placedAfter.filter((r) => dead.has(r.provider)).map((r) => r.jobId)).toEqual([])
    // Every node's books (the killed ones' too: SQLite keeps what they acknowledged) hold exactly the
    // vouchers the builder sent: never more than one price per standing run of a job.
    await Promise.all(nodeProcs.map((m) => m.stop(10_000)))
    const all = [...outcomes, ...burst]
    let books = 0n
    for (const m of nodeProcs) {
      const db = new Database(join(m.dir, NODE_FILES.database), { readonly: true })
      for (const row of db.prepare('SELECT paid FROM pay_channels').all() as { paid: string }[])
        books += BigInt(row.paid)
      db.close()
    }
    books += cheaterPaid
    // Per job: each node paid once at most, and no more nodes than ran it with a standing result.
    for (const r of all) {
      const nodesPaid = r.payments.map((p) => p.node)
      expect(new Set(nodesPaid).size).toBe(nodesPaid.length)
      expect(nodesPaid.length).toBeLessThanOrEqual(r.verification === 'signed' ? 1 : 2)
      expect(r.payments.reduce((sum, p) => sum + p.amount, 0n)).toBe(r.paid)
    }
    const acknowledged = all.reduce((sum, r) => sum + r.paid, 0n)
    annotate(
      `vouchers on the nodes' books ${books}, acknowledged to the builder ${acknowledged}, signed ${mw.spent}`,
    )
    // The nodes hold what the builder was told they got (a voucher a node stored just before it was
    // killed may be on its books without the builder's knowing: never the other way round), and
    // never more than the builder signed.
    expect(books).toBeGreaterThanOrEqual(acknowledged)
    expect(books).toBeLessThanOrEqual(mw.spent)
  }, 300_000)
})
