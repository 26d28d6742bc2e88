import { describe, expect, it } from 'vitest'
import type { ContractAddresses } from './client.js'
import {
  applyMakerChanges,
  decodeGovernanceCall,
  encodeGovernableChanges,
  paramsToValues,
  parseGovernableSettings,
  parseMakerChanges,
} from './governable.js'
import { makerKeyOfPeerId, makerPeerIdOf } from './maker-key.js'
import { INITIAL_NETWORK_PARAMS } from './network-params.js'

const address = (n: number) => `0x${n.toString(16).padStart(40, '0')}` as const
const contracts = {
  MeshToken: address(1),
  NodeRegistry: address(2),
  EpochRewards: address(3),
  Payments: address(4),
  MeshTimelock: address(5),
  MeshGovernor: address(6),
  NetworkParams: address(7),
} satisfies ContractAddresses
/** Makers with keys 0x…01, 0x…02 and so on, as peer ids. */
const maker = (n: number) => makerPeerIdOf(`0x${n.toString(16).padStart(64, '0')}`)
const key = (n: number) => makerKeyOfPeerId(maker(n))

describe('hardware.linearBps', () => {
  it('is a NetworkParams key in basis points, at most 10,000, also as a percentage', () => {
    expect(paramsToValues(INITIAL_NETWORK_PARAMS)['hardware.linearBps']).toBe(5_000n)
    expect(parseGovernableSettings(['hardware.linearBps=25%'])).toEqual(
      new Map([['hardware.linearBps', 2_500n]]),
    )
    expect(() => parseGovernableSettings(['hardware.linearBps=10001'])).toThrow(
      expect.objectContaining({
        message: '--set hardware.linearBps must be from 0 bps to 10000 bps, got 10001 bps',
      }),
    )
    const { calls } = encodeGovernableChanges(
      { values: paramsToValues(INITIAL_NETWORK_PARAMS), paramsVersion: 4 },
      parseGovernableSettings(['hardware.linearBps=7000']),
      contracts,
    )
    const decoded = decodeGovernanceCall(calls[0] as (typeof calls)[0], contracts)
    expect(decoded).toMatchObject({ functionName: 'setParams', baseVersion: 4 })
    expect(decoded.values['hardware.linearBps']).toBe(7_000n)
  })
})

describe('maker changes', () => {
  it('are parsed before anything is read: Ed25519 peer ids, each named once', () => {
    expect(parseMakerChanges([maker(2)], [maker(1)])).toEqual({ approve: [key(2)], revoke: [key(1)] })
    expect(() => parseMakerChanges([maker(2), maker(2)], [])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: `maker ${maker(2)} is named twice` }),
    )
    expect(() => parseMakerChanges([maker(2)], [maker(2)])).toThrow(
      expect.objectContaining({ message: `maker ${maker(2)} is named twice` }),
    )
    expect(() => parseMakerChanges(['QmNotAKey'], [])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    )
    // Only makers: no --set needed.
    expect(parseGovernableSettings([], { allowNone: true }).size).toBe(0)
    expect(() => parseGovernableSettings([])).toThrow(
      expect.objectContaining({ message: expect.stringContaining('--approve-maker PEERID') }),
    )
  })

  it('apply to the current list: sorted, refusing to approve an approved maker or revoke one not approved', () => {
    expect(applyMakerChanges([key(5), key(1)], { approve: [key(3), key(9)], revoke: [key(5)] })).toEqual([
      key(1),
      key(3),
      key(9),
    ])
    expect(() => applyMakerChanges([key(1)], { approve: [key(1)], revoke: [] })).toThrow(
      expect.objectContaining({ message: `maker ${maker(1)} is approved already` }),
    )
    expect(() => applyMakerChanges([key(1)], { approve: [], revoke: [key(2)] })).toThrow(
      expect.objectContaining({ message: `maker ${maker(2)} is not approved: there is nothing to revoke` }),
    )
    const full = Array.from({ length: 256 }, (_, i) => key(i + 1))
    expect(() => applyMakerChanges(full, { approve: [key(1_000)], revoke: [] })).toThrow(
      expect.objectContaining({ message: 'the maker list would hold 257 makers, more than 256' }),
    )
  })

  it('become one setMakers call with the whole list, on the version a setParams in the same proposal makes', () => {
    const current = {
      values: paramsToValues(INITIAL_NETWORK_PARAMS),
      paramsVersion: 2,
      makers: [key(4), key(1)],
    }
    const alone = encodeGovernableChanges(
      current,
      new Map(),
      contracts,
      parseMakerChanges([maker(7)], [maker(4)]),
    )
    expect(alone.makers).toEqual({ approved: [maker(7)], revoked: [maker(4)], makers: [maker(1), maker(7)] })
    expect(alone.calls).toHaveLength(1)
    expect(decodeGovernanceCall(alone.calls[0] as (typeof alone.calls)[0], contracts)).toEqual({
      contract: 'NetworkParams',
      functionName: 'setMakers',
      values: {},
      baseVersion: 2,
      makers: [maker(1), maker(7)],
    })

    const both = encodeGovernableChanges(
      current,
      parseGovernableSettings(['hardware.linearBps=6000']),
      contracts,
      parseMakerChanges([maker(7)], []),
    )
    const decoded = both.calls.map((c) => decodeGovernanceCall(c, contracts))
    expect(decoded.map((d) => [d.functionName, d.baseVersion])).toEqual([
      ['setParams', 2],
      ['setMakers', 3],
    ])
    expect(decoded[1]?.makers).toEqual([maker(1), maker(4), maker(7)])
    // No maker named: no setMakers call.
    expect(encodeGovernableChanges(current, new Map(), contracts, { approve: [], revoke: [] }).calls).toEqual(
      [],
    )
  })
})
