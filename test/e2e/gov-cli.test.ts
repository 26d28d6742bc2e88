import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { listProposals, makerKeysOf, makerPeerIdOf, writeNetworkFile } from '../../src/chain/index.js'
import { type ChainFixture, startChainFixture } from '../helpers/chain-fixture.js'
import { runCli } from '../helpers/cli.js'

/**
 * `meshwork gov` against the embedded chain served over HTTP, with the real contracts: the treasury
 * (dev account 0, the CLI's default key on the dev chain) delegates, proposes a new emission split,
 * votes, queues and executes it; the test moves the chain's clock over the delays.
 */
describe('meshwork gov', () => {
  let f: ChainFixture
  const cwd = mkdtempSync(join(tmpdir(), 'mw-gov-'))
  const gov = (...args: string[]) => runCli(['gov', ...args], { cwd })
  const json = async (...args: string[]) => {
    const r = await runCli(['--json', 'gov', ...args], { cwd })
    expect(r.code, r.stderr + r.stdout).toBe(0)
    return JSON.parse(r.stdout)
  }

  beforeAll(async () => {
    f = await startChainFixture({}, { port: 0 })
    writeNetworkFile(join(cwd, 'network.json'), f.network)
  })
  afterAll(() => f.stop())

  it('refuses an unknown key or a bad value before anything is sent', async () => {
    const unknown = await gov('propose', '--set', 'weights.bogus=1', '--description', 'x')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(
      /unknown parameter "weights\.bogus"\. Known keys: weights\.uptime, .*\[INVALID_ARGUMENT\]/,
    )
    const range = await gov('propose', '--set', 'uptime.thresholdPpm=2000000', '--description', 'x')
    expect(range.code).toBe(2)
    expect(range.stderr).toContain('uptime.thresholdPpm must be from 0 ppm to 1000000 ppm')
    const sum = await gov('propose', '--set', 'weights.uptime=5000', '--description', 'x')
    expect(sum.code).toBe(2)
    expect(sum.stderr).toContain('the service weights would sum to 11000 bps, not 10000')
    const vote = await gov('vote', '1', 'maybe')
    expect(vote.code).toBe(2)
    expect(await listProposals(f.client(0), { fromBlock: 0n })).toEqual([])
  })

  it('takes a proposal from delegation to execution, with a clear line for each state', async () => {
    const treasury = f.account(0).address
    const p = f.network.parameters
    const noVotes = await gov('propose', '--set', 'rewards.disputeWindow=3', '--description', 'x')
    expect(noVotes.code).toBe(1)
    expect(noVotes.stderr).toMatch(/has 0 votes.*gov delegate.*\[GOV_PROPOSER_VOTES_TOO_LOW\]/)

    const delegated = await gov('delegate', treasury)
    expect(delegated.stdout).toMatch(/Delegated the votes of .* to .* now has 400000000 MESH of votes/s)
    await f.advance(1)

    const made = await json(
      'propose',
      '--set',
      'weights.uptime=35%',
      '--set',
      'weights.storage=2500',
      '--description',
      'Storage gets 25%, uptime 35%',
    )
    expect(made).toMatchObject({
      state: 'pending',
      changes: [
        { key: 'weights.uptime', from: '4000', to: '3500' },
        { key: 'weights.storage', from: '2000', to: '2500' },
      ],
    })
    const id: string = made.proposalId
    expect((await gov('list')).stdout).toMatch(
      new RegExp(
        `${id}  Storage gets 25%, uptime 35%\\n  pending: votable from .*\\n  NetworkParams.setParams \\(replaces parameter version 1\\): weights.uptime=3500 bps`,
      ),
    )
    const early = await gov('vote', id, 'for')
    expect(early.code).toBe(1)
    expect(early.stderr).toMatch(/is not open for votes: pending: votable from .*\[GOV_PROPOSAL_STATE\]/)

    await f.advance(p.votingDelay + 1)
    const voted = await gov('vote', id, 'for', '--reason', 'storage needs it')
    expect(voted.code, voted.stderr).toBe(0)
    expect(voted.stdout).toMatch(
      /active: voting until .*; for 400000000 MESH, against 0 MESH, abstain 0 MESH; quorum 16000000 MESH/,
    )
    expect((await gov('queue', id)).stderr).toMatch(/cannot be queued: active.*\[GOV_PROPOSAL_STATE\]/)

    await f.advance(p.votingPeriod + 1)
    expect((await gov('list')).stdout).toContain(
      `succeeded (for 400000000 MESH, against 0 MESH, abstain 0 MESH): queue it with \`meshwork gov queue ${id}\``,
    )
    const queued = await gov('queue', id)
    expect(queued.stdout).toMatch(/Queued .*\n {2}queued: executable from .*\(in \d+ s\)/)
    const early2 = await gov('execute', id)
    expect(early2.code).toBe(1)
    expect(early2.stderr).toMatch(/is executable from .*\[GOV_TIMELOCK_NOT_READY\]/)

    await f.advance(p.timelockDelay + 1)
    const executed = await gov('execute', id)
    expect(executed.code, executed.stderr).toBe(0)
    expect(executed.stdout).toMatch(/Executed .*\n {2}executed/)

    const now = await json('params')
    expect(now).toMatchObject({ version: 1, latestVersion: 2, values: { 'weights.uptime': '4000' } })
    const next = await json('params', '--epoch', String(Number(now.latestFromEpoch)))
    expect(next).toMatchObject({
      version: 2,
      values: { 'weights.uptime': '3500', 'weights.storage': '2500' },
    })
    const text = await gov('params', '--history')
    expect(text.stdout).toMatch(/Version 2 applies from epoch \d+/)
    expect(text.stdout).toMatch(/version 1 from epoch 0: weights.uptime=4000 bps/)
    expect(text.stdout).toMatch(/version 2 from epoch \d+: weights.uptime=3500 bps/)
    expect(text.stdout).toMatch(/registry.minNodeStake +1000 MESH/)
  })

  it('approves and revokes hardware makers by peer id, and shows the makers in force', async () => {
    const p = f.network.parameters
    const [a, b, c] = await Promise.all(
      [0, 1, 2].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()),
    )
    const rsa = 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'
    const before = (await listProposals(f.client(0), { fromBlock: 0n })).length
    const bad = await gov('propose', '--approve-maker', rsa, '--description', 'x')
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/maker Qm\w+ is not an Ed25519 key's peer id .*12D3KooW.*\[INVALID_ARGUMENT\]/)
    const twice = await gov(
      'propose',
      '--approve-maker',
      a as string,
      '--revoke-maker',
      a as string,
      '--description',
      'x',
    )
    expect(twice.stderr).toContain(`maker ${a} is named twice`)
    const nothing = await gov('propose', '--description', 'x')
    expect(nothing.stderr).toContain('a proposal needs at least one --set KEY=VALUE, --approve-maker PEERID')
    const unknown = await gov('propose', '--revoke-maker', c as string, '--description', 'x')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain(`maker ${c} is not approved: there is nothing to revoke`)
    expect(await listProposals(f.client(0), { fromBlock: 0n })).toHaveLength(before)

    await gov('delegate', f.account(0).address)
    await f.advance(1)
    // Passes a proposal made with `args` through vote, queue and execute; returns what propose printed.
    const pass = async (...args: string[]) => {
      const made = await json('propose', ...args)
      await f.advance(p.votingDelay + 1)
      expect((await gov('vote', made.proposalId, 'for')).code).toBe(0)
      await f.advance(p.votingPeriod + 1)
      expect((await gov('queue', made.proposalId)).code).toBe(0)
      await f.advance(p.timelockDelay + 1)
      const executed = await gov('execute', made.proposalId)
      expect(executed.code, executed.stderr).toBe(0)
      return made
    }
    const both = makerKeysOf([a as string, b as string]).map(makerPeerIdOf)
    const approved = await pass('--approve-maker', a as string, b as string, '--description', 'Two makers')
    expect(approved.makers).toEqual({ approved: both, revoked: [], makers: both })
    const listed = (await gov('list')).stdout
    expect(listed).toContain(
      `${approved.proposalId}  Two makers\n  executed\n  NetworkParams.setMakers (replaces parameter version `,
    )
    expect(listed).toContain(`): approves makers ${both.join(', ')} (2 approved after it)`)

    const latest = await json('params')
    const next = await json('params', '--epoch', String(Number(latest.latestFromEpoch)))
    expect(next.makers).toEqual(both)
    expect(next.values['hardware.linearBps']).toBe('5000')
    await f.advance(p.epochDuration)
    const shown = (await gov('params')).stdout
    expect(shown).toMatch(/hardware\.linearBps +5000 bps/)
    expect(shown).toMatch(new RegExp(`hardware\\.makers +2 approved .*\\n {4}${both[0]}\\n {4}${both[1]}\\n`))

    const revoked = await pass('--revoke-maker', a as string, '--description', 'Revoke one')
    expect(revoked.makers).toEqual({ approved: [], revoked: [a], makers: [b] })
    expect((await gov('list')).stdout).toContain(`revokes maker ${a} (1 approved after it)`)
    const history = (await gov('params', '--history')).stdout
    expect(history).toMatch(/version 1 from epoch 0: .*, makers: none\n/)
    expect(history).toContain(`, makers: ${both.join(', ')}\n`)
    expect(history).toContain(`, makers: ${b}\n`)
  })
})
