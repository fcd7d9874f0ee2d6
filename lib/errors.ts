// Node-identical errors: the same classes, codes, properties and messages
// that `fs` gives, so callers can switch from `fs` without touching their
// error handling. The message formats follow Node's lib/internal/errors.js.

import { inspect, getSystemErrorMap } from 'node:util'

export interface SystemError extends Error {
  errno: number
  code: string
  syscall: string
  path?: string
}

const uvErrors = getSystemErrorMap()

/** An error for a failed system call, as `fs` builds it (uvException). */
export function systemError(errno: number, syscall: string, path?: string | Buffer): SystemError {
  const neg = errno > 0 ? -errno : errno
  const [code, desc] = uvErrors.get(neg) ?? ['UNKNOWN', 'unknown error']
  let message = `${code}: ${desc}, ${syscall}`
  const p = path === undefined ? undefined : path.toString()
  if (p !== undefined) message += ` '${p}'`
  const err = new Error(message) as SystemError
  err.errno = neg
  err.code = code
  err.syscall = syscall
  if (p !== undefined) err.path = p
  Error.captureStackTrace?.(err, systemError)
  return err
}

/** Node's stack header for its own errors names the code: `TypeError [CODE]: message`. */
function addCodeToStack(err: Error & { code: string }): void {
  const stack = err.stack
  if (typeof stack !== 'string') return
  const nl = stack.indexOf('\n')
  err.stack = `${err.name} [${err.code}]: ${err.message}${nl === -1 ? '' : stack.slice(nl)}`
}

type ErrorClass = typeof Error | typeof TypeError | typeof RangeError

/**
 * Node's internal error classes: the base class with a `code`, the code in
 * the stack header and toString(), and (as in Node) `err.constructor` the
 * base class itself.
 */
function nodeErrorClass<B extends ErrorClass>(Base: B): new (code: string, message: string) => InstanceType<B> & { code: string } {
  class NodeError extends (Base as typeof Error) {
    code: string
    constructor(code: string, message: string) {
      super(message)
      this.code = code
      addCodeToStack(this)
    }
    toString(): string {
      return `${this.name} [${this.code}]: ${this.message}`
    }
  }
  Object.defineProperty(NodeError.prototype, 'constructor', { get: () => Base, configurable: true })
  return NodeError as unknown as new (code: string, message: string) => InstanceType<B> & { code: string }
}

const NodeError = nodeErrorClass(Error)
const NodeTypeError = nodeErrorClass(TypeError)
const NodeRangeError = nodeErrorClass(RangeError)

const kTypes = ['string', 'function', 'number', 'object', 'Function', 'Object', 'boolean', 'bigint', 'symbol']
const classRegExp = /^([A-Z][a-z0-9]*)+$/

function determineSpecificType(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  switch (typeof value) {
    case 'bigint':
      return `type bigint (${value}n)`
    case 'number':
      if (value === 0) return 1 / value === -Infinity ? 'type number (-0)' : 'type number (0)'
      if (value !== value) return 'type number (NaN)'
      if (value === Infinity) return 'type number (Infinity)'
      if (value === -Infinity) return 'type number (-Infinity)'
      return `type number (${value})`
    case 'boolean':
      return value ? 'type boolean (true)' : 'type boolean (false)'
    case 'symbol':
      return `type symbol (${String(value)})`
    case 'function':
      return `function ${value.name}`
    case 'object': {
      const ctor = (value as { constructor?: { name?: string } }).constructor
      if (ctor && 'name' in ctor) return `an instance of ${ctor.name}`
      return inspect(value, { depth: -1 })
    }
    case 'string': {
      const v = value.length > 28 ? `${value.slice(0, 25)}...` : value
      return v.indexOf("'") === -1 ? `type string ('${v}')` : `type string (${JSON.stringify(v)})`
    }
    default: {
      let inspected = inspect(value, { colors: false })
      if (inspected.length > 28) inspected = `${inspected.slice(0, 25)}...`
      return `type ${typeof value} (${inspected})`
    }
  }
}

