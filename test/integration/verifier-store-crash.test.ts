import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { openVerifierStore } from '../../src/verifier/store.js'

const WRITER = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/verifier-store-writer.ts')
const dir = mkdtempSync(join(tmpdir(), 'mw-store-crash-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Runs the writer from `start`, kills it with SIGKILL after `ms`, and returns the writes it acknowledged. */
function writeThenKill(path: string, start: number, ms: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, path, String(start)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    let timer: ReturnType<typeof setTimeout> | undefined
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      // Start the clock at the first acknowledged write (the loader takes a while).
      timer ??= setTimeout(() => child.kill('SIGKILL'), ms)
    })
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString()
    })
    child.on('exit', (_code, signal) => {
      clearTimeout(timer)
      if (signal !== 'SIGKILL') reject(new Error(`writer exited by itself: ${err}`))
      // A line cut by the kill was not acknowledged.
      const acked = out
        .split('\n')
        .filter((line) => /^ack \d+$/.test(line))
        .map((line) => Number(line.slice(4)))
      resolve(acked)
    })
  })
}

describe('verifier store under kill -9', () => {
  it('loses no acknowledged write across 8 kills at random moments', async ({ annotate }) => {
    const path = join(dir, 'verifier.db')
    const acked: number[] = []
    let next = 0
    for (let run = 0; run < 8; run++) {
      const got = await writeThenKill(path, next, 50 + Math.floor(Math.random() * 250))
      acked.push(...got)
      next = (got.at(-1) ?? next) + 1
    }
    expect(acked.length).toBeGreaterThan(8)
    const store = openVerifierStore(path)
    try {
      const counts = store.challengeCounts(1)
      const observed = new Set(store.observations(1).map((o) => o.body.node))
      for (const i of acked) {
        expect(counts.get(`node-${i}`)?.challenges, `challenge ${i}`).toBe(1)
        expect(observed.has(`node-${i}`), `observation ${i}`).toBe(true)
      }
    } finally {
      store.close()
    }
    await annotate(`${acked.length} acknowledged writes over 8 kills, all present after reopening`)
  }, 60_000)
})
