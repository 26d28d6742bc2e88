import type { Command } from 'commander'
import {
  formatChainTime as at,
  castVote,
  chainError,
  connectChain,
  type DecodedCall,
  decodeGovernanceCall,
  delegateVotes,
  encodeGovernableChanges,
  executeProposal,
  explainMakersChange,
  explainProposal,
  findProposal,
  formatGovernable,
  GOVERNABLE_KEYS,
  getGovernableValues,
  getNetworkParams,
  getNetworkParamsHistory,
  getProposal,
  getVotes,
  listProposals,
  makerPeerIdOf,
  type NetworkFile,
  type NetworkParamsVersion,
  type ProposalRecord,
  paramsToValues,
  parseGovernableSettings,
  parseMakerChanges,
  propose,
  queueProposal,
  type VoteSupport,
  formatVotes as votes,
} from '../../chain/index.js'
import { InvalidArgumentError } from '../../core/errors.js'
import { globalOptions, resolvePrivateKey } from '../context.js'
import { DEFAULT_NETWORK_FILE, type NetworkFlags, openNetwork } from '../network-option.js'
import { createOutput } from '../output.js'
import { parseAddress } from '../parse.js'

interface SendFlags extends NetworkFlags {
  keyFile?: string
}

/**
 * The makers of version `base` as a proposal's `setMakers` call replaces them: the chain's
 * (`history`), or those of a version an earlier call of the same proposal makes; undefined when
 * neither knows it.
 */
function makersOfBase(
  history: readonly NetworkParamsVersion[],
  earlier: readonly DecodedCall[],
  base: number,
): string[] | undefined {
  const held = history[base - 1]
  if (held !== undefined) return held.makers.map(makerPeerIdOf)
  const i = earlier.findLastIndex((d) => d.contract === 'NetworkParams' && d.baseVersion === base - 1)
  const maker = earlier[i]
  if (maker?.functionName === 'setMakers') return maker.makers
  if (maker?.functionName === 'setParams') return makersOfBase(history, earlier.slice(0, i), base - 1)
  return undefined
}

/**
 * What a proposal sets, one `key = value` per line, what it does to the maker list in words, or the
 * raw call. `history` is NetworkParams' versions, read when a call sets makers.
 */
function describeCalls(
  p: ProposalRecord,
  network: NetworkFile,
  history: readonly NetworkParamsVersion[],
): string[] {
  const lines: string[] = []
  const decoded: DecodedCall[] = []
  for (const call of p.calls) {
    const d = decodeGovernanceCall(call, network.contracts)
    const earlier = [...decoded]
    decoded.push(d)
    if (d.makers !== undefined) {
      const before = makersOfBase(history, earlier, d.baseVersion ?? 0)
      lines.push(
        `${d.contract}.${d.functionName} (replaces parameter version ${d.baseVersion}): ${explainMakersChange(before, d.makers)}`,
      )
      continue
    }
    const entries = Object.entries(d.values)
    if (entries.length === 0) {
      lines.push(`${d.contract}.${d.functionName}(…)`)
      continue
    }
    const base = d.baseVersion === undefined ? '' : ` (replaces parameter version ${d.baseVersion})`
    lines.push(
      `${d.contract}.${d.functionName}${base}: ${entries.map(([k, v]) => `${k}=${formatGovernable(k, v)}`).join(', ')}`,
    )
  }
  return lines
}

function parseProposalId(value: string): bigint {
  if (!/^\d{1,78}$/.test(value))
    throw new InvalidArgumentError(`the proposal id must be a decimal number, got "${value}"`, {
      hint: 'Copy the id from `meshwork gov list`',
    })
  return BigInt(value)
}

function networkOptions(cmd: Command, send: boolean): Command {
  cmd
    .option('--network <file>', 'the network file', DEFAULT_NETWORK_FILE)
    .option('--rpc <url>', "JSON-RPC URL (default: the network file's)")
  if (send)
    cmd.option(
      '--key-file <file>',
      'send from this key (default $MESHWORK_PRIVATE_KEY; dev account 0 on the dev chain)',
    )
  return cmd
}

