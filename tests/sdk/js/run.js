// Keen's JavaScript tracking SDK (keen-tracking) driven by the conformance tests.
// stdin: {"client": {"projectId", "writeKey", "host", "port"}, "calls": [{"method", "args"}]}
// stdout: one JSON list, per call {"ok": true, "result": ...} or {"ok": false, "error": {...}}.
'use strict';

const fs = require('fs');
const KeenTracking = require('keen-tracking');

async function main() {
  const input = JSON.parse(fs.readFileSync(0, 'utf8'));
  const { projectId, writeKey, host, port } = input.client;
  const client = new KeenTracking({
    projectId,
    writeKey,
    protocol: 'http',
    host: `${host}:${port}`,
    // The SDK's own way to point Node's http.request at a local server.
    nodeRequestConfig: { host, port },
  });
  const results = [];
  for (const call of input.calls) {
    try {
      const result = await client[call.method](...call.args);
      results.push({ ok: true, result });
    } catch (err) {
      const error = err instanceof Error
        ? { message: err.message, code: err.code === undefined ? null : err.code }
        : { message: String(err), code: null };
      results.push({ ok: false, error });
    }
  }
  process.stdout.write(JSON.stringify(results));
}

main().then(
  // The SDK's deferred-event queue keeps a timer: exit once every call has answered.
  () => process.exit(0),
  (err) => {
    process.stderr.write(String(err && err.stack ? err.stack : err));
    process.exit(1);
  },
);
