import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseEther } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { createChainClient, NO_CONTRACTS } from './client.js'
import { type DevChain, MAX_RPC_BODY_BYTES, startDevChain } from './dev-chain.js'

const started: DevChain[] = []
async function chain(init: Parameters<typeof startDevChain>[0]) {
  const c = await startDevChain(init)
  started.push(c)
  return c
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((c) => c.stop()))
})

async function rpc(url: string, body: unknown, init: RequestInit = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  })
  return {
    status: res.status,
    json: (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined,
  }
}

async function sendEth(c: DevChain, to: `0x${string}`, ether: string) {
  const client = createChainClient({
    chainId: c.chainId,
    contracts: NO_CONTRACTS,
    rpc: c.provider,
    privateKey: (c.accounts[0] as { privateKey: `0x${string}` }).privateKey,
    pollingInterval: 5,
  })
  const hash = await client.wallet.sendTransaction({ to, value: parseEther(ether) })
  return client.public.waitForTransactionReceipt({ hash })
}

const stranger = privateKeyToAccount(`0x${'11'.repeat(32)}`).address

describe('embedded dev chain', () => {
  it('serves JSON-RPC over HTTP on loopback, single and batched', async () => {
    const c = await chain({ port: 0, accounts: 2 })
    expect(c.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const one = await rpc(c.url as string, { jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] })
    expect(one.json).toMatchObject({ id: 1, result: '0x7a69' })
    const batch = await rpc(c.url as string, [
      { jsonrpc: '2.0', id: 1, method: 'eth_blockNumber' },
      { jsonrpc: '2.0', id: 2, method: 'eth_getBalance', params: [c.accounts[1]?.address, 'latest'] },
    ])
    expect(batch.json).toEqual([
      { jsonrpc: '2.0', id: 1, result: '0x0' },
      { jsonrpc: '2.0', id: 2, result: `0x${(10_000n * 10n ** 18n).toString(16)}` },
    ])
  })

  it('answers bad requests with JSON-RPC errors and keeps serving', async () => {
    const c = await chain({ port: 0, accounts: 1 })
    const url = c.url as string
    expect((await rpc(url, '{not json')).json).toMatchObject({ error: { code: -32700 } })
    expect((await rpc(url, { id: 3 })).json).toMatchObject({ id: 3, error: { code: -32600 } })
    expect((await rpc(url, { id: 4, method: 'eth_chainId', params: { a: 1 } })).json).toMatchObject({
      error: { code: -32602 },
    })
    expect((await rpc(url, { id: 5, method: 'hardhat_reset', params: [] })).json).toMatchObject({
      error: { code: -32601, message: expect.stringContaining('not supported') },
    })
    const big = await rpc(url, `"${'x'.repeat(MAX_RPC_BODY_BYTES + 10)}"`)
    expect(big.status).toBe(413)
    const get = await fetch(url)
    expect(get.status).toBe(405)
    expect((await rpc(url, { id: 6, method: 'eth_chainId' })).json).toMatchObject({ result: '0x7a69' })
    await rpc(url, { id: 7, method: 'evm_mine', params: [] })
    // Operators can scrape what it served.
    const metrics = await (await fetch(`${url}/metrics`)).text()
    expect(metrics).toMatch(/meshwork_chain_rpc_requests_total\{method="eth_chainId",outcome="ok"\} [1-9]/)
    expect(metrics).toMatch(/meshwork_chain_rpc_requests_total\{method="hardhat_reset",outcome="error"\} 1/)
    expect(metrics).toMatch(/meshwork_chain_head_block 1\n/)
  })

  it('refuses a port already in use with a clear error', async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as { port: number }).port
    await expect(startDevChain({ port, accounts: 1 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining(`port ${port} is already in use`),
    })
    blocker.close()
  })

  it('keeps its state in --state DIR: a restart replays every acknowledged block with its timestamp', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mw-chain-'))
    const first = await chain({ stateDir: dir, accounts: 2 })
    await sendEth(first, stranger, '1.5')
    await first.provider.request({ method: 'evm_increaseTime', params: [3_600] })
    await sendEth(first, stranger, '0.5')
    const head = (await first.provider.request({
      method: 'eth_getBlockByNumber',
      params: ['latest', false],
    })) as {
      number: string
      hash: string
      timestamp: string
    }
    // Like a kill -9: nothing is flushed at stop that was not already on disk.
    await first.stop()

    const second = await chain({ stateDir: dir, accounts: 2 })
    expect(second.replayed).toBe(Number(BigInt(head.number)))
    const same = (await second.provider.request({
      method: 'eth_getBlockByNumber',
      params: [head.number, false],
    })) as { hash: string; timestamp: string }
    expect(same.timestamp).toBe(head.timestamp)
    expect(same.hash).toBe(head.hash)
    const balance = await second.provider.request({ method: 'eth_getBalance', params: [stranger, 'latest'] })
    expect(BigInt(balance as string)).toBe(parseEther('2'))
    // And it goes on from there.
    await sendEth(second, stranger, '1')
    expect(
      BigInt(
        (await second.provider.request({ method: 'eth_getBalance', params: [stranger, 'latest'] })) as string,
      ),
    ).toBe(parseEther('3'))
  })

  it('ignores a torn last journal line and refuses a corrupt one in the middle', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mw-chain-'))
    const first = await chain({ stateDir: dir, accounts: 1 })
    await sendEth(first, stranger, '1')
    await sendEth(first, stranger, '1')
    await first.stop()
    const journal = join(dir, 'journal.ndjson')
    appendFileSync(journal, '{"m":"eth_sendRawTransaction","p":["0x02f8')
    const resumed = await chain({ stateDir: dir, accounts: 1 })
    expect(resumed.replayed).toBe(2)
    // The torn line is cut off, so what comes next replays too.
    await sendEth(resumed, stranger, '1')
    await resumed.stop()
    const again = await chain({ stateDir: dir, accounts: 1 })
    expect(again.replayed).toBe(3)
    await again.stop()

    const lines = readFileSync(journal, 'utf8').split('\n')
    lines[0] = '{garbage'
    writeFileSync(journal, lines.join('\n'))
    await expect(startDevChain({ stateDir: dir, accounts: 1 })).rejects.toMatchObject({
      code: 'CHAIN_STATE_INVALID',
    })
    writeFileSync(join(dir, 'genesis.json'), '{"timestamp": "soon"}')
    await expect(startDevChain({ stateDir: dir, accounts: 1 })).rejects.toMatchObject({
      code: 'CHAIN_STATE_INVALID',
      message: expect.stringContaining('genesis.json'),
    })
  })
})
