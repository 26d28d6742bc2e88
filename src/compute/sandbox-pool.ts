import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { ComputeError, type ComputeErrorCode } from './errors.js'
import type { JobKind, JobLimits } from './job-spec.js'

/**
 * The node's sandboxes: a pool of worker threads, as many as the machine has cores, each running
 * one job at a time. WASM jobs get no imports but their memory (env.memory, sized by the job's limit)
 * and the ABI `alloc(len) -> ptr`, `run(ptr, len) -> out` (out: a u32 little-endian length, then
 * the bytes). JS jobs run in QuickJS with memory and interrupt limits, `Math.random` seeded from the
 * job id, a fixed `Date`, and no I/O (QuickJS has none). ONNX jobs run a model on onnxruntime's CPU
 * backend, one thread, floats in the output rounded to 6 significant digits so that independent
 * machines agree (docs/protocol.md, "Job spec"). Whatever a job does, the pool answers by its
 * deadline: a worker still busy then is terminated and replaced, so an endless loop costs one worker
 * restart and nobody else's job.
 */

/** A job as a sandbox runs it. */
export interface SandboxTask {
  kind: JobKind
  /** WASM: the module's bytes. JS: the function's UTF-8 source. ONNX: the model. */
  code: Uint8Array
  /** WASM: raw input bytes. JS: UTF-8 JSON of the argument. ONNX: UTF-8 JSON of the feeds. */
  input: Uint8Array
  limits: JobLimits
  /** JS only: seeds Math.random (the job id). */
  seed?: string
  /** JS only: what Date.now() returns (unix ms). */
  now?: number
}

/** A finished job: its output, and how long it ran in the sandbox (ms). */
export interface SandboxResult {
  output: Uint8Array
  ms: number
}

/** Time a worker gets after a job's limit before it is terminated (its own checks answer first). */
const GRACE_MS = 100
/** Time a worker may take to start a job (a fresh worker loads QuickJS first). */
const STARTUP_MS = 15_000

interface Slot {
  worker: Worker
  busy: boolean
}

interface Pending {
  task: SandboxTask
  resolve: (r: SandboxResult) => void
  reject: (e: unknown) => void
}

/** A pool of sandbox workers; {@link SandboxPool.close} stops them. */
export class SandboxPool {
  readonly size: number
  readonly #slots: Slot[] = []
  readonly #queue: Pending[] = []
  readonly #quickjsPath: string
  readonly #ortPath: string | undefined
  #nextId = 0
  #closed = false
  /** Workers replaced after a timeout or a crash (for metrics and tests). */
  restarts = 0

  constructor(options: { size?: number } = {}) {
    this.size = Math.max(1, options.size ?? availableParallelism())
    const require = createRequire(import.meta.url)
    this.#quickjsPath = require.resolve('quickjs-emscripten')
    this.#ortPath = onnxRuntimePath(require)
  }

  /** The job kinds this pool runs (ONNX only where onnxruntime-node is installed). */
  get kinds(): JobKind[] {
    return this.#ortPath === undefined ? ['wasm', 'js'] : ['wasm', 'js', 'onnx']
  }

