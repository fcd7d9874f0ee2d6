// Tests of what only the native engine does (its counters, zero-copy
// bodies, batching, its own threads): skipped on the JavaScript fallback
// (backend 'node'), where fs does the work. Apart from helpers.ts, which
// must load outside ava (the fuzzer's replays).

import test from 'ava'
import { ON_ENGINE } from './helpers'

/** A test of the native engine alone: skipped on 'node'. */
export const engineTest: typeof test = ON_ENGINE ? test : (test.skip as unknown as typeof test)
/** engineTest, serial. */
export const engineTestSerial: typeof test.serial = ON_ENGINE ? test.serial : (test.serial.skip as unknown as typeof test.serial)
