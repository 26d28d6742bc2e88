import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { apiErrorCodes } from '../api/errors.js'
import {
  epochRewardsAbi,
  meshGovernorAbi,
  meshTimelockAbi,
  meshTokenAbi,
  networkParamsAbi,
  nodeRegistryAbi,
  paymentsAbi,
} from '../chain/abi/index.js'
import { chainErrorCodes, REVERTS } from '../chain/errors.js'
import { computeErrorCodes } from '../compute/errors.js'
import { meshErrorCodes } from '../mesh/errors.js'
import { nodeErrorCodes } from '../node/errors.js'
import { simErrorCodes } from '../sim/errors.js'
import { storageErrorCodes } from '../storage/errors.js'
import { verifierErrorCodes } from '../verifier/errors.js'
import { coreErrorCodes } from './errors.js'

const ERRORS_MD = new URL('../../docs/ERRORS.md', import.meta.url)

/** Every code the code can raise: core codes, and chain codes (which include every REVERTS code). */
function codesInCode(): Set<string> {
  return new Set<string>([
    ...coreErrorCodes,
    ...chainErrorCodes,
    ...meshErrorCodes,
    ...nodeErrorCodes,
    ...verifierErrorCodes,
    ...computeErrorCodes,
    ...storageErrorCodes,
    ...simErrorCodes,
    ...apiErrorCodes,
  ])
}

/**
 * Every code in the first column of a Markdown table in docs/ERRORS.md, written as `CODE`. Header and
 * separator rows (whose first cell is not a backticked upper-case code) are skipped.
 */
function codesInDocs(markdown: string): string[] {
  const codes: string[] = []
  for (const line of markdown.split('\n')) {
    const trimmed = line.trim()
    if (!trimmed.startsWith('|')) continue
    const first = trimmed.slice(1).split('|')[0]?.trim() ?? ''
    const match = /^`([A-Z][A-Z0-9_]*)`$/.exec(first)
    if (match?.[1]) codes.push(match[1])
  }
  return codes
}

interface AbiErrorItem {
  type: 'error'
  name: string
  inputs: readonly { name: string; type: string }[]
}

/**
 * The custom errors of the generated ABIs by name. solc puts in a contract's ABI every error the
 * contract can revert with, including those of inherited OpenZeppelin contracts and used libraries
 * (ERC20InsufficientBalance, ECDSAInvalidSignature, OwnableUnauthorizedAccount), so an OpenZeppelin
 * error emitted through our contracts is found here too.
 */
function abiErrors(): Map<string, AbiErrorItem[]> {
  const byName = new Map<string, AbiErrorItem[]>()
  const abis = {
    meshTokenAbi,
    nodeRegistryAbi,
    epochRewardsAbi,
    paymentsAbi,
    meshTimelockAbi,
    meshGovernorAbi,
    networkParamsAbi,
  }
  for (const abi of Object.values(abis)) {
    for (const item of abi as readonly { type: string }[]) {
      if (item.type !== 'error') continue
      const error = item as AbiErrorItem
      byName.set(error.name, [...(byName.get(error.name) ?? []), error])
    }
  }
  return byName
}

describe('docs/ERRORS.md', () => {
  const documented = codesInDocs(readFileSync(ERRORS_MD, 'utf8'))

  it('lists exactly the error codes the code can raise', () => {
    const raised = codesInCode()
    const listed = new Set(documented)
    const missing = [...raised].filter((c) => !listed.has(c)).sort()
    const extra = [...listed].filter((c) => !raised.has(c)).sort()
    expect({ missingFromDocs: missing, notRaisedByCode: extra }).toEqual({
      missingFromDocs: [],
      notRaisedByCode: [],
    })
  })

  it('lists each code once', () => {
    const repeated = documented.filter((code, i) => documented.indexOf(code) !== i)
    expect(repeated).toEqual([])
  })
})

describe('REVERTS', () => {
  const errors = abiErrors()

  it('maps only custom errors that exist in a generated ABI', () => {
    const unknown = Object.keys(REVERTS)
      .filter((name) => !errors.has(name))
      .sort()
    expect(unknown).toEqual([])
  })

  it('builds its messages from arguments the error really has', () => {
    const broken: string[] = []
    for (const [name, info] of Object.entries(REVERTS)) {
      for (const error of errors.get(name) ?? []) {
        const message = info.message(error.inputs.map((input) => `<${input.name || input.type}>`))
        if (message.includes('undefined')) broken.push(`${name}: ${message}`)
      }
    }
    expect(broken).toEqual([])
  })
})
