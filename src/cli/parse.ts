import { isAddress, isHex } from 'viem'
import { InvalidArgumentError } from '../core/errors.js'

/** Parses a TCP port (0 picks a free one). */
export function parsePort(value: string, flag = '--port'): number {
  const n = Number(value)
  if (!/^\d{1,5}$/.test(value) || n > 65_535) {
    throw new InvalidArgumentError(`${flag} must be a port number from 0 to 65535, got "${value}"`)
  }
  return n
}

/** Parses a positive integer within `max`. */
export function parsePositiveInt(value: string, flag: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value)
  if (!/^\d{1,16}$/.test(value) || n < 1 || n > max) {
    throw new InvalidArgumentError(`${flag} must be a whole number from 1 to ${max}, got "${value}"`)
  }
  return n
}

/** Parses an http(s) JSON-RPC URL. */
export function parseRpcUrl(value: string, flag = '--rpc'): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new InvalidArgumentError(`${flag} must be a URL such as http://127.0.0.1:8545, got "${value}"`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`${flag} must be an http:// or https:// URL, got "${value}"`)
  }
  return value
}

/** Parses a 0x address. */
export function parseAddress(value: string, flag: string): `0x${string}` {
  if (!isAddress(value, { strict: false })) {
    throw new InvalidArgumentError(`${flag} must be a 0x-prefixed 20-byte address, got "${value}"`)
  }
  return value
}

/** Parses a 32-byte private key (never echoed back in the error). */
export function parsePrivateKey(value: string, source: string): `0x${string}` {
  const key = value.trim().startsWith('0x') ? value.trim() : `0x${value.trim()}`
  if (!isHex(key) || key.length !== 66) {
    throw new InvalidArgumentError(`${source} does not hold a 32-byte hex private key`, {
      hint: 'Give 64 hex characters, with or without 0x',
    })
  }
  return key as `0x${string}`
}