  /** Jobs running and waiting now. */
  get load(): { running: number; queued: number } {
    return { running: this.#slots.filter((s) => s.busy).length, queued: this.#queue.length }
  }

  /**
   * Runs a job; resolves with its output or rejects with a {@link ComputeError}: JOB_TIMEOUT,
   * JOB_MEMORY_LIMIT, JOB_OUTPUT_TOO_LARGE, JOB_FAILED (it threw or trapped), or JOB_SPEC_INVALID (a
   * WASM module that does not compile or imports more than its memory).
   */
  run(task: SandboxTask): Promise<SandboxResult> {
    if (this.#closed) return Promise.reject(new ComputeError('JOB_FAILED', 'the sandbox pool is closed'))
    return new Promise((resolve, reject) => {
      this.#queue.push({ task, resolve, reject })
      this.#dispatch()
    })
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const p of this.#queue.splice(0)) p.reject(new ComputeError('JOB_FAILED', 'the sandbox pool closed'))
    await Promise.all(this.#slots.splice(0).map((s) => s.worker.terminate()))
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      let slot = this.#slots.find((s) => !s.busy)
      if (slot === undefined && this.#slots.length < this.size) {
        slot = { worker: this.#spawn(), busy: false }
        this.#slots.push(slot)
      }
      if (slot === undefined) return
      this.#start(slot, this.#queue.shift() as Pending)
    }
  }

  #spawn(): Worker {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { quickjsPath: this.#quickjsPath, ortPath: this.#ortPath },
      // The JS heap of the glue; WASM and QuickJS memories are limited per job.
      resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32 },
    })
    worker.unref()
    return worker
  }

  #start(slot: Slot, pending: Pending): void {
    slot.busy = true
    const id = ++this.#nextId
    const { worker } = slot
    let settled = false
    const finish = (replace: boolean) => {
      settled = true
      clearTimeout(timer)
      worker.off('message', onMessage)
      worker.off('error', onError)
      worker.off('exit', onExit)
      if (replace) {
        this.restarts++
        void worker.terminate()
        const at = this.#slots.indexOf(slot)
        if (at >= 0) this.#slots.splice(at, 1)
      } else {
        slot.busy = false
      }
      if (!this.#closed) this.#dispatch()
    }
    const fail = (code: ComputeErrorCode, message: string, replace: boolean) => {
      if (settled) return
      finish(replace)
      pending.reject(new ComputeError(code, message))
    }
    const onMessage = (m: {
      id: number
      started?: boolean
      ok: boolean
      output?: Uint8Array
      ms?: number
      code?: ComputeErrorCode
      message?: string
    }) => {
      if (m.id !== id || settled) return
      if (m.started) {
        // The deadline counts from here: loading a runtime into a fresh worker is not the job's time.
        clearTimeout(timer)
        timer = setTimeout(
          () => fail('JOB_TIMEOUT', `the job ran past its limit of ${pending.task.limits.timeMs} ms`, true),
          pending.task.limits.timeMs + GRACE_MS,
        )
        return
      }
      if (m.ok) {
        finish(false)
        pending.resolve({ output: m.output as Uint8Array, ms: m.ms as number })
      } else {
        fail(m.code ?? 'JOB_FAILED', m.message ?? 'the job failed', false)
      }
    }
    const onError = (err: Error & { code?: string }) =>
      err.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? fail('JOB_MEMORY_LIMIT', 'the job exhausted its sandbox memory', true)
        : fail('JOB_FAILED', `the sandbox failed: ${err.message}`, true)
    const onExit = () => fail('JOB_FAILED', 'the sandbox stopped', true)
    // Until the worker starts the job (a fresh one first loads its runtime), a generous bound.
    let timer = setTimeout(
      () => fail('JOB_FAILED', 'the sandbox did not start the job', true),
      STARTUP_MS + pending.task.limits.timeMs,
    )
    worker.on('message', onMessage)
    worker.on('error', onError)
    worker.on('exit', onExit)
    const { task } = pending
    worker.postMessage({
      id,
      kind: task.kind,
      code: task.code,
      input: task.input,
      limits: task.limits,
      seed: seedOf(task.seed ?? ''),
      now: task.now ?? 0,
    })
  }
}

/** Where onnxruntime-node is, if it is installed (it is an optional part of a node). */
function onnxRuntimePath(require: NodeRequire): string | undefined {
  try {
    return require.resolve('onnxruntime-node')
  } catch {
    return undefined
  }
}

/** A 32-bit seed from a job id (its first 8 hex digits; 0 when there are none). */
function seedOf(id: string): number {
  const hex = /^[0-9a-f]{8}/i.exec(id)?.[0]
  return hex === undefined ? 0 : Number.parseInt(hex, 16) | 0
}

