import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { defaultDeployParameters, validateDeployParameters } from './deploy.js'
import {
  MAX_NETWORK_FILE_BYTES,
  type NetworkFile,
  readNetworkFile,
  writeNetworkFile,
} from './network-file.js'

const dir = () => mkdtempSync(join(tmpdir(), 'mw-net-'))
const sample: NetworkFile = {
  version: 1,
  name: 'devnet',
  chainId: 31337,
  rpcUrl: 'http://127.0.0.1:8545',
  deployBlock: 1,
  deployer: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266',
  contracts: {
    MeshToken: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
    NodeRegistry: '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512',
    EpochRewards: '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0',
    Payments: '0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9',
    MeshTimelock: '0x5FC8d32690cc91D4c39d9d3abcBD16989F875707',
    MeshGovernor: '0x0165878A594ca255338adfa4d48449f69242Eb8F',
    NetworkParams: '0xa513E6E4b8f2a923D98304ec87F64353C4D5C853',
  },
  parameters: defaultDeployParameters('devnet', {
    treasury: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266',
    genesisTime: 1_800_000_000,
  }),
  bootstrap: [],
}

describe('network file', () => {
  it('round-trips what deploy writes', () => {
    const path = join(dir(), 'network.json')
    writeNetworkFile(path, sample)
    expect(readNetworkFile(path)).toEqual(sample)
  })

  it('refuses to overwrite without force, and replaces it with force', () => {
    const path = join(dir(), 'network.json')
    writeNetworkFile(path, sample)
    expect(() => writeNetworkFile(path, { ...sample, name: 'other' })).toThrow(
      expect.objectContaining({ code: 'NETWORK_FILE_EXISTS' }),
    )
    expect(readNetworkFile(path).name).toBe('devnet')
    writeNetworkFile(path, { ...sample, name: 'other' }, { force: true })
    expect(readNetworkFile(path).name).toBe('other')
  })

  it('names the fix for a missing, non-JSON, oversized or wrong-shaped file', () => {
    const d = dir()
    expect(() => readNetworkFile(join(d, 'nope.json'))).toThrow(
      expect.objectContaining({
        code: 'NETWORK_FILE_MISSING',
        hint: expect.stringContaining('meshwork deploy'),
      }),
    )
    const bad = join(d, 'bad.json')
    writeFileSync(bad, '{"version": 1,')
    expect(() => readNetworkFile(bad)).toThrow(expect.objectContaining({ code: 'NETWORK_FILE_INVALID' }))
    writeFileSync(bad, ' '.repeat(MAX_NETWORK_FILE_BYTES + 1))
    expect(() => readNetworkFile(bad)).toThrow(expect.objectContaining({ code: 'NETWORK_FILE_INVALID' }))
    writeFileSync(bad, JSON.stringify({ ...sample, contracts: { ...sample.contracts, Payments: '0x1234' } }))
    expect(() => readNetworkFile(bad)).toThrow(
      expect.objectContaining({
        code: 'NETWORK_FILE_INVALID',
        message: expect.stringContaining('contracts.Payments'),
      }),
    )
  })

  it('never accepts a mutated file silently: it either parses to valid addresses or is refused', () => {
    const path = join(dir(), 'network.json')
    const text = `${JSON.stringify(sample, null, 2)}\n`
    fc.assert(
      fc.property(fc.nat(text.length - 1), fc.string({ minLength: 1, maxLength: 3 }), (at, insert) => {
        writeFileSync(path, text.slice(0, at) + insert + text.slice(at + 1))
        try {
          const n = readNetworkFile(path)
          for (const a of Object.values(n.contracts)) expect(a).toMatch(/^0x[0-9a-fA-F]{40}$/)
        } catch (err) {
          expect((err as { code?: string }).code).toMatch(/^NETWORK_FILE_INVALID$/)
        }
      }),
      { numRuns: 300 },
    )
  })

  it('writes atomically: no temp file is left behind', () => {
    const d = dir()
    const path = join(d, 'network.json')
    writeNetworkFile(path, sample)
    expect(existsSync(`${path}.${process.pid}.tmp`)).toBe(false)
    expect(readFileSync(path, 'utf8').endsWith('\n')).toBe(true)
  })
})

describe('deploy parameters', () => {
  const base = sample.parameters
  const refused = (overrides: Partial<typeof base>, parameter: string) =>
    expect(() => validateDeployParameters({ ...base, ...overrides })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { parameter } }),
    )

  it('accepts both presets', () => {
    expect(() => validateDeployParameters(base)).not.toThrow()
    expect(() =>
      validateDeployParameters(
        defaultDeployParameters('production', { treasury: base.treasury, genesisTime: 0 }),
      ),
    ).not.toThrow()
  })

  it('refuses, naming the parameter, every value the contracts would refuse', () => {
    refused({ quorum: 22 }, 'quorum')
    refused({ quorum: 0 }, 'quorum')
    refused({ halvingInterval: 0 }, 'halvingInterval')
    refused({ epochDuration: 0 }, 'epochDuration')
    refused({ genesisAmount: (BigInt(base.maxSupply) + 1n).toString() }, 'genesisAmount')
    refused({ initialEmission: '0' }, 'initialEmission')
    refused({ initialEmission: (10n ** 27n).toString() }, 'initialEmission')
    refused({ disputeWindow: 1_000_001 }, 'disputeWindow')
    refused({ minVerifierStake: '0' }, 'minVerifierStake')
    refused({ unbondingPeriod: 366 * 24 * 3_600 }, 'unbondingPeriod')
    refused({ treasury: '0x0000000000000000000000000000000000000000' }, 'treasury')
  })
})