/** Reads the network file and connects with the sending key. */
async function openSender(flags: SendFlags) {
  const { network, rpcUrl } = await openNetwork(flags)
  const { key } = resolvePrivateKey({
    ...(flags.keyFile ? { keyFile: flags.keyFile } : {}),
    chainId: network.chainId,
  })
  const client = await connectChain({
    chainId: network.chainId,
    contracts: network.contracts,
    rpc: rpcUrl,
    privateKey: key,
  })
  return { network, client }
}

/** `meshwork gov propose|list|vote|queue|execute|params|delegate`. */
export function govCommands(program: Command): Command {
  const gov = program
    .command('gov')
    .description("governance: token holders vote on the network's parameters (docs/governance.md)")

  networkOptions(
    gov
      .command('propose')
      .description('propose parameter changes (one proposal, executed together)')
      .option(
        '--set <KEY=VALUE...>',
        `parameters to set; keys: ${GOVERNABLE_KEYS.map((k) => k.key).join(', ')}`,
      )
      .option(
        '--approve-maker <PEERID...>',
        "approve a hardware maker: its device certificates count from the epoch after execution (its Ed25519 key's peer id)",
      )
      .option('--revoke-maker <PEERID...>', "revoke an approved hardware maker (its Ed25519 key's peer id)")
      .requiredOption('--description <text>', 'what and why, shown to voters'),
    true,
  ).action(
    async (
      opts: SendFlags & {
        set?: string[]
        approveMaker?: string[]
        revokeMaker?: string[]
        description: string
      },
      cmd: Command,
    ) => {
      const out = createOutput(globalOptions(cmd))
      // Every key, value and maker is checked before anything is read or sent.
      const makerChanges = parseMakerChanges(opts.approveMaker ?? [], opts.revokeMaker ?? [])
      const settings = parseGovernableSettings(opts.set ?? [], {
        allowNone: makerChanges.approve.length + makerChanges.revoke.length > 0,
      })
      if (opts.description.trim() === '')
        throw new InvalidArgumentError('--description must not be empty', {
          hint: 'Say what changes and why',
        })
      const { network, client } = await openSender(opts)
      const current = await getGovernableValues(client)
      const { calls, changes, makers } = encodeGovernableChanges(
        current,
        settings,
        network.contracts,
        makerChanges,
      )
      const count = changes.length + (makers ? makers.approved.length + makers.revoked.length : 0)
      out.step(`proposing ${count} change(s) in ${calls.length} call(s)`)
      const tx = await propose(client, { calls, description: opts.description })
      const status = await getProposal(client, tx.proposalId)
      out.json({
        proposalId: tx.proposalId,
        tx: tx.hash,
        changes,
        ...(makers ? { makers } : {}),
        state: status.state,
        votableFrom: status.snapshot + 1n,
        votingEnds: status.deadline,
      })
      out.info(`Proposed ${tx.proposalId} in tx ${tx.hash}`)
      for (const c of changes)
        out.info(`  ${c.key}: ${formatGovernable(c.key, c.from)} -> ${formatGovernable(c.key, c.to)}`)
      if (makers)
        out.info(
          `  hardware.makers: ${explainMakersChange(current.makers.map(makerPeerIdOf), makers.makers)}`,
        )
      out.info(`  ${explainProposal(status)}`)
    },
  )

  networkOptions(
    gov.command('list').description('every proposal, its state and what it changes'),
    false,
  ).action(async (opts: NetworkFlags, cmd: Command) => {
    const out = createOutput(globalOptions(cmd))
    const { network, reader } = await openNetwork(opts)
    const proposals = await listProposals(reader, { fromBlock: BigInt(network.deployBlock) })
    const rows = []
    for (const p of proposals) rows.push({ record: p, status: await getProposal(reader, p.proposalId) })
    // The maker lists that setMakers calls replace, to say what they change.
    const setsMakers = proposals.some((p) =>
      p.calls.some((c) => decodeGovernanceCall(c, network.contracts).makers !== undefined),
    )
    const history = setsMakers ? await getNetworkParamsHistory(reader) : []
    out.json({
      proposals: rows.map(({ record, status }) => ({
        proposalId: record.proposalId,
        proposer: record.proposer,
        description: record.description,
        state: status.state,
        summary: explainProposal(status),
        snapshot: status.snapshot,
        deadline: status.deadline,
        eta: status.eta,
        votes: status.votes,
        quorum: status.quorum ?? null,
        calls: record.calls.map((c) => decodeGovernanceCall(c, network.contracts)),
      })),
    })
    if (rows.length === 0)
      out.info('No proposals yet. Make one with `meshwork gov propose --set KEY=VALUE --description TEXT`')
    for (const { record, status } of rows) {
      out.info(`${record.proposalId}  ${record.description.split('\n')[0]}`)
      out.info(`  ${explainProposal(status)}`)
      for (const line of describeCalls(record, network, history)) out.info(`  ${line}`)
    }
  })

  networkOptions(
    gov
      .command('vote')
      .description('vote on an active proposal with your delegated votes')
      .argument('<id>', 'the proposal id (from gov list)')
      .argument('<choice>', 'for, against or abstain')
      .option('--reason <text>', 'a reason, recorded on-chain'),
    true,
  ).action(async (id: string, choice: string, opts: SendFlags & { reason?: string }, cmd: Command) => {
    const out = createOutput(globalOptions(cmd))
    const proposalId = parseProposalId(id)
    if (choice !== 'for' && choice !== 'against' && choice !== 'abstain')
      throw new InvalidArgumentError(`the vote must be for, against or abstain, got "${choice}"`)
    const { client } = await openSender(opts)
    const before = await getProposal(client, proposalId)
    if (before.state !== 'active')
      throw chainError(
        'GOV_PROPOSAL_STATE',
        `proposal ${proposalId} is not open for votes: ${explainProposal(before)}`,
      )
    const tx = await castVote(client, {
      proposalId,
      support: choice as VoteSupport,
      ...(opts.reason ? { reason: opts.reason } : {}),
    })
    const after = await getProposal(client, proposalId)
    out.json({ proposalId, support: choice, tx: tx.hash, votes: after.votes })
    out.info(`Voted ${choice} on ${proposalId} in tx ${tx.hash}`)
    out.info(`  ${explainProposal(after)}`)
  })

  for (const verb of ['queue', 'execute'] as const) {
    networkOptions(
      gov
        .command(verb)
        .description(
          verb === 'queue'
            ? 'queue a succeeded proposal in the timelock (anyone may)'
            : 'execute a queued proposal once its timelock delay has passed (anyone may)',
        )
        .argument('<id>', 'the proposal id (from gov list)'),
      true,
    ).action(async (id: string, opts: SendFlags, cmd: Command) => {
      const out = createOutput(globalOptions(cmd))
      const proposalId = parseProposalId(id)
      const { network, client } = await openSender(opts)
      const record = await findProposal(client, { fromBlock: BigInt(network.deployBlock), proposalId })
      const before = await getProposal(client, proposalId)
      const ready = verb === 'queue' ? before.state === 'succeeded' : before.state === 'queued'
      if (!ready)
        throw chainError(
          'GOV_PROPOSAL_STATE',
          `proposal ${proposalId} cannot be ${verb}d: ${explainProposal(before)}`,
        )
      if (verb === 'execute' && before.now < before.eta)
        throw chainError(
          'GOV_TIMELOCK_NOT_READY',
          `proposal ${proposalId} is executable from ${at(before.eta, before.now)}`,
          { hint: 'Run `meshwork gov execute` again after that time' },
        )
      const tx = await (verb === 'queue' ? queueProposal : executeProposal)(client, record)
      const after = await getProposal(client, proposalId)
      out.json({ proposalId, tx: tx.hash, state: after.state, eta: after.eta })
      out.info(`${verb === 'queue' ? 'Queued' : 'Executed'} ${proposalId} in tx ${tx.hash}`)
      out.info(`  ${explainProposal(after)}`)
    })
  }

  networkOptions(
    gov
      .command('params')
      .description(
        'the governable parameters: the reward set and approved makers in force (or at --epoch), and the rest',
      )
      .option('--epoch <n>', 'show the reward parameter set in force in this epoch')
      .option('--history', 'list every reward parameter version and the epoch it applies from'),
    false,
  ).action(async (opts: NetworkFlags & { epoch?: string; history?: boolean }, cmd: Command) => {
    const out = createOutput(globalOptions(cmd))
    if (opts.epoch !== undefined && !/^\d{1,15}$/.test(opts.epoch))
      throw new InvalidArgumentError(`--epoch must be a whole number, got "${opts.epoch}"`)
    const { reader } = await openNetwork(opts)
    const inForce = await getNetworkParams(
      reader,
      opts.epoch === undefined ? {} : { epoch: BigInt(opts.epoch) },
    )
    const all = await getGovernableValues(reader)
    const history = opts.history ? await getNetworkParamsHistory(reader) : undefined
    const rewardValues = paramsToValues(inForce.params)
    const values = { ...all.values, ...rewardValues }
    const makers = inForce.makers.map(makerPeerIdOf)
    out.json({
      epoch: inForce.epoch,
      version: inForce.version,
      fromEpoch: inForce.fromEpoch,
      params: inForce.params,
      values,
      makers,
      latestVersion: all.paramsVersion,
      latestFromEpoch: all.paramsFromEpoch,
      ...(history ? { history } : {}),
    })
    out.info(
      `Epoch ${inForce.epoch}: reward parameters version ${inForce.version} (in force from epoch ${inForce.fromEpoch})`,
    )
    for (const k of GOVERNABLE_KEYS) {
      const v = values[k.key]
      if (v !== undefined)
        out.info(`  ${k.key.padEnd(26)} ${formatGovernable(k.key, v).padEnd(24)} ${k.description}`)
    }
    out.info(
      `  ${'hardware.makers'.padEnd(26)} ${`${makers.length} approved`.padEnd(24)} makers whose device certificates count (--approve-maker, --revoke-maker)`,
    )
    for (const m of makers) out.info(`    ${m}`)
    if (all.paramsVersion > inForce.version && all.paramsFromEpoch > inForce.epoch)
      out.info(`Version ${all.paramsVersion} applies from epoch ${all.paramsFromEpoch}`)
    for (const v of history ?? []) {
      const set = Object.entries(paramsToValues(v.params))
        .map(([k, x]) => `${k}=${formatGovernable(k, x)}`)
        .join(', ')
      const listed = v.makers.length === 0 ? 'none' : v.makers.map(makerPeerIdOf).join(', ')
      out.info(`version ${v.version} from epoch ${v.fromEpoch}: ${set}, makers: ${listed}`)
    }
  })

  networkOptions(
    gov
      .command('delegate')
      .description('delegate your votes (your own address to vote yourself); tokens vote only once delegated')
      .argument('<address>', 'who votes with your tokens'),
    true,
  ).action(async (address: string, opts: SendFlags, cmd: Command) => {
    const out = createOutput(globalOptions(cmd))
    const to = parseAddress(address, 'the delegate')
    const { client } = await openSender(opts)
    const tx = await delegateVotes(client, to)
    const me = client.wallet.account.address
    const [mine, theirs] = await Promise.all([getVotes(client, me), getVotes(client, to)])
    out.json({ account: me, delegate: to, tx: tx.hash, balance: mine.balance, delegateVotes: theirs.votes })
    out.info(`Delegated the votes of ${me} (${votes(mine.balance)}) to ${to} in tx ${tx.hash}`)
    out.info(
      `  ${to} now has ${votes(theirs.votes)} of votes; they count for proposals made from the next second`,
    )
  })

  return gov
}