/**
 * The worker's code (CommonJS, evaluated: no file to ship or transpile). It keeps compiled WASM
 * modules by the code's hash and one QuickJS module, and answers each task with its output or an
 * error code.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const modules = new Map()
let quickjs

class JobError extends Error {
  constructor(code, message) { super(message); this.code = code }
}

/** The minimum pages of the module's imported memory, read from its import section (0 if none). */
function memoryMinimum(code) {
  let at = 8
  const leb = () => {
    let result = 0
    let shift = 0
    for (;;) {
      const byte = code[at++]
      if (byte === undefined) throw new Error('truncated')
      result += (byte & 0x7f) * 2 ** shift
      if ((byte & 0x80) === 0) return result
      shift += 7
    }
  }
  while (at < code.length) {
    const id = code[at++]
    const size = leb()
    const end = at + size
    if (id !== 2) { at = end; continue }
    const count = leb()
    for (let i = 0; i < count; i++) {
      at += leb() // module name
      at += leb() // field name
      const kind = code[at++]
      if (kind === 0) { leb(); continue } // function: type index
      if (kind === 1) { at++; const flags = code[at++]; leb(); if (flags & 1) leb(); continue } // table
      if (kind === 3) { at += 2; continue } // global: type, mutability
      if (kind === 2) { at++; return leb() } // memory: flags, then the minimum
      throw new Error('unknown import kind')
    }
    return 0
  }
  return 0
}

function compile(code) {
  const key = createHash('sha256').update(code).digest('hex')
  let mod = modules.get(key)
  if (mod !== undefined) return mod
  try {
    mod = new WebAssembly.Module(code)
  } catch (err) {
    throw new JobError('JOB_SPEC_INVALID', 'the code is not a valid WebAssembly module: ' + err.message)
  }
  const imports = WebAssembly.Module.imports(mod)
  const only = imports.length === 1 && imports[0].module === 'env' && imports[0].name === 'memory' && imports[0].kind === 'memory'
  if (!only) {
    const list = imports.map((i) => i.module + '.' + i.name).join(', ') || 'none'
    throw new JobError('JOB_SPEC_INVALID', 'a WASM job imports exactly one thing, its memory as env.memory (found: ' + list + ')')
  }
  const names = WebAssembly.Module.exports(mod).map((e) => e.name)
  if (!names.includes('run') || !names.includes('alloc')) {
    throw new JobError('JOB_SPEC_INVALID', 'a WASM job exports alloc(len) and run(ptr, len)')
  }
  try {
    mod.minPages = memoryMinimum(code)
  } catch {
    mod.minPages = 0
  }
  if (modules.size >= 32) modules.delete(modules.keys().next().value)
  modules.set(key, mod)
  return mod
}

function runWasm(task) {
  const mod = compile(task.code)
  parentPort.postMessage({ id: task.id, started: true })
  const pages = task.limits.memoryMb * 16
  // As much as the module declares it needs to start (it grows up to the limit), not the limit:
  // a fresh memory of the full limit per job would cost more than a small job itself.
  if (mod.minPages > pages) throw new JobError('JOB_MEMORY_LIMIT', 'the module needs ' + mod.minPages + ' pages of memory, more than its limit of ' + task.limits.memoryMb + ' MB')
  const memory = new WebAssembly.Memory({ initial: Math.max(1, mod.minPages), maximum: pages })
  let instance
  try {
    instance = new WebAssembly.Instance(mod, { env: { memory } })
  } catch (err) {
    throw new JobError('JOB_MEMORY_LIMIT', 'the module needs more memory than its limit of ' + task.limits.memoryMb + ' MB (' + err.message + ')')
  }
  const { alloc, run } = instance.exports
  try {
    const at = alloc(task.input.length) >>> 0
    if (at + task.input.length > memory.buffer.byteLength) throw new JobError('JOB_FAILED', 'alloc returned memory out of bounds')
    new Uint8Array(memory.buffer).set(task.input, at)
    const out = run(at, task.input.length) >>> 0
    const view = new DataView(memory.buffer)
    if (out + 4 > memory.buffer.byteLength) throw new JobError('JOB_FAILED', 'run returned an output pointer out of bounds')
    const length = view.getUint32(out, true)
    if (length > task.limits.outputBytes) throw new JobError('JOB_OUTPUT_TOO_LARGE', 'the output of ' + length + ' bytes is over its limit of ' + task.limits.outputBytes)
    if (out + 4 + length > memory.buffer.byteLength) throw new JobError('JOB_FAILED', 'the output runs past the end of memory')
    return new Uint8Array(memory.buffer.slice(out + 4, out + 4 + length))
  } catch (err) {
    if (err instanceof JobError) throw err
    if (err instanceof RangeError) throw new JobError('JOB_FAILED', 'the job overflowed its stack: ' + err.message)
    throw new JobError('JOB_FAILED', 'the job trapped: ' + err.message)
  }
}

