import { formatUnits } from 'viem'
import type { ProposalStatus } from './actions/get-proposal.js'

/**
 * Where a proposal stands, in one sentence for people: what `meshwork gov list` prints and the
 * HTTP API's `summary` of a proposal.
 */

/** Votes for people: whole MESH with at most 2 decimals (`1234.5 MESH`). */
export function formatVotes(amount: bigint): string {
  const [whole, fraction = ''] = formatUnits(amount, 18).split('.')
  const cut = fraction.slice(0, 2).replace(/0+$/, '')
  return `${whole}${cut ? `.${cut}` : ''} MESH`
}

/** A chain time for people: the UTC time and how far from now. */
export function formatChainTime(time: bigint, now: bigint): string {
  const iso = new Date(Number(time) * 1000).toISOString().replace('.000Z', 'Z')
  const d = Number(time - now)
  return `${iso} (${d > 0 ? `in ${d} s` : d === 0 ? 'now' : `${-d} s ago`})`
}

/**
 * One line that says where a proposal stands and what it waits for: pending (votable from when),
 * active (until when, votes so far), defeated (below quorum, or more against), succeeded (queue
 * it), queued (executable from when), executed, canceled, expired.
 */
export function explainProposal(s: ProposalStatus): string {
  const id = s.proposalId.toString()
  const tally = `for ${formatVotes(s.votes.for)}, against ${formatVotes(s.votes.against)}, abstain ${formatVotes(s.votes.abstain)}`
  const quorum = s.quorum === undefined ? '' : `; quorum ${formatVotes(s.quorum)}`
  switch (s.state) {
    case 'pending':
      return `pending: votable from ${formatChainTime(s.snapshot + 1n, s.now)}`
    case 'active':
      return `active: voting until ${formatChainTime(s.deadline, s.now)}; ${tally}${quorum}`
    case 'defeated': {
      const counted = s.votes.for + s.votes.abstain
      if (s.quorum !== undefined && counted < s.quorum)
        return `defeated: below quorum (for + abstain ${formatVotes(counted)} of ${formatVotes(s.quorum)} needed)`
      return `defeated: more votes against (${formatVotes(s.votes.against)}) than for (${formatVotes(s.votes.for)})`
    }
    case 'succeeded':
      return `succeeded (${tally}): queue it with \`meshwork gov queue ${id}\``
    case 'queued':
      return s.now >= s.eta
        ? `queued: executable now with \`meshwork gov execute ${id}\``
        : `queued: executable from ${formatChainTime(s.eta, s.now)}`
    case 'executed':
      return 'executed'
    case 'canceled':
      return 'canceled'
    case 'expired':
      return 'expired: it was not executed in time'
  }
}

/**
 * What a new maker list (a `setMakers` call) does to the one it replaces, in words:
 * `approves maker 12D3KooW…; revokes maker 12D3KooW… (1 approved after it)`. Without the list it
 * replaces (not known), it names the whole new list.
 */
export function explainMakersChange(before: readonly string[] | undefined, after: readonly string[]): string {
  const named = (list: readonly string[]) => `maker${list.length === 1 ? '' : 's'} ${list.join(', ')}`
  if (before === undefined)
    return after.length === 0 ? 'approves no maker at all' : `approves exactly ${named(after)}`
  const old = new Set(before)
  const next = new Set(after)
  const parts: string[] = []
  const approved = after.filter((m) => !old.has(m))
  const revoked = before.filter((m) => !next.has(m))
  if (approved.length > 0) parts.push(`approves ${named(approved)}`)
  if (revoked.length > 0) parts.push(`revokes ${named(revoked)}`)
  if (parts.length === 0) return `keeps the same ${after.length} maker${after.length === 1 ? '' : 's'}`
  return `${parts.join('; ')} (${after.length} approved after it)`
}
