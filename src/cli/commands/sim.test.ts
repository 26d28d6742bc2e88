import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { main } from '../main.js'

const dir = mkdtempSync(join(tmpdir(), 'mw-sim-args-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Runs the CLI in this process and returns its exit code and what it wrote to stderr. */
async function run(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = ''
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk)
    return true
  })
  try {
    return { code: await main(args), stderr }
  } finally {
    spy.mockRestore()
  }
}

describe('meshwork sim run: input', () => {
  it('refuses bad input before running, with one line that names the fix', async () => {
    const cases: [string[], number, RegExp][] = [
      [
        ['sim', 'run', 'nope'],
        1,
        /there is no scenario "nope"\. Use one of: baseline, .* \[SIM_UNKNOWN_SCENARIO\]/,
      ],
      [
        ['sim', 'run', 'lazy', '--nodes', '0'],
        2,
        /--nodes must be a whole number from 1 to 1000000, got "0"/,
      ],
      [['sim', 'run', 'lazy', '--epochs', '1.5'], 2, /--epochs must be a whole number from 1 to 8760/],
      [['sim', 'run', 'lazy', '--verifiers', '99'], 2, /--verifiers must be a whole number from 1 to 32/],
      [['sim', 'run', 'lazy', '--seed', '-1'], 2, /--seed must be a whole number from 0 to 4294967295/],
      [['sim', 'run', 'lazy', '--engine', 'slow'], 2, /--engine must be stack or fast/],
      [
        ['sim', 'run', 'sybil', '--engine', 'stack', '--nodes', '5000'],
        2,
        /at most 2000 nodes.*--engine fast/,
      ],
      [
        ['sim', 'run', 'lazy', '--report', join(dir, 'missing', 'r.html')],
        2,
        /--report: directory .* does not exist/,
      ],
      [['sim', 'run', 'lazy', '--report', dir], 2, /is a directory/],
      [['sim', 'run', 'colluding-verifiers', '--verifiers', '2'], 2, /needs at least 3 verifiers/],
    ]
    for (const [args, code, message] of cases) {
      const r = await run(args)
      expect(r.code, args.join(' ')).toBe(code)
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1)
      expect(r.stderr).toMatch(message)
    }
  })
})