async function runJs(task) {
  if (quickjs === undefined) quickjs = await require(workerData.quickjsPath).getQuickJS()
  parentPort.postMessage({ id: task.id, started: true })
  const runtime = quickjs.newRuntime()
  try {
    runtime.setMemoryLimit(task.limits.memoryMb * 1024 * 1024)
    runtime.setMaxStackSize(1024 * 1024)
    const deadline = Date.now() + task.limits.timeMs
    runtime.setInterruptHandler(() => Date.now() > deadline)
    const context = runtime.newContext()
    try {
      const prelude = '(() => {' +
        'let s = ' + task.seed + ';' +
        'Math.random = () => { s = (s + 0x6d2b79f5) | 0; let t = Math.imul(s ^ (s >>> 15), 1 | s);' +
        ' t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296 };' +
        'const T = ' + task.now + '; const D = Date;' +
        'globalThis.Date = class extends D { constructor(...a) { if (a.length === 0) super(T); else super(...a) } static now() { return T } };' +
        '})()'
      const pre = context.evalCode(prelude)
      if (pre.error) { pre.error.dispose(); throw new JobError('JOB_FAILED', 'the sandbox could not start') }
      pre.value.dispose()
      const source = new TextDecoder().decode(task.code)
      const input = new TextDecoder().decode(task.input)
      const result = context.evalCode('JSON.stringify((' + source + '\\n)(JSON.parse(' + JSON.stringify(input) + ')))', 'job.js')
      if (result.error) {
        const e = context.dump(result.error)
        result.error.dispose()
        const message = (e && e.message) || String(e)
        if (message === 'interrupted') throw new JobError('JOB_TIMEOUT', 'the job ran past its limit of ' + task.limits.timeMs + ' ms')
        if (message === 'out of memory') throw new JobError('JOB_MEMORY_LIMIT', 'the job ran out of its ' + task.limits.memoryMb + ' MB')
        throw new JobError('JOB_FAILED', 'the job threw: ' + ((e && e.name) ? e.name + ': ' : '') + message)
      }
      const text = context.typeof(result.value) === 'string' ? context.getString(result.value) : 'null'
      result.value.dispose()
      const bytes = new TextEncoder().encode(text)
      if (bytes.length > task.limits.outputBytes) throw new JobError('JOB_OUTPUT_TOO_LARGE', 'the output of ' + bytes.length + ' bytes is over its limit of ' + task.limits.outputBytes)
      return bytes
    } finally {
      context.dispose()
    }
  } finally {
    runtime.dispose()
  }
}

const ONNX_TYPES = { float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array }
const sessions = new Map()
let ort

