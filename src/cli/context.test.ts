import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { DEV_CHAIN_ID, KEY_ENV, resolvePrivateKey } from './context.js'

const KEY = `0x${'ab'.repeat(32)}`

describe('resolvePrivateKey', () => {
  afterEach(() => {
    delete process.env[KEY_ENV]
  })

  it('reads a key file that only its owner can read, and refuses one others can', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mw-key-')), 'key')
    writeFileSync(path, `${KEY.slice(2)}\n`)
    chmodSync(path, 0o644)
    expect(() => resolvePrivateKey({ keyFile: path, chainId: 1 })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', hint: `Run chmod 600 ${path}` }),
    )
    chmodSync(path, 0o600)
    expect(resolvePrivateKey({ keyFile: path, chainId: 1 })).toEqual({ key: KEY, source: path })
  })

  it('never echoes a malformed key back', () => {
    process.env[KEY_ENV] = 'not-a-key-but-a-secret'
    try {
      resolvePrivateKey({ chainId: 1 })
      expect.unreachable()
    } catch (err) {
      expect((err as Error).message).not.toContain('secret')
      expect((err as { code: string }).code).toBe('INVALID_ARGUMENT')
    }
  })

  it('uses $MESHWORK_PRIVATE_KEY, else a dev key only on the dev chain', () => {
    expect(resolvePrivateKey({ chainId: DEV_CHAIN_ID }).source).toBe('dev account 0')
    expect(() => resolvePrivateKey({ chainId: 10 })).toThrow(
      expect.objectContaining({ hint: expect.stringContaining('--key-file') }),
    )
    process.env[KEY_ENV] = KEY
    expect(resolvePrivateKey({ chainId: 10 })).toEqual({ key: KEY, source: `$${KEY_ENV}` })
  })
})
