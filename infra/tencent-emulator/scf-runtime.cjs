// The emulator's SCF Node.js runtime: one process per function instance, as SCF runs one container per
// instance. It loads the function's code once (a cold start), then runs one invocation at a time as the
// emulator sends them over IPC (a warm instance keeps its module state, its connections and its globals).
// The handler is called as SCF calls it: `main_handler(event, context[, callback])`, async or callback style.
// Usage (by infra/tencent-emulator/scf.ts only): node scf-runtime.cjs <code dir> <file.handler>
'use strict';
const path = require('node:path');

const [codeDir, handlerSpec] = process.argv.slice(2);
const dot = handlerSpec.lastIndexOf('.');
const file = path.resolve(codeDir, `${handlerSpec.slice(0, dot)}.js`);
const exportName = handlerSpec.slice(dot + 1);

function describe(error) {
  if (error instanceof Error) return { name: error.name, message: error.message, stack: error.stack };
  return { name: 'Error', message: String(error) };
}

function load() {
  try {
    const loaded = require(file)[exportName];
    if (typeof loaded !== 'function')
      throw new Error(`${handlerSpec}: ${exportName} is not an exported function`);
    return loaded;
  } catch (error) {
    process.send({ type: 'init-error', error: describe(error) }, () => process.exit(1));
    return undefined;
  }
}

const handler = load();

process.on('message', (message) => {
  if (!handler) return;
  if (message?.type !== 'invoke') return;
  const { requestId, event, context, deadline } = message;
  let settled = false;
  const finish = (error, value) => {
    if (settled) return;
    settled = true;
    let reply;
    if (error) reply = { type: 'result', requestId, ok: false, error: describe(error) };
    else {
      // What SCF returns is the JSON of the value (RetMsg); undefined becomes null.
      let json;
      try {
        json = JSON.stringify(value === undefined ? null : value);
      } catch (e) {
        reply = { type: 'result', requestId, ok: false, error: describe(e) };
      }
      reply ??= { type: 'result', requestId, ok: true, value: json };
    }
    process.send(reply);
  };
  const ctx = { ...context, getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()) };
  try {
    const returned = handler(event, ctx, finish);
    if (returned && typeof returned.then === 'function') returned.then((v) => finish(null, v), finish);
    else if (handler.length < 3) finish(null, returned);
  } catch (error) {
    finish(error);
  }
});

// The platform went away (the emulator's process ended): so does the instance, as SCF's would.
process.on('disconnect', () => process.exit(0));

// An unhandled error kills the instance, as it would SCF's; the emulator reports the invocation as failed.
process.on('uncaughtException', (error) => {
  process.send({ type: 'crash', error: describe(error) }, () => process.exit(1));
});
if (handler) process.send({ type: 'ready' });