function joinAlternatives(list: string[]): string {
  if (list.length > 2) return `${list.slice(0, -1).join(', ')}, or ${list[list.length - 1]}`
  return list.join(' or ')
}

/** ERR_INVALID_ARG_TYPE with Node's message. */
export function invalidArgType(name: string, expected: string | string[], actual: unknown): TypeError {
  const exp = Array.isArray(expected) ? expected : [expected]
  let msg = 'The '
  if (name.endsWith(' argument')) msg += `${name} `
  else msg += `"${name}" ${name.includes('.') ? 'property' : 'argument'} `
  msg += 'must be '
  const types: string[] = []
  const instances: string[] = []
  const other: string[] = []
  for (const value of exp) {
    if (kTypes.includes(value)) types.push(value.toLowerCase())
    else if (classRegExp.test(value)) instances.push(value)
    else other.push(value)
  }
  if (instances.length > 0) {
    const pos = types.indexOf('object')
    if (pos !== -1) {
      types.splice(pos, 1)
      instances.push('Object')
    }
  }
  if (types.length > 0) {
    if (types.length > 2) msg += `one of type ${joinAlternatives(types)}`
    else if (types.length === 2) msg += `one of type ${types[0]} or ${types[1]}`
    else msg += `of type ${types[0]}`
    if (instances.length > 0 || other.length > 0) msg += ' or '
  }
  if (instances.length > 0) {
    msg += `an instance of ${joinAlternatives(instances)}`
    if (other.length > 0) msg += ' or '
  }
  if (other.length > 0) {
    if (other.length > 2) msg += `one of ${joinAlternatives(other)}`
    else if (other.length === 2) msg += `one of ${other[0]} or ${other[1]}`
    else msg += other[0].toLowerCase() === other[0] ? `an ${other[0]}` : other[0]
  }
  msg += `. Received ${determineSpecificType(actual)}`
  return new NodeTypeError('ERR_INVALID_ARG_TYPE', msg)
}

/** ERR_INVALID_ARG_VALUE with Node's message. */
export function invalidArgValue(name: string, value: unknown, reason = 'is invalid'): TypeError {
  let inspected = inspect(value)
  if (inspected.length > 128) inspected = `${inspected.slice(0, 128)}...`
  const type = name.includes('.') ? 'property' : 'argument'
  return new NodeTypeError('ERR_INVALID_ARG_VALUE', `The ${type} '${name}' ${reason}. Received ${inspected}`)
}

function addNumericalSeparator(val: string): string {
  let res = ''
  let i = val.length
  const start = val[0] === '-' ? 1 : 0
  for (; i >= start + 4; i -= 3) res = `_${val.slice(i - 3, i)}${res}`
  return `${val.slice(0, i)}${res}`
}

/** ERR_OUT_OF_RANGE with Node's message. */
export function outOfRange(name: string, range: string, input: unknown): RangeError {
  let received: string
  if (Number.isInteger(input) && Math.abs(input as number) > 2 ** 32) {
    received = addNumericalSeparator(String(input))
  } else if (typeof input === 'bigint') {
    received = String(input)
    if (input > 2n ** 32n || input < -(2n ** 32n)) received = addNumericalSeparator(received)
    received += 'n'
  } else {
    received = inspect(input)
  }
  return new NodeRangeError(
    'ERR_OUT_OF_RANGE',
    `The value of "${name}" is out of range. It must be ${range}. Received ${received}`,
  )
}

/** ERR_STREAM_DESTROYED with Node's message: an I/O call completed after destroy(). */
export function streamDestroyed(name: string): Error {
  return new NodeError('ERR_STREAM_DESTROYED', `Cannot call ${name} after a stream was destroyed`)
}

/** ERR_FS_FILE_TOO_LARGE with Node's message: readFile of more than 2 GiB. */
export function fileTooLarge(size: number): RangeError {
  return new NodeRangeError('ERR_FS_FILE_TOO_LARGE', `File size (${size}) is greater than 2 GiB`)
}
