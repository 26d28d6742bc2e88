import { afterAll, describe, expect, it } from 'vitest'
import wabt from 'wabt'
import { JOB_LIMIT_DEFAULTS } from './job-spec.js'
import { SandboxPool, type SandboxTask } from './sandbox-pool.js'
import { tinyClassifierModel, tinyClassifierReference } from './tiny-model.js'

const toolkit = await wabt()
/** Assembles a WASM job from the text format. */
function wat(text: string): Uint8Array {
  const parsed = toolkit.parseWat('job.wat', text)
  const { buffer } = parsed.toBinary({})
  parsed.destroy()
  return new Uint8Array(buffer)
}

/** The job ABI around a body that computes the output from the input at $in with $len bytes. */
const job = (body: string, extra = '') =>
  wat(`(module
  (import "env" "memory" (memory 1))
  (global $top (mut i32) (i32.const 1024))
  (func (export "alloc") (param $n i32) (result i32)
    (local $at i32) (local.set $at (global.get $top))
    (global.set $top (i32.add (global.get $top) (local.get $n))) (local.get $at))
  ${extra}
  (func (export "run") (param $in i32) (param $len i32) (result i32) ${body}))`)

/** Output = the input with every byte plus one, written after it. */
const INCREMENT = job(`
    (local $i i32) (local $out i32)
    (local.set $out (i32.add (local.get $in) (local.get $len)))
    (i32.store (local.get $out) (local.get $len))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (i32.store8 (i32.add (i32.add (local.get $out) (i32.const 4)) (local.get $i))
        (i32.add (i32.load8_u (i32.add (local.get $in) (local.get $i))) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $out)`)
const ENDLESS = job('(loop $forever (br $forever)) (i32.const 0)')
const TRAP = job('unreachable')
/** Claims an output of 16 MiB. */
const HUGE = job('(i32.store (i32.const 0) (i32.const 16777216)) (i32.const 0)')
/** Asks for 2,048 pages (128 MiB) of memory at least. */
const GREEDY = wat(`(module
  (import "env" "memory" (memory 2048))
  (func (export "alloc") (param i32) (result i32) (i32.const 0))
  (func (export "run") (param i32 i32) (result i32) (i32.const 0)))`)
/** Imports a host function: not allowed. */
const AMBIENT = wat(`(module
  (import "env" "memory" (memory 1))
  (import "env" "now" (func $now (result i32)))
  (func (export "alloc") (param i32) (result i32) (i32.const 0))
  (func (export "run") (param i32 i32) (result i32) (drop (call $now)) (i32.const 0)))`)

const limits = { ...JOB_LIMIT_DEFAULTS, timeMs: 500, memoryMb: 16 }
const pool = new SandboxPool({ size: 2 })
afterAll(() => pool.close())

const bytes = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array) => new TextDecoder().decode(b)
const wasmTask = (code: Uint8Array, input = new Uint8Array([1, 2, 3])): SandboxTask => ({
  kind: 'wasm',
  code,
  input,
  limits,
})
const jsTask = (source: string, input: unknown, extra: Partial<SandboxTask> = {}): SandboxTask => ({
  kind: 'js',
  code: bytes(source),
  input: bytes(JSON.stringify(input)),
  limits,
  seed: 'c0ffee0000000000000000000000beef',
  now: 1_800_000_000_000,
  ...extra,
})
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  )

describe('SandboxPool: WASM jobs', () => {
  it('runs a job on its input and returns its output', async () => {
    const r = await pool.run(wasmTask(INCREMENT, new Uint8Array([1, 2, 255])))
    expect([...r.output]).toEqual([2, 3, 0])
  })

  it('stops hostile jobs at their limits with a clear code, and keeps serving everyone else', async () => {
    const started = Date.now()
    const [endless, trap, huge, greedy, ambient, garbage, fine] = await Promise.all([
      codeOf(pool.run(wasmTask(ENDLESS))),
      codeOf(pool.run(wasmTask(TRAP))),
      codeOf(pool.run(wasmTask(HUGE))),
      codeOf(pool.run(wasmTask(GREEDY))),
      codeOf(pool.run(wasmTask(AMBIENT))),
      codeOf(pool.run(wasmTask(new Uint8Array([0, 1, 2, 3])))),
      codeOf(pool.run(wasmTask(INCREMENT))),
    ])
    expect({ endless, trap, huge, greedy, ambient, garbage, fine }).toEqual({
      endless: 'JOB_TIMEOUT',
      trap: 'JOB_FAILED',
      huge: 'JOB_OUTPUT_TOO_LARGE',
      greedy: 'JOB_MEMORY_LIMIT',
      ambient: 'JOB_SPEC_INVALID',
      garbage: 'JOB_SPEC_INVALID',
      fine: 'ok',
    })
    // The endless loop was cut at its deadline (500 ms), not left running.
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(pool.restarts).toBeGreaterThanOrEqual(1)
    // A second endless job and a good one at once: the good one is answered.
    const [again, good] = await Promise.all([
      codeOf(pool.run(wasmTask(ENDLESS))),
      pool.run(wasmTask(INCREMENT, new Uint8Array([7]))),
    ])
    expect(again).toBe('JOB_TIMEOUT')
    expect([...good.output]).toEqual([8])
  })
})

describe('SandboxPool: WASM memory', () => {
  it('lets a job grow its memory up to its limit and no further', async () => {
    /** Output: memory.grow(pages)'s result as 4 little-endian bytes (-1 when refused). */
    const grow = (pages: number) =>
      job(
        `(i32.store (i32.const 0) (i32.const 4)) (i32.store (i32.const 4) (memory.grow (i32.const ${pages}))) (i32.const 0)`,
      )
    const result = async (pages: number) =>
      new DataView((await pool.run(wasmTask(grow(pages)))).output.buffer).getInt32(0, true)
    // 16 MB is 256 pages; the job starts with the 1 page it declares.
    expect(await result(100)).toBe(1)
    expect(await result(255)).toBe(1)
    expect(await result(256)).toBe(-1)
  })
})

