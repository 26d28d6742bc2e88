#!/usr/bin/env node
// The `meshwork` command. The polyfill loads first, before anything that may import libp2p.
import '../dist/core/polyfill.js'
import { main } from '../dist/cli/main.js'

process.exitCode = await main(process.argv.slice(2))
