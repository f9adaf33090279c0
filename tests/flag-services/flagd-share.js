// What an application's flagd provider sees of a flag definition that launch-host wrote.
// usage: node flagd-share.js FILE FLAG N  →  {"on": k, "of": N}
// The file is first validated against flagd's published JSON schema (flagd-schema/, json
// schema release 0.2.15) and parsed by @openfeature/flagd-core with strict validation; either
// failing exits 1 with the reasons.
const fs = require('fs');
const path = require('path');
const Ajv = require('ajv');
const { FlagdCore, MemoryStorage } = require('@openfeature/flagd-core');

const [file, flag, n] = process.argv.slice(2);
const text = fs.readFileSync(file, 'utf8');
const schema = (name) => JSON.parse(fs.readFileSync(path.join(__dirname, 'flagd-schema', name), 'utf8'));
// strict: false — the schema's fractional rule has `items` longer than `maxItems`, which ajv's
// strict mode reports (the schema says so in a $comment); it is valid JSON Schema.
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addSchema(schema('targeting.json'));
const validate = ajv.compile(schema('flags.json'));
if (!validate(JSON.parse(text))) {
  console.error(`flagd-share: ${file} does not match flagd's schema: ${JSON.stringify(validate.errors, null, 1)}`);
  process.exit(1);
}
const logger = { error: console.error, warn: console.error, info: () => {}, debug: () => {} };
const storage = new MemoryStorage(logger);
try {
  storage.setConfigurations(text, true);
} catch (e) {
  console.error(`flagd-share: flagd-core refuses ${file}: ${e.message}`);
  process.exit(1);
}
const core = new FlagdCore(storage, logger);
let on = 0;
for (let i = 0; i < Number(n); i++) {
  const r = core.resolveBooleanEvaluation(flag, false, { targetingKey: `user-${i}` }, logger);
  if (r.errorCode) {
    console.error(`flagd-share: ${flag} for user-${i}: ${r.errorCode} ${r.errorMessage || ''}`);
    process.exit(1);
  }
  if (r.value === true) on++;
}
console.log(JSON.stringify({ on, of: Number(n) }));
