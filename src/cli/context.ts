import { existsSync, readFileSync, statSync } from 'node:fs'
import type { Command } from 'commander'
import { devAccounts } from '../chain/dev-accounts.js'
import { InvalidArgumentError } from '../core/errors.js'
import type { GlobalOptions } from './output.js'
import { parsePrivateKey } from './parse.js'

/** The chain id of the embedded dev chain, whose well-known keys may be used by default. */
export const DEV_CHAIN_ID = 31337

/** Environment variable that may hold the sending account's private key. */
export const KEY_ENV = 'MESHWORK_PRIVATE_KEY'

/** The global flags, read from the root command. */
export function globalOptions(cmd: Command): GlobalOptions {
  let root = cmd
  while (root.parent) root = root.parent
  const o = root.opts<{ verbose?: boolean; json?: boolean }>()
  return { verbose: o.verbose === true, json: o.json === true }
}

/**
 * Finds the private key to send with: `--key-file`, else $MESHWORK_PRIVATE_KEY, else (on the dev
 * chain only) dev account `devIndex`. Key files must not be readable by others.
 */
export function resolvePrivateKey(init: { keyFile?: string; chainId: number; devIndex?: number }): {
  key: `0x${string}`
  source: string
} {
  if (init.keyFile) {
    if (!existsSync(init.keyFile)) {
      throw new InvalidArgumentError(`key file ${init.keyFile} does not exist`, {
        hint: 'Pass --key-file FILE',
      })
    }
    const mode = statSync(init.keyFile).mode & 0o077
    if (mode !== 0 && process.platform !== 'win32') {
      throw new InvalidArgumentError(`key file ${init.keyFile} is readable by other users`, {
        hint: `Run chmod 600 ${init.keyFile}`,
      })
    }
    return {
      key: parsePrivateKey(readFileSync(init.keyFile, 'utf8'), `key file ${init.keyFile}`),
      source: init.keyFile,
    }
  }
  const env = process.env[KEY_ENV]
  if (env) return { key: parsePrivateKey(env, `$${KEY_ENV}`), source: `$${KEY_ENV}` }
  if (init.chainId === DEV_CHAIN_ID) {
    const index = init.devIndex ?? 0
    const account = devAccounts(index + 1)[index]
    if (account) return { key: account.privateKey, source: `dev account ${index}` }
  }
  throw new InvalidArgumentError(`no key to sign with on chain ${init.chainId}`, {
    hint: `Pass --key-file FILE or set $${KEY_ENV}`,
  })
}
