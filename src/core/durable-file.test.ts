import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { fsyncDirectory, fsyncDirectorySync, writeFileDurable } from './durable-file.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const scratch = () => {
  const d = mkdtempSync(join(tmpdir(), 'mw-durable-'))
  dirs.push(d)
  return d
}

describe('durable files', () => {
  it('writes every byte with the mode asked, and refuses to replace a file when exclusive', () => {
    const dir = scratch()
    const path = join(dir, 'key')
    const data = new Uint8Array(200_000).map((_, i) => i % 251)
    writeFileDurable(path, data, { mode: 0o600, exclusive: true })
    expect(new Uint8Array(readFileSync(path))).toEqual(data)
    if (process.platform !== 'win32') expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(() => writeFileDurable(path, 'other', { exclusive: true })).toThrow(/EEXIST/)
    expect(readFileSync(path).length).toBe(data.length)
    writeFileDurable(path, 'replaced')
    expect(readFileSync(path, 'utf8')).toBe('replaced')
  })

  it('flushes a directory, and treats a path it cannot open as nothing to flush', async () => {
    const dir = scratch()
    writeFileSync(join(dir, 'a'), 'x')
    await expect(fsyncDirectory(dir)).resolves.toBeUndefined()
    await expect(fsyncDirectory(dir, { inline: true })).resolves.toBeUndefined()
    expect(() => fsyncDirectorySync(dir)).not.toThrow()
    await expect(fsyncDirectory(join(dir, 'missing'))).resolves.toBeUndefined()
  })
})