async function runOnnx(task) {
  if (ort === undefined) {
    if (!workerData.ortPath) throw new JobError('JOB_FAILED', 'this node cannot run ONNX models (onnxruntime-node is not installed)')
    ort = require(workerData.ortPath)
  }
  parentPort.postMessage({ id: task.id, started: true })
  const key = createHash('sha256').update(task.code).digest('hex')
  let session = sessions.get(key)
  if (session === undefined) {
    try {
      session = await ort.InferenceSession.create(task.code, {
        executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1,
        graphOptimizationLevel: 'basic', enableCpuMemArena: false, logSeverityLevel: 3,
      })
    } catch (err) {
      throw new JobError('JOB_SPEC_INVALID', 'the code is not an ONNX model this node can run: ' + err.message)
    }
    if (sessions.size >= 8) { const [oldest] = sessions.keys(); sessions.get(oldest).release(); sessions.delete(oldest) }
    sessions.set(key, session)
  }
  let feeds
  try { feeds = JSON.parse(new TextDecoder().decode(task.input)) } catch { feeds = undefined }
  if (feeds === null || typeof feeds !== 'object' || Array.isArray(feeds)) throw new JobError('JOB_SPEC_INVALID', 'the input of an ONNX job is JSON: {"<input name>": {"type", "dims", "data"}}')
  const tensors = {}
  let bytes = 0
  for (const name of session.inputNames) {
    const f = feeds[name]
    if (f === undefined) throw new JobError('JOB_SPEC_INVALID', 'the input has no feed for the model input "' + name + '"')
    const Type = ONNX_TYPES[f.type]
    if (Type === undefined) throw new JobError('JOB_SPEC_INVALID', 'feed "' + name + '": type must be one of ' + Object.keys(ONNX_TYPES).join(', '))
    if (!Array.isArray(f.dims) || f.dims.length > 8 || !f.dims.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new JobError('JOB_SPEC_INVALID', 'feed "' + name + '": dims must be up to 8 whole numbers')
    const size = f.dims.reduce((a, b) => a * b, 1)
    if (!Array.isArray(f.data) || f.data.length !== size) throw new JobError('JOB_SPEC_INVALID', 'feed "' + name + '": data must hold ' + size + ' values (the product of dims)')
    bytes += size * Type.BYTES_PER_ELEMENT
    if (bytes > task.limits.memoryMb * 1024 * 1024) throw new JobError('JOB_MEMORY_LIMIT', 'the feeds need more than the ' + task.limits.memoryMb + ' MB of the job')
    let data
    try {
      data = f.type === 'int64' ? BigInt64Array.from(f.data, (v) => BigInt(v)) : f.type === 'bool' ? Uint8Array.from(f.data, (v) => (v ? 1 : 0)) : Type.from(f.data, Number)
    } catch { throw new JobError('JOB_SPEC_INVALID', 'feed "' + name + '": data does not fit type ' + f.type) }
    tensors[name] = new ort.Tensor(f.type, data, f.dims)
  }
  let results
  try {
    results = await session.run(tensors)
  } catch (err) {
    throw new JobError('JOB_FAILED', 'the model failed: ' + err.message)
  }
  const out = {}
  for (const name of session.outputNames) {
    const t = results[name]
    const float = t.type === 'float32' || t.type === 'float64' || t.type === 'float16'
    out[name] = {
      type: t.type,
      dims: Array.from(t.dims, Number),
      data: Array.from(t.data, (v) => typeof v === 'bigint' ? v.toString() : float ? Number(Number(v).toPrecision(6)) : v),
    }
  }
  const text = new TextEncoder().encode(JSON.stringify(out))
  if (text.length > task.limits.outputBytes) throw new JobError('JOB_OUTPUT_TOO_LARGE', 'the output of ' + text.length + ' bytes is over its limit of ' + task.limits.outputBytes)
  return text
}

parentPort.on('message', async (task) => {
  const started = performance.now()
  try {
    const output = task.kind === 'wasm' ? runWasm(task) : task.kind === 'onnx' ? await runOnnx(task) : await runJs(task)
    parentPort.postMessage({ id: task.id, ok: true, output, ms: performance.now() - started }, [output.buffer])
  } catch (err) {
    parentPort.postMessage({ id: task.id, ok: false, code: err.code || 'JOB_FAILED', message: err.message })
  }
})
`
