// send's API on top of sendFile, for running the `send` package's own test
// suite (pillarjs/send test/send.js) against sendFile: `send(req, path,
// options).pipe(res)` calls `sendFile(req, res, path, options)`.
//
// What maps: every option sendFile shares with send (`maxage` spelled as
// send also accepts it), the 'headers' event (sendFile's setHeaders hook,
// at the same moment), and an 'error' listener, which gets an error with
// send's `status`/`statusCode` in place of sendFile's own error page. What
// does not: the 'directory', 'file', 'stream' and 'end' events and the
// error's other fields (`code`, `message` of the cause): sendFile reports
// those in its result instead. scripts/send-suite.js lists the tests that
// rely on them.
'use strict'

const { EventEmitter } = require('node:events')
const { STATUS_CODES } = require('node:http')
const { sendFile } = require('../..')

class Send extends EventEmitter {
  constructor(req, path, options) {
    super()
    this.req = req
    this.path = path
    this.options = { ...(options || {}) }
  }

  pipe(res) {
    const opts = { ...this.options }
    if (opts.maxage !== undefined && opts.maxAge === undefined) opts.maxAge = opts.maxage
    delete opts.maxage
    if (this.listenerCount('headers') > 0) {
      opts.setHeaders = (r, file, stat) => this.emit('headers', r, file, stat)
    }
    if (this.listenerCount('error') > 0) this.interceptErrorPage(res)
    sendFile(this.req, res, this.path, opts).catch((err) => {
      if (this.listenerCount('error') > 0) return this.emit('error', err)
      if (!res.headersSent) {
        res.statusCode = 500
        res.end(STATUS_CODES[500])
      } else {
        res.destroy()
      }
    })
    return res
  }

  /**
   * send hands an error to its 'error' listeners instead of writing a page:
   * the page sendFile starts to write (a status of 400 or more, before
   * anything was sent) is dropped with its own headers (type, length and
   * the two security headers; others it set, such as a 416's
   * Content-Range, stay, as with send), and the listeners get `{ status,
   * statusCode, expose, headers }`, as send makes them with http-errors.
   */
  interceptErrorPage(res) {
    const end = res.end
    res.end = (...args) => {
      res.end = end
      if (res.statusCode < 400 || res.headersSent) return end.apply(res, args)
      const status = res.statusCode
      for (const name of PAGE_HEADERS) res.removeHeader(name)
      const headers = {}
      const range = res.getHeader('Content-Range')
      if (range !== undefined) headers['Content-Range'] = range
      res.statusCode = 200
      const err = new Error(STATUS_CODES[status] || String(status))
      err.status = err.statusCode = status
      err.expose = status < 500
      err.headers = headers
      this.emit('error', err)
      return res
    }
  }
}

/** The headers of sendFile's own error page. */
const PAGE_HEADERS = ['Content-Type', 'Content-Length', 'Content-Security-Policy', 'X-Content-Type-Options']

module.exports = function send(req, path, options) {
  return new Send(req, path, options)
}