describe('SandboxPool: JS jobs in QuickJS', () => {
  it('calls the function with the input and returns its JSON output', async () => {
    const r = await pool.run(jsTask('(input) => ({ sum: input.a + input.b })', { a: 2, b: 3 }))
    expect(JSON.parse(text(r.output))).toEqual({ sum: 5 })
  })

  it('is deterministic: Math.random is seeded from the job id and Date is fixed', async () => {
    const source = '() => [Math.random(), Math.random(), Date.now(), new Date().toISOString()]'
    const [a, b] = await Promise.all([pool.run(jsTask(source, null)), pool.run(jsTask(source, null))])
    expect(text(a.output)).toBe(text(b.output))
    const [r1, r2, now, iso] = JSON.parse(text(a.output))
    expect(r1).not.toBe(r2)
    expect(now).toBe(1_800_000_000_000)
    expect(iso).toBe(new Date(1_800_000_000_000).toISOString())
    const other = await pool.run(jsTask(source, null, { seed: '0123456700000000000000000000beef' }))
    expect(JSON.parse(text(other.output))[0]).not.toBe(r1)
  })

  it('has no I/O: no require, process, fetch or timers', async () => {
    const r = await pool.run(
      jsTask(
        '() => [typeof require, typeof process, typeof fetch, typeof setTimeout, typeof XMLHttpRequest]',
        null,
      ),
    )
    expect(JSON.parse(text(r.output))).toEqual([
      'undefined',
      'undefined',
      'undefined',
      'undefined',
      'undefined',
    ])
  })

  it('stops an endless loop, a memory bomb, a huge output and a throw, each with its code', async () => {
    const [endless, bomb, huge, thrown, syntax, fine] = await Promise.all([
      codeOf(pool.run(jsTask('() => { for (;;) {} }', null))),
      codeOf(pool.run(jsTask('() => { const a = []; for (;;) a.push(new Array(100000).fill(1.5)) }', null))),
      codeOf(pool.run(jsTask('() => "x".repeat(1 << 20)', null))),
      codeOf(pool.run(jsTask('() => { throw new TypeError("no") }', null))),
      codeOf(pool.run(jsTask('() => {', null))),
      codeOf(pool.run(jsTask('(x) => x', 1))),
    ])
    expect(endless).toBe('JOB_TIMEOUT')
    // Near its memory limit QuickJS may be interrupted by the clock before it reports the limit.
    expect(['JOB_MEMORY_LIMIT', 'JOB_TIMEOUT']).toContain(bomb)
    expect({ huge, thrown, syntax, fine }).toEqual({
      huge: 'JOB_OUTPUT_TOO_LARGE',
      thrown: 'JOB_FAILED',
      syntax: 'JOB_FAILED',
      fine: 'ok',
    })
  })
})

describe('ONNX jobs', () => {
  const model = tinyClassifierModel()
  const onnxPool = new SandboxPool({ size: 1 })
  afterAll(() => onnxPool.close())
  const infer = (input: unknown, code: Uint8Array = model) =>
    onnxPool.run({
      kind: 'onnx',
      code,
      input: new TextEncoder().encode(JSON.stringify(input)),
      limits: { ...JOB_LIMIT_DEFAULTS, timeMs: 5_000 },
    })
  const x = { x: { type: 'float32', dims: [1, 4], data: [0.5, -1, 2, 0.25] } }

  it('runs a model on the CPU: the output is what the network computes, rounded, and the same every time', async () => {
    expect(onnxPool.kinds).toContain('onnx')
    const first = JSON.parse(new TextDecoder().decode((await infer(x)).output))
    expect(first.probs).toMatchObject({ type: 'float32', dims: [1, 3] })
    // The same network in float64 by hand: probabilities within float32 rounding.
    const expected = tinyClassifierReference([0.5, -1, 2, 0.25])
    for (const [i, p] of (first.probs.data as number[]).entries())
      expect(p).toBeCloseTo(expected[i] as number, 5)
    expect((first.probs.data as number[]).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5)
    const again = await infer(x)
    expect(new TextDecoder().decode(again.output)).toBe(JSON.stringify(first))
  })

  it('refuses what is not a model, and feeds that do not fit it, before running anything', async () => {
    await expect(infer(x, new TextEncoder().encode('not a model'))).rejects.toMatchObject({
      code: 'JOB_SPEC_INVALID',
    })
    await expect(infer({ y: x.x })).rejects.toMatchObject({
      code: 'JOB_SPEC_INVALID',
      message: expect.stringContaining('"x"'),
    })
    await expect(infer({ x: { ...x.x, data: [1, 2] } })).rejects.toMatchObject({
      code: 'JOB_SPEC_INVALID',
      message: expect.stringContaining('4 values'),
    })
    await expect(infer({ x: { ...x.x, type: 'complex' } })).rejects.toMatchObject({
      code: 'JOB_SPEC_INVALID',
    })
    await expect(infer([1, 2])).rejects.toMatchObject({ code: 'JOB_SPEC_INVALID' })
    // A feed of the wrong shape for the model: the model itself refuses it.
    await expect(infer({ x: { type: 'float32', dims: [1, 2], data: [1, 2] } })).rejects.toMatchObject({
      code: 'JOB_FAILED',
    })
    // And it still serves.
    expect((await infer(x)).output.length).toBeGreaterThan(0)
  })
})
