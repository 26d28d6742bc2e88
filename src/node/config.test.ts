import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadNodeConfig, renderNodeConfig } from './config.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const RELAY = '/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWGzh3Qm4JmXkWp1aoM3Y6rVDn3ziqBbLCj6k2w5xRyWNL'

/** Writes the config `meshwork node init` writes, with `edit` applied, and loads it. */
function load(edit: (text: string) => string = (t) => t, env: NodeJS.ProcessEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mw-config-'))
  dirs.push(dir)
  const path = join(dir, 'config.toml')
  const text = renderNodeConfig({
    h3Cell: '871f1d489ffffff',
    tier: 'edge',
    payoutAddress: '',
    mdns: false,
    apiListen: '127.0.0.1:9464',
    listen: ['/ip4/0.0.0.0/tcp/4001'],
  })
  writeFileSync(path, edit(text))
  return loadNodeConfig(path, env)
}

describe('node config: [relay]', () => {
  it('is off by default, with bounded reservations and limits a piece fits in, and no relays to go through', () => {
    expect(load().relay).toEqual({
      enabled: false,
      maxReservations: 64,
      connectionMb: 64,
      connectionSeconds: 600,
      via: [],
    })
  })

  it('turns the relay server on, or names relays to be reached through, from the file or the environment', () => {
    const on = load((t) => t.replace(/(\[relay\][^[]*?)enabled = false/, '$1enabled = true'))
    expect(on.relay.enabled).toBe(true)
    const behindNat = load((t) => t.replace('via = []', `via = [${JSON.stringify(RELAY)}]`))
    expect(behindNat.relay.via).toEqual([RELAY])
    expect(load(undefined, { MESHWORK_RELAY__MAX_RESERVATIONS: '8' }).relay.maxReservations).toBe(8)
  })

  it('refuses a relay address without a peer id, a circuit address, and limits a piece does not fit in', () => {
    expect(() => load((t) => t.replace('via = []', 'via = ["/ip4/203.0.113.7/tcp/4001"]'))).toThrow(/p2p/)
    expect(() => load((t) => t.replace('via = []', `via = ["${RELAY}/p2p-circuit/p2p/12D3KooWx"]`))).toThrow()
    expect(() => load((t) => t.replace('connectionMb = 64', 'connectionMb = 1'))).toThrow()
  })
})
