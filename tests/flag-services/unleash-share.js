// What an application's Unleash SDK sees: how many of N users have the feature on.
// usage: node unleash-share.js URL CLIENT_TOKEN FEATURE N  →  {"enabled": k, "of": N}
const { initialize } = require('unleash-client');

const [url, token, feature, n] = process.argv.slice(2);
const client = initialize({
  url: `${url}/api/`,
  appName: 'launch-host-test',
  customHeaders: { Authorization: token },
  disableMetrics: true,
});
const timer = setTimeout(() => { console.error('unleash-share: no answer from Unleash in 20 s'); process.exit(2); }, 20000);
client.on('error', (e) => { console.error(`unleash-share: ${e.message || e}`); process.exit(2); });
client.on('synchronized', () => {
  clearTimeout(timer);
  let enabled = 0;
  for (let i = 0; i < Number(n); i++) {
    if (client.isEnabled(feature, { userId: `user-${i}` })) enabled++;
  }
  console.log(JSON.stringify({ enabled, of: Number(n) }));
  client.destroy();
  process.exit(0);
});
