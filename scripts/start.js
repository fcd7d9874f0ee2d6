#!/usr/bin/env node
// npm start: serves example/ (a page, an image, a seekable video) over HTTP
// with sendFile, as `uring-fs serve example --port $PORT` would; the URL is
// printed once listening, one log line per response follows. Ctrl-C stops it.
'use strict'
const path = require('node:path')
const { main } = require('../bin/uring-fs.js')

main(['serve', path.join(__dirname, '..', 'example'), '--port', process.env.PORT || '8080', '--host', '127.0.0.1'])
